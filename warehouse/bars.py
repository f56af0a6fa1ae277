"""1-minute bars in DuckDB SQL (sql/bars_1m.sql) on the session's calendar minutes, written idempotently."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import duckdb
import numpy as np

from market.calendar import session_bounds
from warehouse.partitions import replace_partition_sql

BARS_SQL_PATH = Path(__file__).parent / "sql" / "bars_1m.sql"


@dataclass(frozen=True)
class BarStats:
    """What one build wrote: bars (filled ones among them), symbols and the ticks aggregated."""

    session_date: date
    symbols: tuple[str, ...]
    bars: int
    filled: int
    ticks: int
    seconds: float  # whole build
    trades_s: float = 0.0  # aggregating raw.ticks per minute
    quotes_s: float = 0.0  # aggregating raw.quotes per minute
    write_s: float = 0.0  # calendar grid, carry-forward and the partition replace


@lru_cache(maxsize=1)
def bars_sql() -> dict[str, str]:
    """The steps of sql/bars_1m.sql by name (read once): trade_minutes, quote_minutes, bars."""
    steps: dict[str, str] = {}
    for chunk in BARS_SQL_PATH.read_text().split("-- step: ")[1:]:
        name, _, body = chunk.partition("\n")
        steps[name.strip()] = body.strip().rstrip(";")
    if list(steps) != ["trade_minutes", "quote_minutes", "bars"]:
        raise RuntimeError(
            f"{BARS_SQL_PATH.name}: expected steps trade_minutes, quote_minutes, bars; got {list(steps)}"
        )
    return steps


def _py(ts: np.datetime64) -> datetime:
    return ts.astype("datetime64[us]").item()


def build_bars(con: duckdb.DuckDBPyConnection, session_date: date) -> BarStats:
    """Aggregate raw.ticks (+ raw.quotes) of `session_date` into core.bars_1m, replacing that partition.

    Every symbol with at least one tick that day gets exactly the calendar's minutes (390, or 210 on an early
    close); a non-session date raises ValueError.
    """
    open_, close_ = session_bounds(session_date)
    steps = bars_sql()
    t0 = time.perf_counter()
    try:
        con.execute(steps["trade_minutes"], {"session_date": session_date})
        t1 = time.perf_counter()
        con.execute(steps["quote_minutes"], {"session_date": session_date})
        t2 = time.perf_counter()
        params = {"session_date": session_date, "open": _py(open_), "close": _py(close_)}
        replace_partition_sql(con, "core.bars_1m", session_date, steps["bars"], params)
        t3 = time.perf_counter()
    finally:
        con.execute("DROP TABLE IF EXISTS _bars_trade_minutes; DROP TABLE IF EXISTS _bars_quote_minutes")
    seconds = time.perf_counter() - t0
    rows = con.execute(
        "SELECT symbol, count(*), count(*) FILTER (WHERE filled), sum(trade_count) "
        "FROM core.bars_1m WHERE session_date = ? GROUP BY symbol ORDER BY symbol",
        [session_date],
    ).fetchall()
    return BarStats(
        session_date=session_date,
        symbols=tuple(r[0] for r in rows),
        bars=sum(r[1] for r in rows),
        filled=sum(r[2] for r in rows),
        ticks=int(sum(r[3] for r in rows)),
        seconds=seconds,
        trades_s=t1 - t0,
        quotes_s=t2 - t1,
        write_s=t3 - t2,
    )
