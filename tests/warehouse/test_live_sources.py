"""What the warehouse does with any live source: vendor minute bars, extended hours, gaps and coverage checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from market.calendar import extended_bounds, fetch_window, session_bounds
from market.sources import BAR_SCHEMA, DayTape, MissingDataError, bars_from_trades
from market.symbols import get_symbol
from market.synthetic import SyntheticMarketConfig, SyntheticSource
from warehouse.bars import build_bars
from warehouse.checks import session_coverage, vendor_bar_agreement
from warehouse.db import connect, query_polars
from warehouse.ingest import ingest_day
from warehouse.validate import split_extended, validate_bars

DAY, DAY2 = date(2024, 3, 8), date(2024, 3, 11)  # Friday before and Monday after the US switch to summer time
CFG = SyntheticMarketConfig(seed=5, trades_per_day=2_000, quotes_per_day=2_000)


@pytest.fixture
def con(tmp_path: Path):
    c = connect(tmp_path / "warehouse.duckdb")
    yield c
    c.close()


def _bars(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame([("SPY", *r) for r in rows], schema=BAR_SCHEMA, orient="row")


def _count(con, table: str, d: date, symbol: str | None = None) -> int:
    sql = f"SELECT count(*) FROM {table} WHERE session_date = ?" + (" AND symbol = ?" if symbol else "")
    return con.execute(sql, [d, symbol] if symbol else [d]).fetchone()[0]


def _dt(x: np.datetime64) -> datetime:
    return x.astype("datetime64[us]").item()


def test_extended_window_is_4_to_20_new_york_across_the_clock_change() -> None:
    assert [_dt(x) for x in extended_bounds(DAY)] == [datetime(2024, 3, 8, 9), datetime(2024, 3, 9, 1)]
    assert [_dt(x) for x in extended_bounds(DAY2)] == [datetime(2024, 3, 11, 8), datetime(2024, 3, 12)]
    assert fetch_window(DAY, False) == session_bounds(DAY)
    with pytest.raises(ValueError, match="not an NYSE session"):
        extended_bounds(date(2024, 3, 9))


def test_vendor_bars_are_quarantined_by_reason() -> None:
    open_ = _dt(session_bounds(DAY)[0])
    m = lambda k: open_ + timedelta(minutes=k)  # noqa: E731
    raw = _bars(
        [
            (m(0), 10.0, 11.0, 9.5, 10.5, 100.5, 10.2, 3),
            (m(2), 10.5, 10.6, 10.4, 10.5, 7.25, None, None),  # fractional volume, no vwap: kept
            (m(1), 10.0, 11.0, 9.5, 10.5, 100.0, 10.2, 3),  # earlier than a kept bar
            (m(2), 10.5, 10.7, 10.4, 10.6, 1.0, 10.5, 1),  # a second bar for minute 2
            (m(3) + timedelta(seconds=30), 10.0, 11.0, 9.5, 10.5, 1.0, 10.2, 1),
            (m(4), float("nan"), 11.0, 9.5, 10.5, 1.0, 10.2, 1),
            (m(5), 10.0, 9.0, 9.5, 10.5, 1.0, 10.2, 1),  # high below low
            (m(6), 10.0, 11.0, 9.5, 10.5, -1.0, 10.2, 1),
            (m(7), -1.0, 11.0, 9.5, 10.5, 1.0, 10.2, 1),
            (open_ - timedelta(hours=6), 10.0, 11.0, 9.5, 10.5, 1.0, 10.2, 1),
        ]
    )
    clean, bad = validate_bars(raw.with_columns(), get_symbol("SPY"), DAY)
    assert clean["ts"].to_list() == [m(0), m(2)]
    assert clean["volume"].to_list() == [100.5, 7.25] and clean["vwap"].to_list() == [10.2, None]
    assert bad["reason"].to_list() == [
        "out_of_order",
        "duplicate",
        "misaligned",
        "nan_price",
        "bad_ohlc",
        "bad_volume",
        "non_positive_price",
        "out_of_session",
    ]
    wrong = validate_bars(raw.head(1).with_columns(pl.lit("QQQ").alias("symbol")), get_symbol("SPY"), DAY)[1]
    assert wrong["reason"].to_list() == ["wrong_symbol"]


def test_split_extended_drops_only_pre_and_after_hours() -> None:
    open_, close_ = (_dt(x) for x in session_bounds(DAY))
    ext_open, ext_close = (_dt(x) for x in extended_bounds(DAY))
    ts = [ext_open - timedelta(seconds=1), ext_open, open_ - timedelta(seconds=1), open_, close_, ext_close]
    frame = pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Datetime("ns")), "price": [1.0] * 6})
    kept, dropped = split_extended(frame, DAY)
    assert dropped == 3
    assert kept["ts"].to_list() == [ts[0], ts[3], ts[5]]  # outside both windows stays, to be quarantined


def test_minute_bars_from_trades_match_the_tick_built_bars(con) -> None:
    source = SyntheticSource(CFG)
    tape = source.fetch_day("SPY", DAY)
    assert tape.bars.schema == pl.Schema(BAR_SCHEMA)
    assert tape.bars.height and tape.bars["ts"].is_sorted()
    assert tape.bars["trade_count"].sum() == tape.trades.height
    ingest_day(con, source, ["SPY"], DAY)
    build_bars(con, DAY)
    ours = query_polars(
        con, "SELECT minute, open, high, low, close, volume FROM core.bars_1m WHERE NOT filled ORDER BY minute"
    )
    theirs = tape.bars.select(pl.col("ts").cast(pl.Datetime("us")).alias("minute"), "open", "high", "low", "close")
    assert ours.drop("volume").equals(theirs)
    assert np.allclose(ours["volume"].to_numpy(), tape.bars["volume"].to_numpy())
    assert vendor_bar_agreement(con, [DAY])["passed"]
    empty = bars_from_trades(tape.trades.head(0))
    assert empty.height == 0 and empty.schema == pl.Schema(BAR_SCHEMA)


@dataclass
class ShiftedSource:
    """The synthetic market plus pre- and after-hours trades and bars, like a vendor's full day."""

    inner: SyntheticSource
    name: str = "shifted"

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        tape = self.inner.fetch_day(symbol, session_date)
        open_, close_ = (_dt(x) for x in session_bounds(session_date))
        extra = pl.DataFrame(
            {
                "symbol": [symbol] * 2,
                "ts": pl.Series(
                    [open_ - timedelta(minutes=30), close_ + timedelta(minutes=30)], dtype=pl.Datetime("ns")
                ),
                "price": [tape.trades["price"][0]] * 2,
                "size": [5.0, 5.0] if symbol != "SPX" else [0.0, 0.0],
            }
        )
        trades = pl.concat([extra.head(1), tape.trades, extra.tail(1)])
        return DayTape(trades, tape.quotes, bars_from_trades(trades))


def test_extended_hours_are_dropped_by_default_and_kept_when_configured(con) -> None:
    source = ShiftedSource(SyntheticSource(CFG))
    regular = ingest_day(con, source, ["SPY", "SPX"], DAY)
    assert regular.extended_dropped == 8 and regular.quarantined == 0  # 2 trades + 2 bars per symbol
    assert regular.ticks == sum(SyntheticSource(CFG).fetch_day(s, DAY).trades.height for s in ("SPY", "SPX"))
    kept = ingest_day(con, source, ["SPY", "SPX"], DAY, extended_hours=True)
    assert kept.extended_dropped == 0 and kept.quarantined == 0
    assert kept.ticks == regular.ticks + 4 and kept.bars == regular.bars + 4
    build_bars(con, DAY)  # bars stay on the regular session's minutes
    assert _count(con, "core.bars_1m", DAY) == 2 * 390


@dataclass
class GappySource:
    """Serves the synthetic market except for (symbol, date) pairs the vendor has nothing for."""

    inner: SyntheticSource
    missing: set[tuple[str, date]] = field(default_factory=set)
    name: str = "gappy"

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        if (symbol, session_date) in self.missing:
            raise MissingDataError(f"vendor returned no trades and no bars for {symbol} on {session_date}")
        return self.inner.fetch_day(symbol, session_date)


def test_a_missing_day_is_a_gap_that_keeps_stored_rows_and_is_reported(con) -> None:
    source = GappySource(SyntheticSource(CFG))
    ingest_day(con, source, ["SPY", "QQQ"], DAY)
    before = {s: _count(con, "raw.ticks", DAY, s) for s in ("SPY", "QQQ")}
    assert session_coverage(con, [DAY, DAY2], ["SPY", "QQQ"])["gaps"] == 2  # DAY2 never ingested

    source.missing = {("SPY", DAY), ("QQQ", DAY2)}
    stats = ingest_day(con, source, ["SPY", "QQQ"], DAY)
    assert list(stats.gaps) == ["SPY"] and "no trades" in stats.gaps["SPY"]
    assert {s: _count(con, "raw.ticks", DAY, s) for s in ("SPY", "QQQ")} == before  # SPY kept, QQQ rewritten
    assert _count(con, "raw.minute_bars", DAY, "SPY") > 0
    ingest_day(con, source, ["SPY", "QQQ"], DAY2)
    coverage = session_coverage(con, [DAY, DAY2], ["SPY", "QQQ"])
    assert not coverage["passed"] and coverage["without_ticks"] == 1 and coverage["vendor_gaps_with_ticks_kept"] == 1
    assert coverage["gap_list"] == [
        {
            "symbol": "SPY",
            "session_date": "2024-03-08",
            "source": "gappy",
            "reason": source_reason("SPY", DAY),
            "ticks_kept": True,
        },
        {
            "symbol": "QQQ",
            "session_date": "2024-03-11",
            "source": "gappy",
            "reason": source_reason("QQQ", DAY2),
            "ticks_kept": False,
        },
    ]

    source.missing = set()
    assert ingest_day(con, source, ["SPY", "QQQ"], DAY2).gaps == {}
    assert ingest_day(con, source, ["SPY", "QQQ"], DAY).gaps == {}
    assert session_coverage(con, [DAY, DAY2], ["SPY", "QQQ"])["passed"]
    assert _count(con, "raw.ingest_gaps", DAY) == 0 and _count(con, "raw.ingest_gaps", DAY2) == 0


def source_reason(symbol: str, d: date) -> str:
    return f"vendor returned no trades and no bars for {symbol} on {d}"


def test_vendor_bars_without_our_trades_flag_truncated_ticks(con) -> None:
    inner = SyntheticSource(CFG)

    class Truncated:
        name = "truncated"

        def fetch_day(self, symbol: str, session_date: date) -> DayTape:
            tape = inner.fetch_day(symbol, session_date)
            half = tape.trades.head(tape.trades.height // 2)  # a page cut short; the vendor's bars still cover all
            return DayTape(half, tape.quotes, tape.bars)

    ingest_day(con, Truncated(), ["SPY"], DAY)
    build_bars(con, DAY)
    result = vendor_bar_agreement(con, [DAY])
    assert not result["passed"]
    assert result["vendor_bars"] == inner.fetch_day("SPY", DAY).bars.height
    assert result["minutes_without_our_trades"] > 100
    assert result["examples"]


@dataclass
class SwitchedSource:
    """The synthetic market with some streams not fetched (None), like a live source with `ticks: false`."""

    inner: SyntheticSource
    off: tuple[str, ...] = ()
    name: str = "switched"

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        tape = self.inner.fetch_day(symbol, session_date)
        parts = {"trades": tape.trades, "quotes": tape.quotes, "bars": tape.bars}
        return DayTape(**{k: None if k in self.off else v for k, v in parts.items()})


def test_a_stream_not_fetched_keeps_its_stored_rows_and_their_quarantine(con) -> None:
    inner = SyntheticSource(CFG)

    class Noisy:
        name = "noisy"

        def fetch_day(self, symbol: str, session_date: date) -> DayTape:
            tape = inner.fetch_day(symbol, session_date)
            return DayTape(pl.concat([tape.trades, tape.trades.head(1)]), tape.quotes, tape.bars)  # one duplicate

    ingest_day(con, Noisy(), ["SPY"], DAY)
    stored = {t: _count(con, t, DAY) for t in ("raw.ticks", "raw.quotes", "raw.minute_bars", "raw.quarantine")}
    assert stored["raw.quarantine"] == 1
    stats = ingest_day(con, SwitchedSource(inner, off=("trades", "quotes")), ["SPY"], DAY)
    assert stats.ticks == 0 and stats.bars == stored["raw.minute_bars"]
    assert {t: _count(con, t, DAY) for t in stored} == stored  # ticks, quotes and the ticks' quarantine row stay
    ingest_day(con, SwitchedSource(inner), ["SPY"], DAY)  # everything fetched again, clean this time
    assert _count(con, "raw.quarantine", DAY) == 0 and _count(con, "raw.ticks", DAY) == stored["raw.ticks"]
