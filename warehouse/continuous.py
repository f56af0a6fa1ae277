"""A futures root's continuous 1-minute series, derived from the stored bars of its contracts, with its rolls.

Each contract's ticks are stored under its own symbol (ESH24, ESM24); the continuous series takes, on each
session, the bars of that session's front contract (`market.futures.front_months`), and says which contract
every bar came from. Back-adjusted (difference method), each earlier contract's prices are shifted by the price
gap between the two contracts at the close of the session before each later roll, so returns across a roll are
the market's and not the contract switch; unadjusted, prices are the contracts' own. The whole range is rebuilt
at once (a later roll changes every adjusted price before it), replacing what was stored for those sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import polars as pl

from market.futures import Roll, front_months
from warehouse.db import query_polars, registered
from warehouse.partitions import PartitionWrite, replace_partitions


@dataclass(frozen=True)
class ContinuousStats:
    """What one build wrote."""

    root: str
    sessions: int
    bars: int
    rolls: tuple[Roll, ...]
    gaps: dict[str, float]  # roll date (ISO) -> price gap applied (back-adjusted only)


def contract_volumes(con: duckdb.DuckDBPyConnection, root: str, days: Sequence[date]) -> dict[tuple[str, date], float]:
    """Traded volume of each stored contract of `root` per session (what the volume roll rule reads)."""
    rows = con.execute(
        "SELECT symbol, session_date, sum(volume) FROM core.bars_1m WHERE symbol LIKE ? AND session_date BETWEEN ? "
        "AND ? GROUP BY ALL",
        [f"{root}%", min(days), max(days)],
    ).fetchall()
    return {(s, d): float(v) for s, d, v in rows}


def _last_close(con: duckdb.DuckDBPyConnection, contract: str, day: date) -> float:
    row = con.execute(
        "SELECT arg_max(close, minute) FROM core.bars_1m WHERE symbol = ? AND session_date = ? AND NOT filled",
        [contract, day],
    ).fetchone()
    if row is None or row[0] is None:
        raise ValueError(
            f"cannot back-adjust the roll to the next contract: no traded bar of {contract} on {day}; ingest both "
            "contracts' ticks for the session before each roll, or build the series unadjusted"
        )
    return float(row[0])


def build_continuous(
    con: duckdb.DuckDBPyConnection,
    root: str,
    days: Sequence[date],
    *,
    rule: str = "calendar",
    back_adjusted: bool = False,
) -> ContinuousStats:
    """Rebuild `root`'s continuous series over the sessions `days` from core.bars_1m; ValueError when a front
    contract has no bars on one of them (a missing contract is never replaced by another)."""
    days = sorted(set(days))
    if not days:
        raise ValueError("build_continuous needs at least one session")
    volumes = contract_volumes(con, root, days) if rule == "volume" else None
    fronts, rolls = front_months(root, days, rule, volumes)
    stored = {(s, d) for (s, d) in con.execute(
        "SELECT DISTINCT symbol, session_date FROM core.bars_1m WHERE session_date BETWEEN ? AND ?",
        [days[0], days[-1]],
    ).fetchall()}  # fmt: skip
    missing = [f"{c} on {d}" for d, c in fronts.items() if (c, d) not in stored]
    if missing:
        raise ValueError(f"{root} continuous series: no bars for the front contract {', '.join(missing[:5])}")
    gaps: dict[str, float] = {}
    adjustment = dict.fromkeys(days, 0.0)
    if back_adjusted:
        for roll in rolls:
            before = max(d for d in days if d < roll.day)
            gap = _last_close(con, roll.to_contract, before) - _last_close(con, roll.from_contract, before)
            gaps[roll.day.isoformat()] = gap
            for d in days:
                if d < roll.day:
                    adjustment[d] += gap
    plan = pl.DataFrame(
        {
            "symbol": [fronts[d] for d in days],
            "session_date": pl.Series(days, dtype=pl.Date),
            "adjustment": [adjustment[d] for d in days],
        }
    )
    roll_rows = pl.DataFrame(
        {
            "root": [root] * len(rolls),
            "roll_date": pl.Series([r.day for r in rolls], dtype=pl.Date),
            "from_contract": [r.from_contract for r in rolls],
            "to_contract": [r.to_contract for r in rolls],
            "rule": [r.rule for r in rolls],
            "gap": pl.Series([gaps.get(r.day.isoformat()) for r in rolls], dtype=pl.Float64),
        },
        schema={"root": pl.Utf8, "roll_date": pl.Date, "from_contract": pl.Utf8, "to_contract": pl.Utf8,
                "rule": pl.Utf8, "gap": pl.Float64},
    )  # fmt: skip
    # The whole span is replaced, also sessions in it that were not asked for this time (their adjustment would
    # be stale): every calendar date from the first session to the last.
    span = [days[0] + timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]
    with registered(con, plan) as pv:
        select = f"""SELECT ? AS root, b.session_date, b.minute, b.symbol AS contract,
                            b.open + p.adjustment AS open, b.high + p.adjustment AS high,
                            b.low + p.adjustment AS low, b.close + p.adjustment AS close,
                            b.volume, b.trade_count, b.filled, p.adjustment, ? AS back_adjusted
                     FROM core.bars_1m b JOIN {pv} p ON p.symbol = b.symbol AND p.session_date::DATE = b.session_date"""
        writes = [
            PartitionWrite(
                "core.continuous_bars_1m",
                select_sql=select,
                params=[root, back_adjusted],
                extra_where={"session_date": span},
            ),
            PartitionWrite("core.futures_rolls", frame=roll_rows, extra_where={"roll_date": span}),
        ]
        written = replace_partitions(con, root, writes, partition_column="root").get("core.continuous_bars_1m", 0)
    return ContinuousStats(root, len(days), int(written), tuple(rolls), gaps)


def continuous_bars(con: duckdb.DuckDBPyConnection, root: str, start: date, end: date) -> pl.DataFrame:
    """The stored continuous series of `root` in [start, end], in time order."""
    return query_polars(
        con,
        "SELECT * FROM core.continuous_bars_1m WHERE root = ? AND session_date BETWEEN ? AND ? ORDER BY minute",
        [root, start, end],
    )
