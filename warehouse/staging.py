"""Parallel ingest without DuckDB lock clashes: many workers stage partitions, one writer loads them.

DuckDB allows one writing process, so workers that ingest partitions at once never open the warehouse. Each
fetches and validates its session exactly as `ingest_day` does (`prepare_day`) and writes every table's rows as a
Parquet file, with a manifest (rows and sha256 per file), into the staging store: a local folder or an
S3-compatible bucket (`s3://bucket/prefix`, see warehouse.store). A commit holds all of a partition's tables or
none, a worker killed mid-write leaving nothing loadable:

- in a folder, the files go to a private `<store>/_tmp/<commit>/`, are fsynced, and ONE atomic rename commits
  them to `<store>/session_date=<D>/<commit>/`;
- in an object store, which has no rename, they go straight to `session_date=<D>/<commit>/` and the manifest is
  written LAST: its single PUT is the commit, and a prefix without one is still being written (or abandoned).

The single writer (`load_staged`) replaces each committed partition in commit order, in one DuckDB transaction
that also records the commit in raw.staged_loads, so a commit is loaded exactly once: a crash between the load
and the commit's removal is harmless, and re-staging a partition replaces it (the later commit wins) rather
than appending. Readers (bars, features, datasets) read only DuckDB tables, so they see committed partitions
only. Commit ids start with the staging clock in nanoseconds, so "later" is the staging order on one clock.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, closing
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl

from market.sources import MarketSource
from warehouse.db import connect, utc_now
from warehouse.ingest import IngestStats, PreparedDay, ingest_day, prepare_day
from warehouse.partitions import SESSION_DATE, PartitionWrite, replace_partitions
from warehouse.store import check_location, filesystem, is_url, modified_age_s

MANIFEST = "manifest.json"
TMP = "_tmp"
MANIFEST_VERSION = 1
_COMMIT = re.compile(r"^\d{20}-[0-9a-f]{32}$")
_PARTITION = re.compile(r"^session_date=(\d{4}-\d{2}-\d{2})$")
T = TypeVar("T")


@dataclass(frozen=True)
class StagedCommit:
    """One committed partition in the staging store: the store, the commit's key inside it
    (`session_date=<D>/<commit>`) and the ingest it holds (rows as staged)."""

    commit_id: str
    store: str
    key: str
    stats: IngestStats

    @property
    def location(self) -> str:
        return f"{self.store.rstrip('/')}/{self.key}"


@dataclass(frozen=True)
class LoadReport:
    """What one `load_staged` did: commits loaded (with their rows), ones found already loaded, and stagings that
    never committed (removed once older than the abandonment age, else left alone as possibly still writing)."""

    loaded: list[StagedCommit] = field(default_factory=list)
    already_loaded: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    load_s: float = 0.0


class _Folder:
    """A local staging folder: private `_tmp/<commit>`, fsync, one atomic rename."""

    def __init__(self, root: str) -> None:
        self.root = Path(root.removeprefix("file://"))

    def commit(self, key: str, files: list[tuple[str, bytes]]) -> None:
        tmp = self.root / TMP / key.rsplit("/", 1)[1]
        tmp.mkdir(parents=True)
        for name, data in files:  # the manifest comes last
            with (tmp / name).open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, final)  # the commit: atomic within one filesystem, and tmp lives in the store

    def commits(self) -> list[str]:
        keys = []
        for part in sorted(self.root.glob(f"{SESSION_DATE}=*")) if self.root.exists() else []:
            for folder in sorted(part.iterdir()) if _PARTITION.match(part.name) else []:
                if not _COMMIT.match(folder.name) or not (folder / MANIFEST).exists():
                    raise ValueError(f"staging store: {folder} is not a commit (expected <ns>-<hex32>/{MANIFEST})")
                keys.append(f"{part.name}/{folder.name}")
        return keys

    def read(self, key: str, name: str) -> bytes | None:
        path = self.root / key / name
        return path.read_bytes() if path.exists() else None

    def remove(self, key: str) -> None:
        shutil.rmtree(self.root / key)

    def uncommitted(self) -> list[tuple[str, float]]:
        tmp = self.root / TMP
        return [(f.name, time.time() - f.stat().st_mtime) for f in sorted(tmp.iterdir())] if tmp.exists() else []

    def drop_uncommitted(self, name: str) -> None:
        shutil.rmtree(self.root / TMP / name)


class _Bucket:
    """An object-store prefix: the files, then the manifest (the commit) last; no rename exists to lean on."""

    def __init__(self, url: str) -> None:
        self.fs, self.root = filesystem(url)

    def commit(self, key: str, files: list[tuple[str, bytes]]) -> None:
        for name, data in files:  # the manifest comes last: its PUT is the commit
            self.fs.pipe_file(f"{self.root}/{key}/{name}", data)

    def _prefixes(self) -> list[str]:
        self.fs.invalidate_cache()  # other workers write here: never answer from a listing cached earlier
        found = self.fs.glob(f"{self.root}/{SESSION_DATE}=*/*")
        keys = [f[len(self.root) + 1 :] for f in found]
        return sorted(k for k in keys if _PARTITION.match(k.split("/")[0]) and _COMMIT.match(k.split("/")[1]))

    def commits(self) -> list[str]:
        prefixes = self._prefixes()
        manifests = set(self.fs.glob(f"{self.root}/{SESSION_DATE}=*/*/{MANIFEST}"))
        return [k for k in prefixes if f"{self.root}/{k}/{MANIFEST}" in manifests]

    def read(self, key: str, name: str) -> bytes | None:
        path = f"{self.root}/{key}/{name}"
        return self.fs.cat_file(path) if self.fs.exists(path) else None

    def remove(self, key: str) -> None:
        self.fs.rm_file(f"{self.root}/{key}/{MANIFEST}")  # uncommit first: a half-removed commit is never loaded
        self.fs.rm(f"{self.root}/{key}", recursive=True)

    def uncommitted(self) -> list[tuple[str, float]]:
        committed_keys = set(self.commits())
        out = []
        for key in self._prefixes():
            if key not in committed_keys:
                infos = self.fs.find(f"{self.root}/{key}", detail=True).values()
                out.append((key, min((modified_age_s(i) for i in infos), default=0.0)))
        return out

    def drop_uncommitted(self, name: str) -> None:
        self.fs.rm(f"{self.root}/{name}", recursive=True)


def _backend(store: str | Path) -> _Folder | _Bucket:
    location = check_location(store, "staging")
    return _Bucket(location) if is_url(location) else _Folder(location)


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


def stage_prepared(store: str | Path, prepared: PreparedDay) -> StagedCommit:
    """Write a prepared session's tables as Parquet with a manifest, and commit them (rename, or manifest last)."""
    backend = _backend(store)
    commit_id = f"{time.time_ns():020d}-{uuid.uuid4().hex}"
    key = f"{SESSION_DATE}={prepared.session_date.isoformat()}/{commit_id}"
    files: list[tuple[str, bytes]] = []
    entries, rows = [], {}
    t0 = time.perf_counter()
    for i, w in enumerate(prepared.parts):
        if w.frame is None or w.partition_column not in (None, SESSION_DATE):
            raise ValueError(f"{w.table}: only frames keyed on {SESSION_DATE} can be staged")
        name, digest = None, None
        if w.frame.height:
            name = f"{i:03d}-{w.table.split('.', 1)[1]}.parquet"
            buffer = io.BytesIO()
            w.frame.write_parquet(buffer, compression="lz4")
            files.append((name, buffer.getvalue()))
            digest = hashlib.sha256(files[-1][1]).hexdigest()
        rows[w.table] = rows.get(w.table, 0) + w.frame.height
        entries.append(
            {
                "table": w.table,
                "file": name,
                "sha256": digest,
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
    backend.commit(key, [*files, (MANIFEST, json.dumps(manifest, indent=1).encode())])
    return StagedCommit(commit_id, str(store), key, stats)


def stage_day(
    store: str | Path,
    source: MarketSource,
    symbols: Sequence[str],
    session_date: date,
    *,
    extended_hours: bool = False,
) -> StagedCommit:
    """Fetch + validate a session like `ingest_day`, and commit it to the staging store instead of DuckDB."""
    return stage_prepared(store, prepare_day(source, symbols, session_date, extended_hours=extended_hours))


def _manifest(backend: _Folder | _Bucket, key: str) -> dict[str, Any]:
    raw = backend.read(key, MANIFEST)
    if raw is None:
        raise ValueError(f"staging store: {key} has no {MANIFEST}")
    return json.loads(raw)


def committed(store: str | Path, dates: Iterable[date] | None = None) -> list[StagedCommit]:
    """The committed partitions in the store (optionally only `dates`), in load order: by date, then commit."""
    backend = _backend(store)
    wanted = None if dates is None else {d.isoformat() for d in dates}
    found = []
    for key in backend.commits():
        if wanted is not None and _PARTITION.match(key.split("/")[0]).group(1) not in wanted:
            continue
        stats = _stats_from_json(_manifest(backend, key)["stats"])
        found.append(StagedCommit(key.split("/")[1], str(store), key, stats))
    return found


def _writes(commit: StagedCommit) -> tuple[date, list[PartitionWrite], dict[str, Any]]:
    """A commit's manifest as partition writes of its Parquet files; a file changed since staging is refused."""
    backend = _backend(commit.store)
    manifest = _manifest(backend, commit.key)
    if manifest.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{commit.location}: manifest version {manifest.get('version')} is not {MANIFEST_VERSION}")
    session_date = date.fromisoformat(manifest["session_date"])
    writes = []
    for e in manifest["writes"]:
        frame = pl.DataFrame()  # nothing to insert; the partition is still replaced (emptied)
        if e["file"] is not None:
            data = backend.read(commit.key, e["file"])
            if data is None or hashlib.sha256(data).hexdigest() != e["sha256"]:
                raise ValueError(
                    f"staged commit {commit.commit_id}: {e['file']} is missing or changed since it was staged; "
                    f"re-stage {SESSION_DATE} {session_date} and remove {commit.location}"
                )
            frame = pl.read_parquet(io.BytesIO(data))
        constants = dict(e["constants"]) if e["file"] is not None else None
        where = e["extra_where"] or None
        writes.append(PartitionWrite(e["table"], frame=frame, constants=constants, extra_where=where))
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
    store: str | Path,
    dates: Iterable[date] | None = None,
    *,
    abandoned_after_s: float = 3600.0,
) -> LoadReport:
    """The single writer: load every committed partition (of `dates`, or all) once, in commit order, each in one
    transaction with its raw.staged_loads record, then remove it. Stagings that never committed are removed once
    older than `abandoned_after_s` and reported; younger ones may still be writing."""
    t0 = time.perf_counter()
    backend = _backend(store)
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
        backend.remove(commit.key)
    for name, age_s in backend.uncommitted():
        if age_s > abandoned_after_s:
            backend.drop_uncommitted(name)
            report.abandoned.append(name)
        else:
            report.in_flight.append(name)
    return replace(report, load_s=time.perf_counter() - t0)


def ingest_or_stage(
    source: MarketSource,
    symbols: Sequence[str],
    dates: Sequence[date],
    store: str | Path | None,
    connect: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
    judge: Callable[[duckdb.DuckDBPyConnection], T],
    *,
    extended_hours: bool = False,
) -> tuple[list[IngestStats], list[str | None], T]:
    """The raw_ticks step: ingest each session into the warehouse (`store` None), or stage it and judge what was
    staged in a preview without opening the warehouse. Returns the stats, each session's commit id (None when
    written directly) and `judge`'s verdict on the rows just written."""
    if store is None:
        with connect() as con:
            stats = [ingest_day(con, source, symbols, d, extended_hours=extended_hours) for d in dates]
            return stats, [None] * len(stats), judge(con)
    commits = [stage_day(store, source, symbols, d, extended_hours=extended_hours) for d in dates]
    with closing(preview(commits)) as con:
        return [c.stats for c in commits], [c.commit_id for c in commits], judge(con)
