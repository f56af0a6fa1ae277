"""Nanosecond stamps are bucketed into minutes exactly: a tick in the last nanoseconds of a minute stays in it.

Polygon stamps index levels at the second's end minus 1 ns (14:31:59.999999999). DuckDB's date_trunc('minute', ts)
and ts::TIMESTAMP round a TIMESTAMP_NS to microseconds first, which moved every stamp from :59.9999995 on into the
next minute's bar (and the session's last nanoseconds out of the session)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

import warehouse.checks as checks
from market.sources import DayTape, empty_quotes
from warehouse.bars import build_bars
from warehouse.db import connect, query_polars
from warehouse.ingest import ingest_day

DAY = date(2024, 3, 5)  # a Tuesday before the DST switch: NYSE 14:30-21:00 UTC


def _ns(stamp: str) -> np.datetime64:
    return np.datetime64(f"2024-03-05T{stamp}", "ns")


def _trades(symbol: str, rows: list[tuple[str, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(rows),
            "ts": pl.Series(np.array([_ns(t) for t, _, _ in rows], dtype="datetime64[ns]")),
            "price": [p for _, p, _ in rows],
            "size": [s for _, _, s in rows],
        }
    )


def _quotes(symbol: str, rows: list[tuple[str, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(rows),
            "ts": pl.Series(np.array([_ns(t) for t, _, _ in rows], dtype="datetime64[ns]")),
            "bid": [b for _, b, _ in rows],
            "ask": [a for _, _, a in rows],
            "bid_size": [100.0] * len(rows),
            "ask_size": [100.0] * len(rows),
        }
    )


class _Frames:
    name = "frames"

    def __init__(self, tapes: dict[str, tuple[pl.DataFrame, pl.DataFrame]]) -> None:
        self.tapes = tapes

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        return DayTape(*self.tapes[symbol])


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "warehouse.duckdb")
    yield c
    c.close()


def _bars(con, symbol: str) -> dict:
    rows = query_polars(
        con,
        "SELECT strftime(minute, '%H:%M') AS hm, open, close, volume, trade_count, mean_spread, filled "
        "FROM core.bars_1m WHERE symbol = ? AND session_date = ? ORDER BY minute",
        [symbol, DAY],
    )
    return {r["hm"]: r for r in rows.iter_rows(named=True)}


def test_ticks_in_the_last_nanoseconds_of_a_minute_stay_in_its_bar(con) -> None:
    spy = _trades(
        "SPY",
        [
            ("14:31:30", 100.0, 1.0),
            ("14:31:59.9999995", 100.5, 2.0),  # rounds up to 14:32:00.000000 at microseconds
            ("14:31:59.999999999", 101.0, 4.0),  # Polygon's second end minus 1 ns
            ("14:32:00.000000000", 102.0, 8.0),
            ("14:32:30", 103.0, 16.0),
        ],
    )
    spy_quotes = _quotes(
        "SPY",
        [("14:31:00", 99.99, 100.01), ("14:31:59.999999999", 99.97, 100.03), ("14:32:00.000000000", 99.95, 100.05)],
    )
    spx = _trades("SPX", [("14:31:10", 5000.0, 0.0), ("14:31:59.999999999", 5001.0, 0.0), ("14:32:00", 5002.0, 0.0)])
    ingest_day(con, _Frames({"SPY": (spy, spy_quotes), "SPX": (spx, empty_quotes())}), ["SPY", "SPX"], DAY)
    stored = con.execute(
        "SELECT epoch_ns(ts) % 60000000000 FROM raw.ticks WHERE symbol = 'SPY' ORDER BY seq"
    ).fetchall()
    assert [r[0] for r in stored] == [30_000_000_000, 59_999_999_500, 59_999_999_999, 0, 30_000_000_000]
    stats = build_bars(con, DAY)
    assert stats.ticks == 8  # every stored tick is in some bar

    bars = _bars(con, "SPY")
    one, two, three = bars["14:31"], bars["14:32"], bars["14:33"]
    assert (one["open"], one["close"], one["volume"], one["trade_count"]) == (100.0, 101.0, 7.0, 3)
    assert (two["open"], two["close"], two["volume"], two["trade_count"]) == (102.0, 103.0, 24.0, 2)
    assert three["filled"] and three["trade_count"] == 0 and three["close"] == 103.0
    assert one["mean_spread"] == pytest.approx((0.02 + 0.06) / 2)  # the 14:31:59.999999999 quote is 14:31's
    assert two["mean_spread"] == pytest.approx(0.10)

    index = _bars(con, "SPX")
    assert (index["14:31"]["open"], index["14:31"]["close"], index["14:31"]["trade_count"]) == (5000.0, 5001.0, 2)
    assert (index["14:32"]["open"], index["14:32"]["close"], index["14:32"]["trade_count"]) == (5002.0, 5002.0, 1)


def test_the_sessions_last_nanosecond_counts_in_its_last_bar(con) -> None:
    spy = _trades("SPY", [("14:30:00", 100.0, 1.0), ("20:59:30", 101.0, 2.0), ("20:59:59.999999999", 102.0, 4.0)])
    ingest_day(con, _Frames({"SPY": (spy, empty_quotes())}), ["SPY"], DAY)
    stats = build_bars(con, DAY)
    assert stats.bars == 390 and stats.ticks == 3  # not dropped as a 21:00 bar outside the calendar grid
    last = _bars(con, "SPY")["20:59"]
    assert (last["open"], last["close"], last["volume"], last["trade_count"]) == (101.0, 102.0, 6.0, 2)


def test_session_coverage_counts_traded_minutes_on_nanosecond_stamps(con) -> None:
    spy = _trades("SPY", [("14:31:59.999999999", 100.0, 1.0), ("14:32:00.5", 100.0, 1.0)])
    ingest_day(con, _Frames({"SPY": (spy, empty_quotes())}), ["SPY"], DAY)
    result = checks.session_coverage(con, [DAY], ["SPY"])
    assert not result["passed"] and result["partial_list"][0]["traded_minutes"] == 2
