"""Shadow signals and promotion decisions in the warehouse (`ml.signals`, `ml.promotions`).

A partition's signals are replaced as a whole for one (family, partition, policy): playing a day again never
duplicates a decision, while the signals another policy took that day stay for comparison. A promotion decision is
insert-only, like every run record (`warehouse.runs.record_promotion`); the latest one names the promoted
policy.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import duckdb
import polars as pl

from warehouse.db import query_polars, utc_now
from warehouse.partitions import PartitionWrite, replace_partitions

SIGNALS = "ml.signals"
SIGNAL_COLUMNS = (
    "checkpoint", "episode", "symbol", "step", "bar_ts", "action", "action_name", "probabilities", "mask",
    "position_before", "position_after", "fill_price", "step_pnl", "net_pnl",
)  # fmt: skip


def replace_signals(
    con: duckdb.DuckDBPyConnection, family: str, partition: date, policy_run_id: str, frame: pl.DataFrame
) -> int:
    """Replace the signals of `policy_run_id` on `partition` by `frame` (SIGNAL_COLUMNS) in one transaction."""
    missing = [c for c in SIGNAL_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"signals frame lacks columns {missing}")
    rows = frame.select(SIGNAL_COLUMNS).with_columns(
        pl.lit(family).alias("family"),
        pl.lit(partition).alias("partition_date"),
        pl.lit(policy_run_id).alias("policy_run_id"),
        pl.lit(utc_now()).alias("created_at"),
    )
    write = PartitionWrite(SIGNALS, frame=rows, extra_where={"family": family, "policy_run_id": policy_run_id})
    return replace_partitions(con, partition, [write], partition_column="partition_date")[SIGNALS]


def get_signals(con: duckdb.DuckDBPyConnection, family: str, partition: date | None = None) -> pl.DataFrame:
    """The stored decisions of a family (one partition, or all), in decision order."""
    where, params = "family = ?", [family]
    if partition is not None:
        where, params = where + " AND partition_date = ?", [family, partition]
    return query_polars(
        con,
        f"SELECT * FROM {SIGNALS} WHERE {where} ORDER BY partition_date, policy_run_id, checkpoint, episode, step",
        params,
    )


def shadow_days(con: duckdb.DuckDBPyConnection, family: str, policy_run_id: str) -> pl.DataFrame:
    """Per partition and checkpoint of one policy: its shadow net P&L (sum over accounts of the day's step P&L),
    decisions and trades."""
    return query_polars(
        con,
        f"""SELECT partition_date, checkpoint, sum(step_pnl) AS net_pnl, count(*) AS decisions,
                   count(fill_price) AS trades, count(DISTINCT episode) AS accounts
            FROM {SIGNALS} WHERE family = ? AND policy_run_id = ?
            GROUP BY partition_date, checkpoint ORDER BY partition_date, checkpoint""",
        [family, policy_run_id],
    )


def latest_promotion(con: duckdb.DuckDBPyConnection, family: str) -> dict[str, Any] | None:
    """The family's latest promotion decision with its JSON decoded, or None before the first."""
    rows = query_polars(
        con,
        "SELECT * FROM ml.promotions WHERE family = ? ORDER BY created_at DESC, run_id DESC LIMIT 1",
        [family],
    )
    if rows.is_empty():
        return None
    row = rows.row(0, named=True)
    for key in ("policy_json", "evidence_json"):
        row[key.removesuffix("_json")] = json.loads(row.pop(key)) if row[key] is not None else None
    return row
