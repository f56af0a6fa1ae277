"""The embedded same-day chains: listed strikes and OCC tickers, sound quotes (parity, monotone strikes, no crossed
quotes), a volatility level that follows the underlying, a smile and spreads that steepen into the close, and
no look-ahead."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import polars as pl
import pytest

from market.calendar import session_bounds
from market.option_chain import ChainConfig, chain_day, chain_violations, listed_strikes, occ_symbol
from market.synthetic import SyntheticMarketConfig, generate_day, minute_bars

DAY = date(2024, 3, 5)
CFG = ChainConfig()


def _bars(symbol: str, day: date = DAY, seed: int = 7) -> tuple[np.ndarray, np.ndarray, int]:
    bars = minute_bars(generate_day(SyntheticMarketConfig(seed=seed, trades_per_day=5_000), symbol, day).trades)
    _, close = session_bounds(day)
    return bars["minute"].to_numpy(), bars["close"].to_numpy(), int(close.astype("datetime64[ns]").astype(np.int64))


def test_strikes_tickers_and_shape() -> None:
    assert listed_strikes("SPX", 4712.0, 2).tolist() == [4700.0, 4705.0, 4710.0, 4715.0, 4720.0]
    assert occ_symbol("SPY", DAY, True, 470.0) == "O:SPY240305C00470000"
    assert occ_symbol("SPXW", DAY, False, 4712.5) == "O:SPXW240305P04712500"
    minute, close, end = _bars("SPY")
    chain = chain_day("SPY", DAY, minute, close, end, CFG)
    assert chain.height == minute.size * 2 * (2 * CFG.strikes_each_side + 1)
    assert chain["contract"].n_unique() == 2 * (2 * CFG.strikes_each_side + 1)
    assert chain["minutes_to_expiry"].min() == 0.0 and chain["minutes_to_expiry"].max() <= 390
    assert chain_day("SPX", DAY, *_bars("SPX"), CFG)["contract"][0].startswith("O:SPXW240305")
    with pytest.raises(ValueError, match="not 'AAPL'"):
        chain_day("AAPL", DAY, minute, close, end, CFG)


def test_the_embedded_chain_passes_every_quote_rule_and_a_broken_one_does_not() -> None:
    chain = chain_day("SPY", DAY, *_bars("SPY"), CFG)
    assert chain_violations(chain, CFG.rate).height == 0
    assert (chain["bid"] >= 0).all() and (chain["ask"] > chain["bid"]).all()
    broken = chain.with_columns(
        pl.when(pl.int_range(pl.len()) == 40).then(pl.col("ask") - 1.0).otherwise(pl.col("bid")).alias("bid"),
        pl.when(pl.int_range(pl.len()) == 41).then(float("nan")).otherwise(pl.col("iv")).alias("iv"),
        pl.when(pl.int_range(pl.len()) == 5).then(pl.col("mid") + 3.0).otherwise(pl.col("mid")).alias("mid"),
    )
    reasons = set(chain_violations(broken, CFG.rate)["reason"])
    assert {"crossed", "iv_out_of_bounds", "monotonicity", "put_call_parity"} <= reasons


def test_volatility_follows_the_underlying_and_the_smile_and_spreads_steepen_into_the_close() -> None:
    chain = chain_day("SPY", DAY, *_bars("SPY"), CFG)
    first, last = chain["minute"].min(), chain["minute"].sort()[-2 * (2 * CFG.strikes_each_side + 1) - 1]
    at = {m: chain.filter(pl.col("minute") == m).sort("right", "strike") for m in (first, last)}

    def wing_minus_atm(frame: pl.DataFrame) -> float:
        puts = frame.filter(pl.col("right") == "P")
        spot = float(puts["spot"][0])
        atm = puts.filter((pl.col("strike") - spot).abs() == (pl.col("strike") - spot).abs().min())["iv"][0]
        return float(puts["iv"][0]) - float(atm)  # the lowest strike's put

    assert wing_minus_atm(at[last]) > wing_minus_atm(at[first]) > 0  # a put skew, steeper at the close
    rel = chain.with_columns(((pl.col("ask") - pl.col("bid")) / pl.col("mid")).alias("rel"))
    cheap = rel.filter(pl.col("mid") < 0.05)["rel"].median()
    dear = rel.filter(pl.col("mid") > 2.0)["rel"].median()
    assert cheap > 3 * dear  # cheap options carry the widest relative spreads
    minute, close, end = _bars("SPY")
    doubled = close[0] * np.exp(2.0 * np.log(close / close[0]))  # every 1-minute return twice as large
    calm = chain_day("SPY", DAY, minute, close, end, replace(CFG, iv_floor=0.001))
    wild = chain_day("SPY", DAY, minute, doubled, end, replace(CFG, iv_floor=0.001))

    def atm(frame: pl.DataFrame) -> pl.Series:  # each minute's contract nearest the money
        moneyness = (pl.col("strike") / pl.col("spot")).log().abs()
        live = frame.filter(pl.col("minutes_to_expiry") > 30)
        return live.group_by("minute").agg(pl.col("iv").sort_by(moneyness).first()).sort("minute")["iv"]

    ratio = (atm(wild) / atm(calm)).median()
    assert 1.8 < ratio < 2.2  # the at-the-money level follows realized volatility


def test_no_look_ahead_the_chain_at_minute_t_ignores_later_bars() -> None:
    minute, close, end = _bars("QQQ")
    later = close.copy()
    later[200:] *= 1.03
    a = chain_day("QQQ", DAY, minute, close, end, CFG)
    b = chain_day("QQQ", DAY, minute, later, end, CFG)
    cut = minute[199]
    before = pl.col("minute") <= cut
    assert a.filter(before).equals(b.filter(before))
    assert not a.filter(~before).equals(b.filter(~before))


def test_bad_settings_and_bars_are_refused() -> None:
    with pytest.raises(ValueError, match="ChainConfig.strikes_each_side"):
        ChainConfig(strikes_each_side=0)
    with pytest.raises(ValueError, match="ChainConfig.spread_pct"):
        ChainConfig(spread_pct=-0.1)
    minute, close, end = _bars("SPY")
    bad = close.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="positive closes"):
        chain_day("SPY", DAY, minute, bad, end, CFG)
