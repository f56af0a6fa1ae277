"""Idempotent writes: DELETE a table's partition (e.g. one `session_date`) and INSERT its rows, ONE transaction.

Re-running any step (a retry, a backfill, a manual re-materialization) therefore leaves exactly one copy,
and a failure part-way leaves the previous partition as it was. The partition column defaults to the equity
tables' `session_date`; the funding tables are keyed on `day`, and an imported file on its `source`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import polars as pl

from warehouse.db import registered

_TABLE = re.compile(r"^(raw|core)\.[a-z_][a-z0-9_]*$")
# The ml schema is insert-only (warehouse.runs) except the shadow signals, which are replaced per partition.
ML_PARTITIONED = frozenset({"ml.signals"})
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
SESSION_DATE = "session_date"


@dataclass(frozen=True)
class PartitionWrite:
    """Rows for one table's partition: a polars frame or a SELECT run inside DuckDB.

    `constants` (column -> value) are added to every row of `frame` inside DuckDB, which is much cheaper than
    shipping a repeated string column; `extra_where` narrows the partition that is deleted (column -> value or
    list of values), e.g. to the symbols being re-ingested. `partition_column` overrides the call's one, so
    tables keyed differently (raw.funding_rates on `day`, raw.quarantine on `session_date`) share a transaction.
    """

    table: str
    frame: pl.DataFrame | None = None
    select_sql: str | None = None
    params: Sequence[Any] | Mapping[str, Any] | None = None
    constants: Mapping[str, Any] | None = None
    extra_where: Mapping[str, Any] | None = None
    partition_column: str | None = None


def _check_ident(name: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"bad column name: {name!r}")
    return name


def _check_table(table: str) -> None:
    if not _TABLE.match(table) and table not in ML_PARTITIONED:
        raise ValueError(f"not a partitioned warehouse table: {table!r} (expected raw.<name>, core.<name>, ml.signals)")


def _allowed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple | set | frozenset) else [value]


def _where(column: str, partition: date | str, extra_where: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    clauses, params = [f"{column} = ?"], [partition]
    for col, value in (extra_where or {}).items():
        values = _allowed(value)
        if not values:
            clauses.append("FALSE")
            continue
        clauses.append(f"{_check_ident(col)} IN ({', '.join('?' * len(values))})")
        params.extend(values)
    return " AND ".join(clauses), params


def _check_rows(w: PartitionWrite, column: str, partition: date | str) -> None:
    """Rows must belong to the partition being replaced, or a rewrite would leave strays behind."""
    frame, constants = w.frame, dict(w.constants or {})
    if column in constants and constants[column] != partition:
        raise ValueError(f"{w.table}: constant {column} {constants[column]} is not {partition}")
    if column in frame.columns and frame.height:
        bad = frame.filter(pl.col(column).is_null() | (pl.col(column) != partition)).height
        if bad:
            raise ValueError(f"{w.table}: {bad} rows do not belong to partition {column} = {partition}")
    for col, value in (w.extra_where or {}).items():
        allowed = _allowed(value)
        if col in constants and constants[col] not in allowed:
            raise ValueError(f"{w.table}: constant {col}={constants[col]!r} is outside the replaced {allowed}")
        if col in frame.columns and frame.height and not frame[col].is_in(allowed).all():
            raise ValueError(f"{w.table}: rows with {col} outside {allowed} do not belong to the replaced partition")


def _insert(
    con: duckdb.DuckDBPyConnection, w: PartitionWrite, view: str | None, column: str, partition: date | str
) -> int:
    if w.select_sql is not None:
        return con.execute(f"INSERT INTO {w.table} BY NAME {w.select_sql}", w.params or []).fetchone()[0]
    if view is None:
        return 0
    constants = dict(w.constants or {})
    if column not in w.frame.columns:
        constants.setdefault(column, partition)
    extra = "".join(f", ? AS {_check_ident(c)}" for c in constants)
    sql = f"INSERT INTO {w.table} BY NAME SELECT *{extra} FROM {view}"
    return con.execute(sql, list(constants.values())).fetchone()[0]


def replace_partitions(
    con: duckdb.DuckDBPyConnection,
    partition: date | str,
    writes: Sequence[PartitionWrite],
    partition_column: str = SESSION_DATE,
) -> dict[str, int]:
    """Replace the partitions `partition_column = partition` of several tables in ONE transaction.

    Every DELETE runs first, then every INSERT. Several writes may target the same table (e.g. one per symbol);
    its partition is deleted once per distinct scope (column, value, `extra_where`). After the inserts, each
    table's partition must hold exactly the rows inserted (else the writes produced rows outside it) or
    everything rolls back. A frame without the partition column gets it. Returns rows written per table.
    """
    columns = [_check_ident(w.partition_column or partition_column) for w in writes]
    for w in writes:
        _check_table(w.table)
        if (w.frame is None) == (w.select_sql is None):
            raise ValueError(f"{w.table}: give exactly one of frame or select_sql")
    scopes: dict[tuple[str, str, str], tuple[str, list[Any]]] = {}
    for w, column in zip(writes, columns, strict=True):
        where, params = _where(column, partition, w.extra_where)
        scopes.setdefault((w.table, where, repr(params)), (where, params))
    for w, column in zip(writes, columns, strict=True):
        if w.frame is not None:
            _check_rows(w, column, partition)
            clash = set(w.constants or {}) & set(w.frame.columns)
            if clash:
                raise ValueError(f"{w.table}: columns {sorted(clash)} given both in the frame and as constants")
    counts: dict[str, int] = {}
    # Frames are registered outside the transaction: unregistering inside an aborted one would fail.
    with ExitStack() as stack:
        views = [
            stack.enter_context(registered(con, w.frame)) if w.frame is not None and w.frame.height else None
            for w in writes
        ]
        con.begin()
        try:
            for (table, _, _), (where, params) in scopes.items():
                con.execute(f"DELETE FROM {table} WHERE {where}", params)
            for w, view, column in zip(writes, views, columns, strict=True):
                counts[w.table] = counts.get(w.table, 0) + _insert(con, w, view, column, partition)
            tables = [key[0] for key in scopes]
            for (table, _, _), (where, params) in scopes.items():
                if tables.count(table) > 1:
                    continue
                stored = con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]
                if stored != counts.get(table, 0):
                    raise ValueError(
                        f"{table}: wrote {counts.get(table, 0)} rows but partition {partition} "
                        f"holds {stored} (the new rows fall outside the partition)"
                    )
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return counts


def replace_partition(
    con: duckdb.DuckDBPyConnection,
    table: str,
    partition: date | str,
    frame: pl.DataFrame,
    extra_where: dict | None = None,
    partition_column: str = SESSION_DATE,
) -> int:
    """BEGIN; DELETE the partition (narrowed by `extra_where`: column -> value or list); INSERT; COMMIT.

    Columns are matched by name; a frame without the partition column gets it. Any error rolls back and
    re-raises, leaving the old partition intact. Returns the number of rows written.
    """
    w = PartitionWrite(table, frame=frame, extra_where=extra_where)
    return replace_partitions(con, partition, [w], partition_column)[table]


def replace_partition_sql(
    con: duckdb.DuckDBPyConnection,
    table: str,
    partition: date | str,
    select_sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    extra_where: dict | None = None,
    partition_column: str = SESSION_DATE,
) -> int:
    """Like `replace_partition`, with rows from a SELECT run inside DuckDB (no round trip via Python)."""
    w = PartitionWrite(table, select_sql=select_sql, params=params, extra_where=extra_where)
    return replace_partitions(con, partition, [w], partition_column)[table]
