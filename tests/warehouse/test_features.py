"""Features: no look-ahead (truncation invariance), per symbol-day windows, finite after warm-up, values."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from market.calendar import session_bounds
from market.synthetic import SyntheticMarketConfig, SyntheticSource
from warehouse.bars import build_bars
from warehouse.db import connect, query_polars
from warehouse.features import (
    FEATURE_GROUPS,
    FEATURES,
    WARMUP_MINUTES,
    build_features,
    compute_features,
)
from warehouse.ingest import ingest_day

DAYS = (date(2024, 1, 3), date(2024, 11, 29))  # a full session and an early close
SYMBOLS = ["SPY", "QQQ", "SPX"]
CUTS = (0, 1, 4, 13, 29, 30, 31, 77, 150, 209, 389)


@pytest.fixture(scope="module")
def wh():
    con = connect(":memory:")
    source = SyntheticSource(SyntheticMarketConfig(seed=3, trades_per_day=4_000, quotes_per_day=4_000))
    for d in DAYS:
        ingest_day(con, source, SYMBOLS, d)
        build_bars(con, d)
    yield con
    con.close()


def _bars(con, d: date | None = None) -> pl.DataFrame:
    where, params = ("WHERE session_date = ?", [d]) if d else ("", [])
    return query_polars(con, f"SELECT * FROM core.bars_1m {where} ORDER BY symbol, session_date, minute", params)


def _with_index(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.int_range(pl.len()).over("symbol", "session_date").alias("i"))


def test_feature_catalogue_has_the_seed_groups_and_the_names_rl_relies_on() -> None:
    assert len(FEATURE_GROUPS["microstructure"]) == 15 and len(FEATURE_GROUPS["momentum"]) == 12
    assert 25 <= len(FEATURES) <= 35
    assert {"ret_1m", "imbalance_1m", "sma_5_20"} <= set(FEATURES)
    assert all(doc and "\n" not in doc for doc in FEATURES.values())


@pytest.mark.parametrize("day", DAYS)
def test_truncation_invariance_values_up_to_t_ignore_every_later_bar(wh, day: date) -> None:
    bars = _bars(wh, day)
    full = _with_index(compute_features(bars))
    n = full["i"].max() + 1
    for t in (c for c in CUTS if c < n):
        cut = _with_index(bars).filter(pl.col("i") <= t).drop("i")
        got = compute_features(cut)
        want = full.filter(pl.col("i") <= t).drop("i")
        assert got.height == want.height == (t + 1) * len(SYMBOLS)
        assert got.equals(want), f"features at or before minute {t} changed when later bars were removed"


def test_changing_later_bars_does_not_change_earlier_features(wh) -> None:
    bars = _with_index(_bars(wh, DAYS[0]))
    t = 120
    shocked = bars.with_columns(
        pl.when(pl.col("i") > t).then(pl.col(c) * 1.5).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close", "vwap", "volume", "buy_volume", "mean_spread")
    ).drop("i")
    a = _with_index(compute_features(bars.drop("i"))).filter(pl.col("i") <= t)
    b = _with_index(compute_features(shocked)).filter(pl.col("i") <= t)
    assert a.equals(b)
    later = _with_index(compute_features(shocked)).filter(pl.col("i") > t + 30)
    assert not later.equals(_with_index(compute_features(bars.drop("i"))).filter(pl.col("i") > t + 30))


def test_windows_never_cross_symbols_or_days(wh) -> None:
    together = compute_features(_bars(wh))
    apart = pl.concat(
        [compute_features(_bars(wh, d).filter(pl.col("symbol") == s)) for s in SYMBOLS for d in DAYS]
    ).sort("symbol", "session_date", "minute")
    assert together.equals(apart)
    shuffled = _bars(wh).sample(fraction=1.0, shuffle=True, seed=1)
    assert compute_features(shuffled).equals(together)


def test_every_feature_is_finite_after_warmup_for_equities_and_the_index(wh) -> None:
    feats = _with_index(compute_features(_bars(wh)))
    warm = feats.filter(pl.col("i") >= WARMUP_MINUTES)
    for name in FEATURES:
        col = warm[name]
        assert col.null_count() == 0 and col.is_finite().all(), name
    spx = warm.filter(pl.col("symbol") == "SPX")
    assert spx.height > 0
    for name in ("spread_bps", "imbalance_1m", "imbalance_5m", "volume_z_30"):
        assert (spx[name] == 0).all(), name  # no quotes, no volume: defined as 0, not NaN
    assert spx["ret_1m"].abs().sum() > 0  # index levels still move
    early = feats.filter(pl.col("i") < WARMUP_MINUTES)
    assert early["ret_30m"].null_count() == early.height  # a 30-minute return needs 30 minutes


def test_feature_values_match_their_definitions(wh) -> None:
    bars = _bars(wh, DAYS[0]).filter(pl.col("symbol") == "SPY")
    f = compute_features(bars)
    close = bars["close"].to_numpy()
    np.testing.assert_allclose(f["ret_1m"].to_numpy()[1:], 100 * np.log(close[1:] / close[:-1]), rtol=1e-9)
    np.testing.assert_allclose(f["ret_30m"].to_numpy()[30:], 100 * np.log(close[30:] / close[:-30]), rtol=1e-9)
    vol, buy, sell = (bars[c].to_numpy() for c in ("volume", "buy_volume", "sell_volume"))
    traded = vol > 0
    np.testing.assert_allclose(f["imbalance_1m"].to_numpy()[traded], ((buy - sell) / vol)[traded], rtol=1e-12)
    sma5 = np.convolve(close, np.ones(5) / 5, "valid")[15:]
    sma20 = np.convolve(close, np.ones(20) / 20, "valid")
    np.testing.assert_allclose(f["sma_5_20"].to_numpy()[19:], 100 * np.log(sma5 / sma20), atol=1e-9)
    assert f["sma_5_20"][:19].null_count() == 19
    for bounded in (
        "imbalance_1m",
        "imbalance_5m",
        "imbalance_day",
        "rsi_14",
        "efficiency_10",
        "range_pos_30",
    ):
        vals = f[bounded].drop_nulls()
        assert vals.min() >= -1 - 1e-12 and vals.max() <= 1 + 1e-12, bounded
    assert f["tod_frac"][0] == 0.0 and f["tod_frac"][195] == pytest.approx(0.5) and f["to_close"][0] == 1.0
    assert f["tod_sin"][0] == 0.0 and f["tod_cos"][0] == 1.0


def test_time_of_day_uses_the_calendar_session_length(wh) -> None:
    early = compute_features(_bars(wh, DAYS[1]).filter(pl.col("symbol") == "SPY"))
    assert early.height == 210
    assert early["tod_frac"][105] == pytest.approx(0.5) and early["to_close"][0] == pytest.approx(210 / 390)
    open_ = session_bounds(DAYS[1])[0].astype("datetime64[us]").item()
    assert early["minute"][0] == open_ and early["minute"][-1] == open_ + timedelta(minutes=209)
    assert math.isclose(early["tod_sin"][105], 0.0, abs_tol=1e-12)


def test_build_features_replaces_the_partition_and_round_trips_exactly(wh) -> None:
    for _ in range(2):
        n = build_features(wh, DAYS[0])
    assert n == 390 * len(SYMBOLS)
    stored = query_polars(
        wh, "SELECT * FROM core.features_1m WHERE session_date = ? ORDER BY symbol, minute", [DAYS[0]]
    )
    fresh = compute_features(_bars(wh, DAYS[0]))
    assert stored.height == fresh.height
    assert stored.equals(fresh.fill_nan(None))  # exact, with NaN stored as NULL


def test_bars_missing_a_column_are_refused() -> None:
    with pytest.raises(ValueError, match="mean_spread"):
        compute_features(pl.DataFrame({"symbol": ["SPY"], "close": [1.0]}))
    assert compute_features(_empty_bars()).columns == ["symbol", "session_date", "minute", *FEATURES]


def _empty_bars() -> pl.DataFrame:
    from warehouse.features import BAR_COLUMNS

    return pl.DataFrame(schema=dict.fromkeys(BAR_COLUMNS, pl.Float64))
