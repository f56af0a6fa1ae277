"""Quality checks return plain dicts and catch planted violations; the training frame loader."""

from __future__ import annotations

import json
from datetime import date, timedelta

import polars as pl
import pytest

import warehouse.checks as checks
from market.calendar import session_bounds
from market.synthetic import SyntheticMarketConfig, SyntheticSource
from warehouse.bars import build_bars
from warehouse.datasets import FRAME_COLUMNS, load_training_frame
from warehouse.db import connect
from warehouse.features import FEATURES, WARMUP_MINUTES, build_features, compute_features
from warehouse.ingest import ingest_day

DAY, DAY2 = date(2024, 1, 3), date(2024, 1, 4)
SYMBOLS = ["SPY", "QQQ", "SPX"]


@pytest.fixture
def wh(tmp_path):
    con = connect(tmp_path / "warehouse.duckdb")
    source = SyntheticSource(SyntheticMarketConfig(seed=5, trades_per_day=3_000, quotes_per_day=3_000))
    for d in (DAY, DAY2):
        ingest_day(con, source, SYMBOLS, d)
        build_bars(con, d)
        build_features(con, d)
    yield con
    con.close()


def _minute(d: date, i: int):
    return session_bounds(d)[0].astype("datetime64[us]").item() + timedelta(minutes=i)


def _all_checks(con, dates) -> dict[str, dict]:
    return {
        "bar_integrity": checks.bar_integrity(con, dates),
        "features_finite": checks.features_finite(con, dates, WARMUP_MINUTES),
        "quarantine_counts": checks.quarantine_counts(con, dates),
        "truncation_invariance": checks.truncation_invariance(con, dates),
    }


def test_a_clean_warehouse_passes_every_check_with_json_serializable_results(wh) -> None:
    results = _all_checks(wh, [DAY, DAY2])
    for name, result in results.items():
        assert result["passed"], (name, result)
        assert result["dates"] == [DAY.isoformat(), DAY2.isoformat()]
        json.dumps(result)
    assert results["bar_integrity"]["bars"] == 2 * 390 * 3
    assert results["features_finite"]["rows_checked"] == 2 * (390 - WARMUP_MINUTES) * 3


def test_bar_integrity_catches_each_planted_violation(wh) -> None:
    wh.execute("UPDATE core.bars_1m SET close = high + 1 WHERE symbol = 'SPY' AND minute = ?", [_minute(DAY, 10)])
    wh.execute("UPDATE core.bars_1m SET volume = -5 WHERE symbol = 'QQQ' AND minute = ?", [_minute(DAY, 11)])
    wh.execute("UPDATE core.bars_1m SET vwap = high + 1 WHERE symbol = 'QQQ' AND minute = ?", [_minute(DAY, 12)])
    wh.execute(
        "INSERT INTO core.bars_1m SELECT * FROM core.bars_1m WHERE symbol = 'SPX' AND minute = ?",
        [_minute(DAY, 20)],
    )
    wh.execute("DELETE FROM core.bars_1m WHERE symbol = 'SPY' AND minute = ?", [_minute(DAY, 30)])
    wh.execute(
        "INSERT INTO core.bars_1m SELECT * REPLACE (minute + INTERVAL 7 HOUR AS minute) FROM core.bars_1m "
        "WHERE symbol = 'SPX' AND minute = ?",
        [_minute(DAY, 0)],
    )
    result = checks.bar_integrity(wh, [DAY])
    assert not result["passed"]
    assert {k: result[k] for k in result if k.endswith(("violations", "_range", "_volume", "_minutes"))} == {
        "ohlc_violations": 1,
        "vwap_outside_range": 1,
        "negative_volume": 1,
        "duplicate_minutes": 1,
        "missing_minutes": 1,
        "extra_minutes": 1,
        "violations": 6,
    }
    assert result["examples"]["ohlc_violations"][0]["symbol"] == "SPY"
    assert result["examples"]["missing_minutes"][0]["minute"] == _minute(DAY, 30).isoformat()
    json.dumps(result)
    assert checks.bar_integrity(wh, [DAY2])["passed"]  # the other day is clean


def test_bar_integrity_flags_a_date_without_bars(wh) -> None:
    result = checks.bar_integrity(wh, [date(2024, 1, 5)])
    assert not result["passed"] and result["empty_dates"] == 1


def test_features_finite_catches_nan_null_inf_and_missing_rows_after_warmup_only(wh) -> None:
    wh.execute("UPDATE core.features_1m SET ret_1m = NULL WHERE symbol = 'SPY' AND minute = ?", [_minute(DAY, 2)])
    assert checks.features_finite(wh, [DAY], WARMUP_MINUTES)["passed"]  # before warm-up: allowed
    wh.execute("UPDATE core.features_1m SET ret_1m = 'nan' WHERE symbol = 'SPY' AND minute = ?", [_minute(DAY, 40)])
    wh.execute("UPDATE core.features_1m SET sma_5_20 = NULL WHERE symbol = 'QQQ' AND minute = ?", [_minute(DAY, 41)])
    wh.execute("UPDATE core.features_1m SET tod_sin = 'inf' WHERE symbol = 'SPX' AND minute = ?", [_minute(DAY, 42)])
    wh.execute("DELETE FROM core.features_1m WHERE symbol = 'SPX' AND minute = ?", [_minute(DAY, 50)])
    result = checks.features_finite(wh, [DAY], WARMUP_MINUTES)
    assert not result["passed"]
    assert result["non_finite_by_feature"] == {"ret_1m": 1, "sma_5_20": 1, "tod_sin": 1}
    assert result["non_finite_values"] == 3 and result["missing_feature_rows"] == 1
    assert {e["symbol"] for e in result["examples"]} == {"SPY", "QQQ", "SPX"}
    json.dumps(result)


def test_quarantine_counts_by_reason_and_a_flood_fails(wh) -> None:
    base = checks.quarantine_counts(wh, [DAY])
    assert base["passed"] and base["quarantined"] == 0 and base["received"] > 0
    for i in range(3):
        wh.execute(
            "INSERT INTO raw.quarantine VALUES ('t', 'ticks', ?, 'SPY', NULL, ?, '{}', now()::TIMESTAMP)",
            [DAY, "nan_price" if i else "duplicate"],
        )
    small = checks.quarantine_counts(wh, [DAY])
    assert small["passed"] and small["by_reason"] == {"duplicate": 1, "nan_price": 2}
    assert small["by_symbol"] == {"SPY": 3} and len(small["examples"]) == 3
    strict = checks.quarantine_counts(wh, [DAY], max_fraction=0.0)
    assert not strict["passed"]
    wh.execute(
        "INSERT INTO raw.quarantine SELECT 't', 'ticks', session_date, symbol, ts::TIMESTAMP, "
        "'out_of_order', '{}', now()::TIMESTAMP FROM raw.ticks WHERE session_date = ?",
        [DAY],
    )
    flood = checks.quarantine_counts(wh, [DAY])
    assert not flood["passed"] and flood["fraction"] > 0.01
    assert checks.quarantine_counts(wh, [DAY2])["quarantined"] == 0
    json.dumps(flood)


def test_truncation_invariance_check_catches_stale_features_and_look_ahead(wh, monkeypatch) -> None:
    wh.execute(
        "UPDATE core.features_1m SET ret_5m = ret_5m + 1 WHERE symbol = 'SPY' AND minute = ?",
        [_minute(DAY, 100)],
    )
    stale = checks.truncation_invariance(wh, [DAY])
    assert not stale["passed"] and stale["stale_rows"] == 1 and stale["mismatched_rows"] == 0

    def peeking(bars: pl.DataFrame) -> pl.DataFrame:
        out = compute_features(bars)
        return out.with_columns(pl.col("ret_1m").shift(-1).over("symbol", "session_date"))  # uses the next bar

    monkeypatch.setattr(checks, "compute_features", peeking)
    peek = checks.truncation_invariance(wh, [DAY2])
    assert not peek["passed"] and peek["mismatched_rows"] > 0
    assert any(e["kind"].startswith("cut_at_") for e in peek["examples"])
    json.dumps(peek)


def test_load_training_frame_joins_bars_and_features_in_order(wh) -> None:
    frame = load_training_frame(wh, ["SPY", "SPX"], DAY, DAY2)
    assert frame.columns == list(FRAME_COLUMNS)
    assert frame.columns[:6] == ["symbol", "session_date", "minute", "open", "close", "mean_spread"]
    assert frame.columns[6:] == list(FEATURES)
    assert frame.height == 2 * 2 * 390
    assert frame.equals(frame.sort("symbol", "session_date", "minute"))
    assert set(frame["symbol"]) == {"SPY", "SPX"}
    one = load_training_frame(wh, "QQQ", DAY2.isoformat(), DAY2.isoformat())
    assert one.height == 390 and set(one["session_date"]) == {DAY2}


def test_load_training_frame_refuses_missing_or_partial_data(wh) -> None:
    with pytest.raises(ValueError, match="no bars"):
        load_training_frame(wh, ["SPY"], date(2023, 1, 3), date(2023, 1, 10))
    wh.execute("DELETE FROM core.features_1m WHERE session_date = ? AND symbol = 'SPY'", [DAY2])
    with pytest.raises(ValueError, match="have no features"):
        load_training_frame(wh, ["SPY"], DAY, DAY2)
    with pytest.raises(ValueError, match="after"):
        load_training_frame(wh, ["SPY"], DAY2, DAY)
