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
    strict = checks.quarantine_counts(wh, [DAY], checks.Thresholds(max_quarantine_share=0.0))
    assert not strict["passed"] and list(strict["partitions_over"]) == [DAY.isoformat()]
    wh.execute(
        "INSERT INTO raw.quarantine SELECT 't', 'ticks', session_date, symbol, ts::TIMESTAMP, "
        "'out_of_order', '{}', now()::TIMESTAMP FROM raw.ticks WHERE session_date = ?",
        [DAY],
    )
    flood = checks.quarantine_counts(wh, [DAY])
    assert not flood["passed"] and flood["fraction"] > 0.01
    assert checks.quarantine_counts(wh, [DAY2])["quarantined"] == 0
    both = checks.quarantine_counts(wh, [DAY, DAY2])  # judged per partition: the clean day does not dilute it
    assert not both["passed"] and list(both["partitions_over"]) == [DAY.isoformat()]
    assert both["worst_fraction"] == flood["fraction"]
    json.dumps(flood)


def test_a_mostly_forward_filled_session_fails_bar_integrity(wh) -> None:
    assert checks.bar_integrity(wh, [DAY])["mostly_filled_sessions"] == 0
    wh.execute(
        "UPDATE core.bars_1m SET filled = true WHERE symbol = 'QQQ' AND session_date = ? AND minute >= ?",
        [DAY, _minute(DAY, 6)],
    )
    result = checks.bar_integrity(wh, [DAY])
    assert not result["passed"] and result["mostly_filled_sessions"] == 1
    assert result["examples"]["mostly_filled_sessions"][0]["symbol"] == "QQQ"
    assert checks.bar_integrity(wh, [DAY], checks.Thresholds(max_filled_share=1.0))["passed"]


def test_session_coverage_flags_a_session_whose_ticks_end_early(wh) -> None:
    assert checks.session_coverage(wh, [DAY], SYMBOLS)["passed"]
    wh.execute("DELETE FROM raw.ticks WHERE symbol = 'SPY' AND session_date = ? AND ts >= ?", [DAY, _minute(DAY, 321)])
    result = checks.session_coverage(wh, [DAY], SYMBOLS)  # the recording stops at 14:51 New York
    assert not result["passed"] and result["partial_sessions"] == 1 and result["gaps"] == 0
    assert result["partial_list"][0]["symbol"] == "SPY"
    assert checks.session_coverage(wh, [DAY], SYMBOLS, checks.Thresholds(max_early_end_minutes=90))["passed"]
    wh.execute("DELETE FROM raw.ticks WHERE symbol = 'QQQ' AND session_date = ? AND minute(ts) % 3 > 0", [DAY])
    sparse = checks.session_coverage(wh, [DAY], SYMBOLS, checks.Thresholds(max_early_end_minutes=90))
    assert sparse["partial_sessions"] == 1 and sparse["partial_list"][0]["traded_share"] < 0.5


def test_extreme_bar_returns_and_sessions_without_quotes_are_flagged(wh) -> None:
    assert checks.extreme_bar_returns(wh, [DAY])["passed"] and checks.quote_coverage(wh, [DAY])["passed"]
    wh.execute("UPDATE core.bars_1m SET close = close * 10 WHERE symbol = 'SPY' AND minute = ?", [_minute(DAY, 100)])
    moves = checks.extreme_bar_returns(wh, [DAY])
    assert not moves["passed"] and moves["extreme_bars"] == 2  # up into the bad minute, and back down
    wh.execute(
        "UPDATE core.bars_1m SET spread_modelled = true WHERE symbol IN ('QQQ', 'SPX') AND session_date = ?", [DAY]
    )
    quotes = checks.quote_coverage(wh, [DAY])
    assert not quotes["passed"] and [m["symbol"] for m in quotes["modelled"]] == ["QQQ"]  # an index has no quotes
    assert "1 ticks by the instrument's spread model" in quotes["modelled"][0]["reason"]


def test_thresholds_refuse_unknown_keys_and_bad_values() -> None:
    assert checks.Thresholds.from_dict({"max_filled_share": 0.2}).max_filled_share == 0.2
    with pytest.raises(ValueError, match=r"checks: unknown keys \['max_fill'\]"):
        checks.Thresholds.from_dict({"max_fill": 0.2})
    with pytest.raises(ValueError, match=r"checks.max_quarantine_share must be a share in \[0, 1\]"):
        checks.Thresholds(max_quarantine_share=2)


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
