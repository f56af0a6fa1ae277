"""Synthetic funding market: schema, determinism, intervals, stylized facts, the planted spread, the CSV reader."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from market.funding import (
    FUNDING_EXCHANGES,
    FUNDING_RATE_SCHEMA,
    MARK_PRICE_SCHEMA,
    FundingMarketConfig,
    FundingSource,
    SyntheticFundingSource,
    apr,
    funding_config_from_dict,
    funding_symbols,
    generate_funding_day,
    greedy_pair_backtest,
    planted_spreads,
    read_opportunities_csv,
)

CFG = FundingMarketConfig()
DAY = date(2024, 5, 6)  # a Monday: interval changes happen at week boundaries


def _days(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def _rates(cfg: FundingMarketConfig, start: date, n: int) -> pl.DataFrame:
    return pl.concat([generate_funding_day(cfg, d).funding_rates for d in _days(start, n)])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbols": 3}, "liquid symbols"),
        ({"exchanges": ("binance",)}, "exchanges"),
        ({"mark_every_minutes": 7}, "mark_every_minutes"),
        ({"persistent_spread": -0.1}, "persistent_spread"),
        ({"spread_persistence": 1.5}, "probability"),
        ({"noise_phi": 1.0}, "noise_phi"),
        ({"seed": 1.5}, "seed"),
        ({"basis_sd": float("nan")}, "basis_sd"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FundingMarketConfig(**kwargs)


def test_config_from_dict_accepts_yaml_types_and_rejects_unknown_keys() -> None:
    cfg = funding_config_from_dict({"exchanges": ["binance", "okx"], "epoch": "2024-02-01", "persistent_spread": 0})
    assert cfg.exchanges == ("binance", "okx") and cfg.epoch == date(2024, 2, 1)
    assert hash(cfg) == hash(
        FundingMarketConfig(exchanges=("binance", "okx"), epoch=date(2024, 2, 1), persistent_spread=0)
    )
    with pytest.raises(ValueError, match="unknown keys \\['edge'\\]"):
        funding_config_from_dict({"edge": 1.0})
    with pytest.raises(ValueError, match="epoch"):
        funding_config_from_dict({"epoch": "May 1st"})


def test_symbols_exchanges_and_source_protocol() -> None:
    names = funding_symbols(CFG)
    assert len(names) == CFG.symbols >= 20 and len(set(names)) == len(names)
    assert {"BTCUSDT", "ETHUSDT", "COAIUSDT"} <= set(names)
    assert CFG.exchanges == FUNDING_EXCHANGES
    src = SyntheticFundingSource(CFG)
    assert isinstance(src, FundingSource) and "synthetic" in src.name
    tape = src.fetch_day(DAY)
    assert tape.funding_rates.schema == pl.Schema(FUNDING_RATE_SCHEMA)
    assert tape.mark_prices.schema == pl.Schema(MARK_PRICE_SCHEMA)
    assert set(tape.funding_rates["symbol"]) == set(names)
    assert set(tape.funding_rates["exchange"]) == set(CFG.exchanges)


def test_deterministic_per_seed_and_day_and_day_local() -> None:
    a = generate_funding_day(CFG, DAY)
    b = generate_funding_day(FundingMarketConfig(), DAY)
    assert a.funding_rates.equals(b.funding_rates) and a.mark_prices.equals(b.mark_prices)
    other_seed = generate_funding_day(FundingMarketConfig(seed=8), DAY)
    assert not a.funding_rates["rate"].equals(other_seed.funding_rates["rate"])
    nxt = generate_funding_day(CFG, DAY + timedelta(days=1))
    assert not a.mark_prices["mark"].equals(nxt.mark_prices["mark"])
    start, end = datetime(2024, 5, 6), datetime(2024, 5, 7)
    for frame, ts in ((a.funding_rates, "funding_time"), (a.mark_prices, "ts")):
        assert frame[ts].min() >= start and frame[ts].max() < end
    with pytest.raises(ValueError, match="epoch"):
        generate_funding_day(CFG, date(2023, 12, 31))


def test_marks_quotes_and_liquidity() -> None:
    marks = generate_funding_day(CFG, DAY).mark_prices
    n_series = CFG.symbols * len(CFG.exchanges)
    assert marks.height == n_series * 1440 // CFG.mark_every_minutes
    assert (marks["bid"] > 0).all() and (marks["bid"] < marks["mark"]).all() and (marks["mark"] < marks["ask"]).all()
    spread = marks.with_columns(
        ((pl.col("ask") - pl.col("bid")) / pl.col("mark") * 1e4).alias("bps"),
        pl.col("symbol").is_in(list(CFG.anomalous)).alias("anomalous"),
    )
    by = spread.group_by("anomalous").agg(pl.col("bps").median(), pl.col("volume_24h").median()).sort("anomalous")
    liquid, anomalous = by.row(0, named=True), by.row(1, named=True)
    assert anomalous["bps"] > 10 * liquid["bps"]  # illiquid names: wide spreads
    assert anomalous["volume_24h"] < liquid["volume_24h"] / 10


def test_intervals_are_consistent_change_over_time_and_differ_by_venue() -> None:
    rates = _rates(CFG, DAY - timedelta(days=8), 22).sort("exchange", "symbol", "funding_time")
    gaps = rates.with_columns(
        (pl.col("funding_time").diff().over("exchange", "symbol").dt.total_hours()).alias("gap"),
        pl.col("funding_time").dt.hour().alias("hour"),
    )
    assert (gaps["hour"] % gaps["interval_hours"] == 0).all()  # settlements on the interval grid
    checked = gaps.drop_nulls("gap")
    assert (checked["gap"] == checked["interval_hours"]).all()  # no gaps, no duplicates, across days and weeks
    assert set(rates["interval_hours"].unique()) == {1, 4, 8}
    changed = rates.group_by("exchange", "symbol").agg(pl.col("interval_hours").n_unique().alias("n"))
    assert changed.filter(pl.col("n") > 1).height > 0
    per_ts = (
        rates.filter(pl.col("symbol") == "COAIUSDT").group_by("funding_time").agg(pl.col("interval_hours").n_unique())
    )
    assert (per_ts["interval_hours"] > 1).any()  # venues differ for one symbol at one time


def test_rates_persist_mean_revert_and_anomalous_quote_high_apr() -> None:
    rates = _rates(CFG, date(2024, 2, 1), 60).with_columns(
        (pl.col("rate") * 24 / pl.col("interval_hours") * 365).alias("apr")
    )
    liquid = rates.filter(~pl.col("symbol").is_in(list(CFG.anomalous)))
    # Per-symbol daily mean APR: persistent day to day, much less so after a month (mean reversion, regimes).
    daily = (
        liquid.group_by("symbol", pl.col("funding_time").dt.date().alias("d"))
        .agg(pl.col("apr").mean())
        .sort("symbol", "d")
    )
    x = daily.pivot(on="symbol", index="d", values="apr").drop("d").to_numpy()
    x = x - x.mean(axis=0)
    lag1 = np.mean([np.corrcoef(x[:-1, j], x[1:, j])[0, 1] for j in range(x.shape[1])])
    lag30 = np.mean([np.corrcoef(x[:-30, j], x[30:, j])[0, 1] for j in range(x.shape[1])])
    assert lag1 > 0.5 and lag30 < lag1 - 0.3
    med_liquid = liquid["apr"].abs().median()
    med_anom = rates.filter(pl.col("symbol").is_in(list(CFG.anomalous)))["apr"].abs().median()
    assert med_anom > 3 * med_liquid
    assert rates["rate"].abs().max() <= 0.03


def _relative_apr_on_planted(cfg: FundingMarketConfig, start: date, n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows of planted (symbol, venue, day) with `rel` = APR minus the symbol's venue mean, the other rows)."""
    rates = _rates(cfg, start, n).with_columns(
        (pl.col("rate") * 24 / pl.col("interval_hours") * 365).alias("apr"), pl.col("funding_time").dt.date().alias("d")
    )
    truth = pl.concat([planted_spreads(cfg, d).with_columns(pl.lit(d).alias("d")) for d in _days(start, n)])
    rel = rates.with_columns((pl.col("apr") - pl.col("apr").mean().over("symbol", "d")).alias("rel"))
    hit = rel.join(truth, on=["symbol", "exchange", "d"])
    off = rel.join(truth, on=["symbol", "exchange", "d"], how="anti")
    return hit, off.filter(~pl.col("symbol").is_in(list(cfg.anomalous)))


def test_planted_spread_shows_in_the_rates_and_zero_turns_it_off() -> None:
    start, n = date(2024, 3, 1), 20
    hit, off = _relative_apr_on_planted(CFG, start, n)
    assert hit.height > 0 and set(hit["sign"].unique()) <= {-1, 1}
    # An offset of +-persistent_spread APR on one of 5 venues is 0.8x that relative to the venue mean.
    assert (hit["rel"] * hit["sign"]).mean() > 0.5 * 0.8 * CFG.persistent_spread
    assert abs(off["rel"].mean()) < 0.1
    hit0, _ = _relative_apr_on_planted(FundingMarketConfig(persistent_spread=0.0), start, n)
    assert hit0.height == hit.height  # same latent states, but no offset in the rates
    assert abs((hit0["rel"] * hit0["sign"]).mean()) < 0.1


def test_greedy_pair_earns_funding_after_fees_only_with_the_planted_spread() -> None:
    on = greedy_pair_backtest(CFG, date(2024, 3, 1), 15)
    off = greedy_pair_backtest(FundingMarketConfig(persistent_spread=0.0), date(2024, 3, 1), 15)
    assert on["trades"] > 0 and off["trades"] > 0
    assert on["funding"] > on["fees"] and on["net"] > 0
    assert off["funding"] < off["fees"] and off["net"] < 0
    # Chasing the anomalous names' quoted APR loses: wide spreads eat it and realized funding does not persist.
    trap = greedy_pair_backtest(CFG, date(2024, 3, 1), 15, min_volume=0.0, min_apr=1.0)
    assert trap["trades"] > 0 and trap["net"] < 0 and trap["fees"] > trap["funding"]


def test_apr_uses_the_interval() -> None:
    assert apr(0.0001, 8) == pytest.approx(0.1095)
    assert apr(0.0001, 1) == pytest.approx(8 * 0.1095)


CSV_HEADER = (
    "entry_time,symbol,long_exchange,short_exchange,entry_long_price,entry_short_price,"
    "long_funding_rate,short_funding_rate,fund_apr,volume_24h,note\n"
)


def test_read_opportunities_csv_types_and_keeps_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "rl_test.csv"
    path.write_text(
        CSV_HEADER
        + "2025-10-22 00:00:00,BTCUSDT,binance,bybit,67000.5,67010,0.0001,0.0003,21.9,1e9,a\n"
        + "2025-10-22T01:00:00+00:00,COAIUSDT,gate,okx,1.2,1.21,-0.001,0.002,329,2e6,b\n"
        + "not a time,ETHUSDT,okx,gate,x,3000,0.0001,0.0002,10,1e8,c\n"
    )
    df = read_opportunities_csv(path)
    assert df.schema["entry_time"] == pl.Datetime("ns") and df.schema["fund_apr"] == pl.Float64
    assert df["entry_time"].to_list()[:2] == [datetime(2025, 10, 22, 0), datetime(2025, 10, 22, 1)]
    assert df["entry_time"][2] is None and df["entry_long_price"][2] is None
    assert df["note"].to_list() == ["a", "b", "c"]


def test_read_opportunities_csv_rejects_malformed_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    missing.write_text(CSV_HEADER.replace("fund_apr,", "") + "2025-10-22,BTCUSDT,a,b,1,1,0,0,1e9,x\n")
    with pytest.raises(ValueError, match="fund_apr"):
        read_opportunities_csv(missing)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_opportunities_csv(empty)
    with pytest.raises(ValueError, match="does not exist"):
        read_opportunities_csv(tmp_path / "nope.csv")
