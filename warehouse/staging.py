"""Parallel ingest without DuckDB lock clashes: many workers stage partitions, one writer loads them.

DuckDB allows one writing process, so workers that ingest partitions at once never open the warehouse. Each
fetches and validates its session exactly as `ingest_day` does (`prepare_day`), writes every table's rows as a
Parquet file into a private folder under `<store>/_tmp/` with a manifest, and commits it with ONE atomic rename
to `<store>/session_date=<D>/<commit>/`. A commit therefore holds all of a partition's tables or none: a worker
killed mid-write leaves only its temporary folder, which is never loaded.

The single writer (`load_staged`) replaces each committed partition in commit order, in one DuckDB transaction
that also records the commit in raw.staged_loads, so a commit is loaded exactly once: a crash between the load
and the folder's removal is harmless, and re-staging a partition replaces it (the later commit wins) rather
than appending. Readers (bars, features, datasets) read only DuckDB tables, so they see committed partitions
only. Commit ids start with the staging clock in nanoseconds, so "later" is the staging order on one clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from market.sources import MarketSource
from warehouse.db import connect, utc_now
from warehouse.ingest import IngestStats, PreparedDay, prepare_day
from warehouse.partitions import SESSION_DATE, PartitionWrite, replace_partitions

MANIFEST = "manifest.json"
TMP = "_tmp"
MANIFEST_VERSION = 1
_COMMIT = re.compile(r"^\d{20}-[0-9a-f]{32}$")
_PARTITION = re.compile(r"^session_date=(\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class StagedCommit:
    """One committed partition in the staging store: its folder and the ingest it holds (rows as staged)."""

    commit_id: str
    path: Path
    stats: IngestStats


@dataclass(frozen=True)
class LoadReport:
    """What one `load_staged` did: commits loaded (with their rows), ones found already loaded, and temporary
    folders of stagings that never committed (removed once older than the abandonment age, else left alone)."""

    loaded: list[StagedCommit] = field(default_factory=list)
    already_loaded: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    load_s: float = 0.0


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stats_json(stats: IngestStats) -> dict[str, Any]:
    out = asdict(stats)
    out["session_date"] = stats.session_date.isoformat()
    return out


def _stats_from_json(raw: dict[str, Any]) -> IngestStats:
    raw = dict(raw)
    raw["session_date"] = date.fromisoformat(raw["session_date"])
    for key in ("symbols", "closed"):
        raw[key] = tuple(raw[key])
    return IngestStats(**raw)


def stage_prepared(store: Path, prepared: PreparedDay) -> StagedCommit:
    """Write a prepared session's tables as Parquet with a manifest, then commit them with one atomic rename."""
    commit_id = f"{time.time_ns():020d}-{uuid.uuid4().hex}"
    tmp = Path(store) / TMP / commit_id
    tmp.mkdir(parents=True)
    entries, rows = [], {}
    t0 = time.perf_counter()
    for i, w in enumerate(prepared.parts):
        if w.frame is None or w.partition_column not in (None, SESSION_DATE):
            raise ValueError(f"{w.table}: only frames keyed on {SESSION_DATE} can be staged")
        name = None
        if w.frame.height:
            name = f"{i:03d}-{w.table.split('.', 1)[1]}.parquet"
            w.frame.write_parquet(tmp / name, compression="lz4")
            _fsync(tmp / name)
        rows[w.table] = rows.get(w.table, 0) + w.frame.height
        entries.append(
            {
                "table": w.table,
                "file": name,
                "sha256": _sha256(tmp / name) if name else None,
                "rows": w.frame.height,
                "columns": w.frame.columns,
                "constants": dict(w.constants or {}),
                "extra_where": {k: v if isinstance(v, str) else list(v) for k, v in (w.extra_where or {}).items()},
            }
        )
    stats = prepared.stats(rows, time.perf_counter() - t0)
    manifest = {
        "version": MANIFEST_VERSION,
        "commit_id": commit_id,
        "session_date": prepared.session_date.isoformat(),
        "staged_at": utc_now().isoformat(),
        "writes": entries,
        "stats": _stats_json(stats),
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    _fsync(tmp / MANIFEST)
    final = Path(store) / f"{SESSION_DATE}={prepared.session_date.isoformat()}" / commit_id
    final.parent.mkdir(parents=True, exist_ok=True)
    os.rename(tmp, final)  # the commit: atomic within one filesystem, and tmp lives in the store
    return StagedCommit(commit_id, final, stats)


def stage_day(
    store: Path,
    source: MarketSource,
    symbols: Sequence[str],
    session_date: date,
    *,
    extended_hours: bool = False,
) -> StagedCommit:
    """Fetch + validate a session like `ingest_day`, and commit it to the staging store instead of DuckDB."""
    return stage_prepared(store, prepare_day(source, symbols, session_date, extended_hours=extended_hours))


def committed(store: Path, dates: Iterable[date] | None = None) -> list[StagedCommit]:
    """The committed partitions in the store (optionally only `dates`), in load order: by date, then commit."""
    root = Path(store)
    wanted = None if dates is None else {d.isoformat() for d in dates}
    found = []
    for part in sorted(root.glob(f"{SESSION_DATE}=*")) if root.exists() else []:
        m = _PARTITION.match(part.name)
        if not m or (wanted is not None and m.group(1) not in wanted):
            continue
        for folder in sorted(part.iterdir()):
            if not _COMMIT.match(folder.name) or not (folder / MANIFEST).exists():
                raise ValueError(f"staging store: {folder} is not a commit (expected <ns>-<hex32>/{MANIFEST})")
            manifest = json.loads((folder / MANIFEST).read_text())
            found.append(StagedCommit(folder.name, folder, _stats_from_json(manifest["stats"])))
    return found


def _writes(commit: StagedCommit) -> tuple[date, list[PartitionWrite], dict[str, Any]]:
    """A commit's manifest as partition writes reading its Parquet files; a file changed since staging is refused."""
    manifest = json.loads((commit.path / MANIFEST).read_text())
    if manifest.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{commit.path}: manifest version {manifest.get('version')} is not {MANIFEST_VERSION}")
    session_date = date.fromisoformat(manifest["session_date"])
    writes = []
    for e in manifest["writes"]:
        constants = dict(e["constants"])
        if SESSION_DATE not in e["columns"]:
            constants[SESSION_DATE] = session_date
        if e["file"] is None:  # nothing to insert; the partition is still replaced (emptied)
            writes.append(PartitionWrite(e["table"], frame=pl.DataFrame(), extra_where=e["extra_where"] or None))
            continue
        path = commit.path / e["file"]
        if not path.exists() or _sha256(path) != e["sha256"]:
            raise ValueError(
                f"staged commit {commit.commit_id}: {e['file']} is missing or changed since it was staged; "
                f"re-stage {SESSION_DATE} {session_date} and remove {commit.path}"
            )
        extra = "".join(f", ?::{'DATE' if isinstance(v, date) else 'VARCHAR'} AS {k}" for k, v in constants.items())
        sql, params = (
            f"SELECT *{extra} FROM read_parquet(?, hive_partitioning = false)",
            [*constants.values(), str(path)],
        )
        writes.append(PartitionWrite(e["table"], select_sql=sql, params=params, extra_where=e["extra_where"] or None))
    return session_date, writes, manifest


def _load_one(con: duckdb.DuckDBPyConnection, commit: StagedCommit) -> StagedCommit:
    session_date, writes, manifest = _writes(commit)
    stats = commit.stats
    record = PartitionWrite(
        "raw.staged_loads",
        select_sql="SELECT ? AS commit_id, ? AS source, ? AS symbols, ? AS row_counts, ?::TIMESTAMP AS staged_at, "
        "?::TIMESTAMP AS loaded_at, ?::DATE AS session_date",
        params=[
            commit.commit_id,
            stats.source,
            ",".join(stats.symbols),
            json.dumps({e["table"]: e["rows"] for e in manifest["writes"]}),
            manifest["staged_at"].replace("+00:00", ""),
            utc_now(),
            session_date,
        ],
        extra_where={"commit_id": commit.commit_id},
    )
    t0 = time.perf_counter()
    counts = replace_partitions(con, session_date, [*writes, record])
    staged = {}
    for e in manifest["writes"]:
        staged[e["table"]] = staged.get(e["table"], 0) + e["rows"]
    if any(counts.get(t, 0) != n for t, n in staged.items()):  # unreachable unless Parquet lies about its rows
        raise ValueError(f"staged commit {commit.commit_id}: loaded {counts}, its manifest says {staged}")
    return replace(commit, stats=replace(stats, write_s=time.perf_counter() - t0))


def preview(commits: Sequence[StagedCommit]) -> duckdb.DuckDBPyConnection:
    """A throw-away in-memory warehouse holding just these commits (nothing is removed or recorded), so a worker
    can run the raw checks on what it staged without opening the warehouse. Earlier stored rows are not in it."""
    con = connect(":memory:")
    for commit in commits:
        session_date, writes, _ = _writes(commit)
        replace_partitions(con, session_date, writes)
    return con


def load_staged(
    con: duckdb.DuckDBPyConnection,
    store: Path,
    dates: Iterable[date] | None = None,
    *,
    abandoned_after_s: float = 3600.0,
) -> LoadReport:
    """The single writer: load every committed partition (of `dates`, or all) once, in commit order, each in one
    transaction with its raw.staged_loads record, then remove its folder. Temporary folders of stagings that never
    committed are removed once older than `abandoned_after_s` and reported; younger ones may still be writing."""
    t0 = time.perf_counter()
    commits = committed(store, dates)
    ids = [c.commit_id for c in commits]
    done = set()
    if ids:
        marks = ", ".join("?" * len(ids))
        sql = f"SELECT commit_id FROM raw.staged_loads WHERE commit_id IN ({marks})"
        done = {r[0] for r in con.execute(sql, ids).fetchall()}
    report = LoadReport()
    for commit in commits:
        if commit.commit_id in done:
            report.already_loaded.append(commit.commit_id)
        else:
            report.loaded.append(_load_one(con, commit))
        shutil.rmtree(commit.path)
    tmp = Path(store) / TMP
    for folder in sorted(tmp.iterdir()) if tmp.exists() else []:
        if time.time() - folder.stat().st_mtime > abandoned_after_s:
            shutil.rmtree(folder)
            report.abandoned.append(folder.name)
        else:
            report.in_flight.append(folder.name)
    return replace(report, load_s=time.perf_counter() - t0)
