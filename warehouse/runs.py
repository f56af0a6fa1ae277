"""Insert-only records of datasets, training runs and evaluation runs (schema `ml`), keyed by run_id.

A run is written once, in one transaction, and never updated or deleted: re-using a run_id raises
RunExistsError, so every report stays reproducible from what was stored when it was made.

JSON columns end in `_json`; writers accept either the encoded text under that name or the Python value under
the bare name (`config={...}` -> `config_json`). `created_at` defaults to now (naive UTC).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb
import numpy as np
import polars as pl

from warehouse.db import query_polars, registered, utc_now

RUN_TABLES = (
    "datasets", "training_runs", "evaluation_runs", "evaluation_episodes", "evaluation_metrics", "promotions",
)  # fmt: skip
_POLARS_TYPES: dict[str, pl.DataType] = {
    "VARCHAR": pl.Utf8(),
    "DATE": pl.Date(),
    "TIMESTAMP": pl.Datetime("us"),
    "DOUBLE": pl.Float64(),
    "BIGINT": pl.Int64(),
    "INTEGER": pl.Int32(),
}


class RunExistsError(ValueError):
    """The run_id is already recorded: runs are insert-only."""


@dataclass(frozen=True)
class EvaluationRecord:
    """One evaluation run: the run row, one row per (slice, policy, symbol, session_date) episode, and
    long-format metrics (slice, policy, metric, value)."""

    run: Mapping[str, Any]
    episodes: pl.DataFrame | Sequence[Mapping[str, Any]] = field(default_factory=list)
    metrics: pl.DataFrame | Sequence[Mapping[str, Any]] = field(default_factory=list)


def new_run_id(family: str) -> str:
    """A sortable, unique run id: `<family>-<UTC yyyymmddThhmmss>-<8 hex>`."""
    return f"{family}-{utc_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, tuple[str, bool]]:
    rows = con.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'ml' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return {name: (dtype, nullable == "YES") for name, dtype, nullable in rows}


def _scalar(value: Any) -> Any:
    """numpy scalars as Python values (datetime64 as datetime/date, never as an integer of nanoseconds)."""
    if isinstance(value, np.datetime64):
        unit = np.datetime_data(value.dtype)[0]
        return (
            value.astype("datetime64[D]").item()
            if unit in ("D", "W", "M", "Y")
            else value.astype("datetime64[us]").item()
        )
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plain(value: Any) -> Any:
    """A JSON-ready copy: dates as ISO text, non-finite floats as null."""
    value = _scalar(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value


def _to_json(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(_plain(value), sort_keys=True, allow_nan=False, default=str)


def _normalise(table: str, row: Mapping[str, Any], columns: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in columns:
            out[key] = _to_json(value) if key.endswith("_json") else _scalar(value)
        elif f"{key}_json" in columns:
            out[f"{key}_json"] = _to_json(value)
        else:
            allowed = sorted(c[:-5] if c.endswith("_json") else c for c in columns)
            raise ValueError(f"ml.{table}: unknown column {key!r}; allowed: {', '.join(allowed)}")
    if "created_at" in columns:
        out.setdefault("created_at", utc_now())
    if table == "evaluation_episodes" and "policy_kind" not in out:
        out["policy_kind"] = "agent" if out.get("checkpoint_id") else "baseline"
    for name, (_dtype, nullable) in columns.items():
        if not nullable and out.get(name) is None:
            raise ValueError(f"ml.{table}: column {name!r} is required")
    return out


def _rows(rows: pl.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if isinstance(rows, pl.DataFrame):
        return list(rows.iter_rows(named=True))
    if isinstance(rows, Mapping):
        return [rows]
    return list(rows)


def _frame(table: str, rows: list[dict[str, Any]], columns: dict[str, tuple[str, bool]]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame()
    used = [c for c in columns if any(c in r for r in rows)]
    data = {}
    for name in used:
        dtype = _POLARS_TYPES.get(columns[name][0], pl.Utf8())
        values = [r.get(name) for r in rows]
        if dtype == pl.Date:
            values = [
                date.fromisoformat(v) if isinstance(v, str) else v.date() if isinstance(v, datetime) else v
                for v in values
            ]
        try:
            data[name] = pl.Series(name, values, dtype=dtype, strict=False)
        except Exception as exc:  # noqa: BLE001 - re-raised with the column named
            raise ValueError(f"ml.{table}: bad values in column {name!r}: {exc}") from exc
        if data[name].null_count() > sum(v is None for v in values):
            raise ValueError(f"ml.{table}: values in column {name!r} do not convert to {columns[name][0]}")
    return pl.DataFrame(data)


def _refuse_existing(con: duckdb.DuckDBPyConnection, tables: Sequence[str], run_ids: set[str]) -> None:
    if not run_ids:
        raise ValueError("every run row needs a run_id")
    marks = ", ".join("?" * len(run_ids))
    for table in tables:
        found = con.execute(
            f"SELECT DISTINCT run_id FROM ml.{table} WHERE run_id IN ({marks})", sorted(run_ids)
        ).fetchall()
        if found:
            raise RunExistsError(f"run {found[0][0]!r} is already recorded in ml.{table}; runs are insert-only")


def _write(con: duckdb.DuckDBPyConnection, parts: Sequence[tuple[str, list[Mapping[str, Any]]]]) -> dict[str, int]:
    run_ids = {r.get("run_id") for _, rows in parts for r in rows}
    if None in run_ids:
        raise ValueError("every row needs a run_id")
    frames = []
    for table, rows in parts:
        columns = _columns(con, table)
        frames.append((table, _frame(table, [_normalise(table, r, columns) for r in rows], columns)))
    counts: dict[str, int] = {}
    # Register before the transaction: unregistering inside an aborted one would fail.
    with ExitStack() as stack:
        views = [stack.enter_context(registered(con, f)) if f.height else None for _, f in frames]
        con.begin()
        try:
            _refuse_existing(con, [t for t, _ in parts], run_ids)
            for (table, _), view in zip(frames, views, strict=True):
                counts[table] = (
                    con.execute(f"INSERT INTO ml.{table} BY NAME SELECT * FROM {view}").fetchone()[0] if view else 0
                )
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return counts


def record_dataset(con: duckdb.DuckDBPyConnection, row: Mapping[str, Any]) -> None:
    """Record a dataset build (run_id, family, data_version, date range, symbols, features, slices, path)."""
    _write(con, [("datasets", [row])])


def record_training_run(con: duckdb.DuckDBPyConnection, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> int:
    """Record a training run: one row per walk-forward slice, all with one run_id. Returns rows written."""
    rows = _rows(rows)
    if len({r.get("run_id") for r in rows}) != 1:
        raise ValueError("a training run's rows must share one run_id")
    return _write(con, [("training_runs", rows)])["training_runs"]


def record_evaluation(con: duckdb.DuckDBPyConnection, record: EvaluationRecord | Mapping[str, Any]) -> dict[str, int]:
    """Record an evaluation run with its episodes and metrics in one transaction; rows written per table.

    `record` is an EvaluationRecord or a mapping with keys run, episodes, metrics. Episode and metric rows
    without a run_id get the run's.
    """
    if isinstance(record, Mapping):
        unknown = set(record) - {"run", "episodes", "metrics"}
        if unknown or "run" not in record:
            raise ValueError(f"an evaluation record has keys run, episodes, metrics (got {sorted(record)})")
        record = EvaluationRecord(record["run"], record.get("episodes", []), record.get("metrics", []))
    run = dict(record.run)
    run_id = run.get("run_id")
    if not run_id:
        raise ValueError("the evaluation run needs a run_id")
    episodes = [{"run_id": run_id, **r} for r in _rows(record.episodes)]
    metrics = [{"run_id": run_id, **r} for r in _rows(record.metrics)]
    if any(r["run_id"] != run_id for r in episodes + metrics):
        raise ValueError("episode and metric rows must belong to the evaluation run")
    return _write(con, [("evaluation_runs", [run]), ("evaluation_episodes", episodes), ("evaluation_metrics", metrics)])


def record_promotion(con: duckdb.DuckDBPyConnection, row: Mapping[str, Any]) -> None:
    """Record one promotion gate decision (ml.promotions); like every run, its run_id must be new."""
    _write(con, [("promotions", [row])])


def metric_rows(slice_name: str, policy: str, metrics: Mapping[str, float]) -> list[dict[str, Any]]:
    """Long-format metric rows for one (slice, policy) from a name -> value mapping."""
    return [{"slice": slice_name, "policy": policy, "metric": k, "value": float(v)} for k, v in metrics.items()]


def list_runs(con: duckdb.DuckDBPyConnection, kind: str = "evaluation", family: str | None = None) -> pl.DataFrame:
    """Runs of one kind ('dataset', 'training' or 'evaluation'), newest first, optionally for one family."""
    table = {"dataset": "datasets", "training": "training_runs", "evaluation": "evaluation_runs"}.get(kind)
    if table is None:
        raise ValueError(f"unknown run kind {kind!r}; known: dataset, training, evaluation")
    where, params = ("WHERE family = ?", [family]) if family else ("", [])
    return query_polars(con, f"SELECT * FROM ml.{table} {where} ORDER BY created_at DESC, run_id", params)


def get_run(con: duckdb.DuckDBPyConnection, run_id: str, kind: str = "evaluation") -> dict[str, Any]:
    """One run's row (training: its first slice) with JSON columns decoded; KeyError if it does not exist."""
    table = {"dataset": "datasets", "training": "training_runs", "evaluation": "evaluation_runs"}[kind]
    frame = query_polars(con, f"SELECT * FROM ml.{table} WHERE run_id = ? ORDER BY ALL LIMIT 1", [run_id])
    if not frame.height:
        raise KeyError(f"no {kind} run {run_id!r}")
    row = frame.row(0, named=True)
    return {k: json.loads(v) if k.endswith("_json") and v is not None else v for k, v in row.items()}


def get_training_slices(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """Every slice row of a training run."""
    return query_polars(con, "SELECT * FROM ml.training_runs WHERE run_id = ? ORDER BY slice", [run_id])


def get_episodes(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """A run's evaluation episodes, sorted by slice, policy, symbol, session_date."""
    return query_polars(
        con,
        "SELECT * FROM ml.evaluation_episodes WHERE run_id = ? ORDER BY slice, policy, symbol, session_date",
        [run_id],
    )


def get_metrics(con: duckdb.DuckDBPyConnection, run_id: str, wide: bool = False) -> pl.DataFrame:
    """A run's metrics: long (slice, policy, metric, value) or wide (one column per metric)."""
    long = query_polars(
        con,
        "SELECT slice, policy, metric, value FROM ml.evaluation_metrics WHERE run_id = ? "
        "ORDER BY slice, policy, metric",
        [run_id],
    )
    if not wide or not long.height:
        return long
    return long.pivot(on="metric", index=["slice", "policy"], values="value").sort("slice", "policy")
