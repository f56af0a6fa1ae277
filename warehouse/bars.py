"""1-minute bars in DuckDB SQL (sql/bars_1m.sql) on each symbol's own calendar minutes, written idempotently."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import duckdb

from market.calendar import is_session
from market.symbols import get_symbol, session_rules
from warehouse.partitions import replace_partition_sql
from warehouse.sessions import symbol_sessions

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
    spread_modelled: tuple[str, ...] = ()  # symbols without a quote all day: spread from the instrument's model
    vendor_built: tuple[str, ...] = ()  # symbols without ticks whose bars come from the vendor's minute bars
    trades_s: float = 0.0  # aggregating raw.ticks per minute
    quotes_s: float = 0.0  # aggregating raw.quotes per minute
    write_s: float = 0.0  # calendar grid, carry-forward and the partition replace


@lru_cache(maxsize=1)
def bars_sql() -> dict[str, str]:
    """The steps of sql/bars_1m.sql by name (read once): trade_minutes, quote_minutes, vendor_minutes, bars."""
    steps: dict[str, str] = {}
    for chunk in BARS_SQL_PATH.read_text().split("-- step: ")[1:]:
        name, _, body = chunk.partition("\n")
        steps[name.strip()] = body.strip().rstrip(";")
    if list(steps) != ["trade_minutes", "quote_minutes", "vendor_minutes", "bars"]:
        expected = "trade_minutes, quote_minutes, vendor_minutes, bars"
        raise RuntimeError(f"{BARS_SQL_PATH.name}: expected steps {expected}; got {list(steps)}")
    return steps


def _make_grid(con: duckdb.DuckDBPyConnection, session_date: date) -> None:
    """Create _bars_grid: the calendar minutes of every symbol with a trade (or, failing that, a vendor bar) that
    day, with how its bars are built and its instrument's fallback spread. The minutes are generated in SQL from
    each symbol's own open and close (a few rows of parameters, no frame to register)."""
    built = con.execute(
        "SELECT DISTINCT symbol, 'ticks' FROM _bars_trade_minutes "
        "UNION ALL SELECT DISTINCT symbol, 'vendor' FROM _bars_vendor_minutes ORDER BY 1"
    ).fetchall()
    if not built:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _bars_grid (symbol VARCHAR, minute TIMESTAMP, built_from VARCHAR, "
            "fallback_spread DOUBLE, fallback_bps DOUBLE)"
        )
        return
    sessions = symbol_sessions((s, session_date) for s, _ in built)
    rows, params = [], []
    for (symbol, how), opened, closed in zip(built, sessions["open"], sessions["close"], strict=True):
        fixed, bps = get_symbol(symbol, session_date).fallback_spread
        rows.append("(?, ?::TIMESTAMP, ?::TIMESTAMP, ?, ?::DOUBLE, ?::DOUBLE)")
        params += [symbol, opened, closed, how, fixed, bps]
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _bars_grid AS
            SELECT symbol, unnest(generate_series(open, close - INTERVAL 1 MINUTE, INTERVAL 1 MINUTE)) AS minute,
                   built_from, fallback_spread, fallback_bps
            FROM (VALUES {", ".join(rows)}) AS s(symbol, open, close, built_from, fallback_spread, fallback_bps)""",
        params,
    )


def build_bars(con: duckdb.DuckDBPyConnection, session_date: date) -> BarStats:
    """Aggregate raw.ticks (+ raw.quotes) of `session_date` into core.bars_1m, replacing that partition.

    Every symbol with at least one tick that day gets exactly its own calendar's minutes (NYSE: 390, or 210 on an
    early close; CME equity index: 1,380); a date that is not a session of a symbol's calendar raises ValueError.
    """
    if not any(is_session(session_date, rule) for rule in session_rules()):
        raise ValueError(f"{session_date} is not a session of any instrument's calendar")
    steps = bars_sql()
    t0 = time.perf_counter()
    try:
        con.execute(steps["trade_minutes"], {"session_date": session_date})
        t1 = time.perf_counter()
        con.execute(steps["quote_minutes"], {"session_date": session_date})
        con.execute(steps["vendor_minutes"], {"session_date": session_date})
        t2 = time.perf_counter()
        _make_grid(con, session_date)
        replace_partition_sql(con, "core.bars_1m", session_date, steps["bars"], {"session_date": session_date})
        t3 = time.perf_counter()
    finally:
        con.execute(
            "DROP TABLE IF EXISTS _bars_trade_minutes; DROP TABLE IF EXISTS _bars_quote_minutes; "
            "DROP TABLE IF EXISTS _bars_vendor_minutes; DROP TABLE IF EXISTS _bars_grid"
        )
    seconds = time.perf_counter() - t0
    rows = con.execute(
        "SELECT symbol, count(*), count(*) FILTER (WHERE filled), coalesce(sum(trade_count), 0), "
        "bool_and(spread_modelled), any_value(built_from) FROM core.bars_1m WHERE session_date = ? "
        "GROUP BY symbol ORDER BY symbol",
        [session_date],
    ).fetchall()
    return BarStats(
        session_date=session_date,
        symbols=tuple(r[0] for r in rows),
        bars=sum(r[1] for r in rows),
        filled=sum(r[2] for r in rows),
        ticks=int(sum(r[3] for r in rows)),
        seconds=seconds,
        spread_modelled=tuple(r[0] for r in rows if r[4]),
        vendor_built=tuple(r[0] for r in rows if r[5] == "vendor"),
        trades_s=t1 - t0,
        quotes_s=t2 - t1,
        write_s=t3 - t2,
    )
