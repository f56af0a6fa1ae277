"""Synthetic market: contract columns, determinism, calendar, stylized facts, and the planted edge's size."""

import dataclasses
from datetime import date, datetime

import numpy as np
import polars as pl
import pytest

from market.calendar import session_bounds, sessions
from market.sources import QUOTE_SCHEMA, TRADE_SCHEMA, DayTape, MarketSource, SyntheticSource
from market.symbols import DEFAULT_SYMBOLS, get_symbol
from market.synthetic import (
    DEFAULT_EDGE,
    SyntheticMarketConfig,
    calibration_pnl,
    generate_day,
    minute_bars,
)

LOW = SyntheticMarketConfig(trades_per_day=5_000, quotes_per_day=2_000)
DAY = date(2024, 3, 5)
EARLY_CLOSE = date(2024, 11, 29)


def _minute_index(frame: pl.DataFrame, day: date) -> np.ndarray:
    open_, _ = session_bounds(day)
    return ((frame["ts"].to_numpy() - open_) // np.timedelta64(1, "m")).astype(np.int64)


def _minute_returns(trades: pl.DataFrame) -> np.ndarray:
    return np.diff(np.log(minute_bars(trades)["close"].to_numpy()))


# ---------------------------------------------------------------------------------------------- contract


def test_frames_have_exactly_the_contract_columns():
    spy = generate_day(LOW, "SPY", DAY)
    assert isinstance(spy, DayTape)
    assert spy.trades.schema == pl.Schema(TRADE_SCHEMA)
    assert spy.quotes.schema == pl.Schema(QUOTE_SCHEMA)
    assert spy.trades.height > 1_000 and spy.quotes.height > 500
    assert spy.trades["symbol"].unique().to_list() == ["SPY"]
    assert list(spy.trades.columns) == ["symbol", "ts", "price", "size"]
    assert list(spy.quotes.columns) == ["symbol", "ts", "bid", "ask", "bid_size", "ask_size"]


def test_index_has_levels_with_zero_size_and_no_quotes():
    spx = generate_day(LOW, "SPX", DAY)
    assert spx.trades.schema == pl.Schema(TRADE_SCHEMA)
    assert spx.quotes.schema == pl.Schema(QUOTE_SCHEMA) and spx.quotes.height == 0
    assert spx.trades.height == 390 * 60  # one level per second
    assert (spx.trades["size"] == 0.0).all()
    assert (spx.trades["price"] > 0).all()
    spy_close = generate_day(LOW, "SPY", DAY).trades["price"][-1]
    assert 9.5 < spx.trades["price"][-1] / spy_close < 10.5  # SPX ~ 10x SPY: one market factor


def test_synthetic_source_is_a_market_source():
    source = SyntheticSource(LOW)
    assert isinstance(source, MarketSource)
    assert source.name
    tape = source.fetch_day("QQQ", DAY)
    assert tape.trades.equals(generate_day(LOW, "QQQ", DAY).trades)
    assert SyntheticSource().config == SyntheticMarketConfig()


def test_unknown_symbol_is_refused_with_known_names():
    with pytest.raises(ValueError, match="unknown symbol 'XYZ'; known: SPY, QQQ, SPX, ES, MES, NQ, MNQ"):
        generate_day(LOW, "XYZ", DAY)
    with pytest.raises(ValueError, match="ES is a futures root; name a contract such as ESH24"):
        generate_day(LOW, "ES", DAY)
    with pytest.raises(ValueError, match="known"):
        get_symbol("spy")


def test_default_symbols():
    assert set(DEFAULT_SYMBOLS) == {"SPY", "QQQ", "SPX", "ES", "MES", "NQ", "MNQ"}
    assert DEFAULT_SYMBOLS["SPX"].kind == "index" and DEFAULT_SYMBOLS["SPY"].kind == "etf"
    assert 400 < DEFAULT_SYMBOLS["SPY"].start_price < 550
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_SYMBOLS["SPY"].beta = 2.0  # type: ignore[misc]


# ----------------------------------------------------------------------------------------- determinism


def test_same_seed_symbol_date_is_identical():
    a = generate_day(LOW, "SPY", DAY)
    b = generate_day(SyntheticMarketConfig(trades_per_day=5_000, quotes_per_day=2_000), "SPY", DAY)
    assert a.trades.equals(b.trades) and a.quotes.equals(b.quotes)


def test_different_seed_or_date_differs():
    base = generate_day(LOW, "SPY", DAY).trades
    other_seed = generate_day(dataclasses.replace(LOW, seed=8), "SPY", DAY).trades
    other_day = generate_day(LOW, "SPY", date(2024, 3, 6)).trades
    assert not base.equals(other_seed)
    assert not base.equals(other_day)


def test_a_date_does_not_depend_on_what_was_generated_before():
    later = date(2024, 6, 3)
    fresh = generate_day(LOW, "SPY", later).trades
    for d in sessions(date(2024, 5, 1), date(2024, 5, 10)):
        generate_day(LOW, "SPY", d)
    assert generate_day(LOW, "SPY", later).trades.equals(fresh)


# -------------------------------------------------------------------------------------------- calendar


def test_early_close_has_210_minutes_of_trades():
    tape = generate_day(LOW, "SPY", EARLY_CLOSE)
    open_, close = session_bounds(EARLY_CLOSE)
    ts = tape.trades["ts"].to_numpy()
    assert ts.min() >= open_ and ts.max() < close
    minutes = np.unique(_minute_index(tape.trades, EARLY_CLOSE))
    assert len(minutes) == 210 and minutes.max() == 209
    assert generate_day(LOW, "SPX", EARLY_CLOSE).trades.height == 210 * 60


def test_all_timestamps_inside_the_session():
    for symbol in ("SPY", "QQQ", "SPX"):  # the embedded market's instruments
        tape = generate_day(LOW, symbol, DAY)
        open_, close = session_bounds(DAY)
        for frame in (tape.trades, tape.quotes):
            if frame.height:
                ts = frame["ts"].to_numpy()
                assert ts.min() >= open_ and ts.max() < close


@pytest.mark.parametrize("day", [date(2024, 7, 4), date(2024, 12, 25), date(2024, 3, 9), date(2024, 3, 10)])
def test_holidays_and_weekends_raise(day):
    with pytest.raises(ValueError, match="not an NYSE session"):
        generate_day(LOW, "SPY", day)


# ------------------------------------------------------------------------------------------ microstructure


def test_prices_bids_and_asks_are_on_the_cent_grid():
    tape = generate_day(LOW, "SPY", DAY)
    for values in (tape.trades["price"], tape.quotes["bid"], tape.quotes["ask"]):
        cents = values.to_numpy() * 100
        assert np.max(np.abs(cents - np.round(cents))) < 1e-6
    spx = generate_day(LOW, "SPX", DAY).trades["price"].to_numpy() * 100
    assert np.max(np.abs(spx - np.round(spx))) < 1e-6


def test_bid_below_ask_with_at_least_one_tick():
    quotes = generate_day(LOW, "QQQ", DAY).quotes
    spread = (quotes["ask"] - quotes["bid"]).to_numpy()
    assert (quotes["bid"] < quotes["ask"]).all()
    assert spread.min() >= 0.01 - 1e-9
    assert np.mean(spread < 0.015) > 0.7  # mostly one tick wide, sometimes wider
    assert spread.max() > 0.015
    assert (quotes["bid_size"] > 0).all() and (quotes["ask_size"] > 0).all()


def test_trades_print_at_the_touch():
    """Trades print at the bid or the ask of a sticky quote, so on a busy tape consecutive trades mostly
    differ by at most one tick (bid-ask bounce), not by the minute's whole move."""
    trades = generate_day(SyntheticMarketConfig(trades_per_day=200_000, quotes_per_day=0), "SPY", DAY).trades
    jumps = np.abs(np.diff(trades["price"].to_numpy()))
    assert np.mean(jumps < 0.015) > 0.9


def test_u_shaped_intraday_volume():
    counts = np.zeros(390)
    for d in sessions(date(2024, 4, 1), date(2024, 4, 10)):
        counts += np.bincount(_minute_index(generate_day(LOW, "SPY", d).trades, d), minlength=390)
    first, last, midday = counts[:30].mean(), counts[-30:].mean(), counts[150:240].mean()
    assert first > 1.5 * midday and last > 1.5 * midday


def test_volatility_clusters():
    """|1-minute returns| are autocorrelated (GARCH minute variance plus the intraday vol pattern)."""
    acs = []
    for d in sessions(date(2024, 4, 1), date(2024, 4, 12)):
        a = np.abs(_minute_returns(generate_day(LOW, "SPX", d).trades))
        acs.append(np.corrcoef(a[1:], a[:-1])[0, 1])
    assert np.mean(acs) > 0.03
    calm = dataclasses.replace(LOW, garch_alpha=0.0, garch_beta=0.0)
    calm_acs = []
    for d in sessions(date(2024, 4, 1), date(2024, 4, 12)):
        a = np.abs(_minute_returns(generate_day(calm, "SPX", d).trades))
        calm_acs.append(np.corrcoef(a[1:], a[:-1])[0, 1])
    assert np.mean(acs) > np.mean(calm_acs)


def test_trade_sizes_are_heavy_tailed_with_odd_and_round_lots():
    size = generate_day(SyntheticMarketConfig(), "SPY", DAY).trades["size"].to_numpy()
    kurtosis = np.mean((size - size.mean()) ** 4) / size.var() ** 2
    assert kurtosis > 20
    assert size.max() > 50 * np.median(size)
    assert np.mean(size < 100) > 0.1  # odd lots
    assert np.mean(size % 100 == 0) > 0.5  # round lots
    assert size.min() >= 1 and np.all(size == np.round(size))


def test_overnight_gaps_are_non_zero_and_plausible():
    days = sessions(date(2024, 2, 1), date(2024, 3, 29))
    tapes = [generate_day(LOW, "SPY", d).trades for d in days]
    gaps = np.array([np.log(b["price"][0] / a["price"][-1]) for a, b in zip(tapes, tapes[1:], strict=False)])
    assert np.all(gaps != 0.0)
    assert 0.001 < gaps.std() < 0.02


def test_symbols_share_the_market_factor():
    cfg = SyntheticMarketConfig()
    spy, qqq, spx = (_minute_returns(generate_day(cfg, s, DAY).trades) for s in ("SPY", "QQQ", "SPX"))
    n = min(len(spy), len(spx), len(qqq))
    assert np.corrcoef(spy[:n], spx[:n])[0, 1] > 0.7
    assert np.corrcoef(spy[:n], qqq[:n])[0, 1] > 0.5


def test_realistic_density_scales():
    cfg = SyntheticMarketConfig(trades_per_day=200_000, quotes_per_day=50_000)
    tape = generate_day(cfg, "SPY", DAY)
    assert 100_000 < tape.trades.height < 400_000
    assert generate_day(cfg, "QQQ", DAY).trades.height < tape.trades.height  # QQQ is scaled down


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("trades_per_day", -5, "trades_per_day"),
        ("trades_per_day", 0, "trades_per_day"),
        ("trades_per_day", 1.5, "must be an int"),
        ("quotes_per_day", -1, "quotes_per_day"),
        ("edge", -0.1, "edge"),
        ("edge", 2.5, "edge"),
        ("edge", float("nan"), "finite"),
        ("edge_horizon_minutes", 0, "edge_horizon_minutes"),
        ("seed", -1, "seed"),
        ("seed", True, "must be an int"),
        ("impact", 3.0, "impact"),
        ("daily_vol", 0.0, "daily_vol"),
        ("garch_alpha", 0.5, "alpha \\+ beta < 1"),
        ("trades_per_level", 0.0, "trades_per_level"),
    ],
)
def test_config_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        SyntheticMarketConfig(**{field: value})


def test_out_of_calendar_range_raises():
    with pytest.raises(ValueError, match="calendar range"):
        generate_day(LOW, "SPY", date(1995, 3, 1))


def test_datetime_session_date_is_read_as_its_date():
    noon = datetime(2024, 3, 5, 12, 0)
    assert generate_day(LOW, "SPX", noon).trades.equals(generate_day(LOW, "SPX", DAY).trades)


# ----------------------------------------------------------------------------------------- calibration


def test_calibration_pnl_by_hand():
    """Three minutes; imbalance +1 in minute 0 -> long 100 in minute 1, flattened at the day's last trade."""
    stamps = ["2024-03-05T14:30:01", "2024-03-05T14:30:02", "2024-03-05T14:31:05", "2024-03-05T14:32:07"]
    trades = pl.DataFrame(
        {
            "symbol": ["SPY"] * 4,
            "ts": np.array(stamps, dtype="datetime64[ns]"),
            "price": [100.00, 100.01, 100.02, 100.10],
            "size": [100.0, 100.0, 100.0, 100.0],
        }
    )
    bars = minute_bars(trades)
    assert bars["imbalance"].to_list() == [0.5, 1.0, 1.0]  # first trade has no sign
    out = calibration_pnl(trades, "imbalance")
    # long 100 from 100.02 (minute 1 first) to 100.10 (minute 2 first): +8.00; held in minute 2 as well
    # (imbalance of minute 1 = 1.0) until the last trade 100.10: +0. Fills: buy 100, sell 100.
    assert out["gross"] == pytest.approx(8.0)
    assert out["commission"] == pytest.approx(2.0)
    assert out["spread_cost"] == pytest.approx(1.0)
    assert out["net"] == pytest.approx(5.0)
    assert out["fills"] == 2
    with pytest.raises(ValueError, match="unknown rule"):
        calibration_pnl(trades, "macd")  # type: ignore[arg-type]
    assert calibration_pnl(trades.clear())["net"] == 0.0


def _rule_nets(cfg: SyntheticMarketConfig, days: list[date]) -> dict[str, np.ndarray]:
    tapes = [generate_day(cfg, "SPY", d).trades for d in days]
    imb = [calibration_pnl(t, "imbalance") for t in tapes]
    return {
        "imbalance": np.array([r["net"] for r in imb]),
        "gross": np.array([r["gross"] for r in imb]),
        "sma": np.array([calibration_pnl(t, "sma")["net"] for t in tapes]),
    }


def test_default_edge_is_learnable_after_costs_and_edge_zero_is_not():
    """The imbalance rule (100 SPY, $1 min commission, half-cent spread) makes money with the default edge
    and loses its costs without it; the naive SMA crossover is not strongly profitable either way."""
    days = sessions(date(2024, 1, 2), date(2024, 12, 31))[:40]
    on = _rule_nets(SyntheticMarketConfig(), days)
    off = _rule_nets(SyntheticMarketConfig(edge=0.0), days)
    assert SyntheticMarketConfig().edge == DEFAULT_EDGE > 0
    assert on["imbalance"].mean() > 50
    assert off["imbalance"].mean() < 0
    assert abs(off["gross"].mean()) < 0.25 * (on["gross"].mean() - off["gross"].mean())  # no edge at 0
    assert np.mean(on["imbalance"] - off["imbalance"]) > 250  # paired: same noise, edge on vs off
    assert on["sma"].mean() < min(100.0, on["imbalance"].mean())
    assert off["sma"].mean() < 50
