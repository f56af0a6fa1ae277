"""DuckDB connection with versioned schema migrations, plus polars <-> DuckDB transfer without pyarrow.

Every writer opens the warehouse through `connect`, so a fresh file (or an old one) always reaches the current
schema before anything reads or writes it. The environment has no pyarrow, so frames cross the boundary as
numpy arrays (registered views one way, `fetchnumpy` the other); `to_duckdb` / `query_polars` hide that.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

MIGRATIONS_DIR = Path(__file__).parent / "sql" / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS core;
CREATE TABLE IF NOT EXISTS core.schema_migrations (
    version INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    checksum VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL
);
"""
_view_ids = itertools.count()


@dataclass(frozen=True)
class Migration:
    """One versioned schema file: `NNN_name.sql`, applied once, in version order."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; a malformed name or a repeated version is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file {path.name!r} must be named NNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise ValueError(f"two migrations share version {version:03d}")
        found[version] = Migration(version, m.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


def applied_migrations(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """Applied migration versions and their checksums (empty before the first migration)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'core' AND table_name = 'schema_migrations'"
    ).fetchone()[0]
    if not exists:
        return {}
    return dict(con.execute("SELECT version, checksum FROM core.schema_migrations").fetchall())


def migrate(con: duckdb.DuckDBPyConnection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply pending migrations, each in its own transaction with its record; returns the versions applied.

    An applied migration whose file has since changed is refused: schema changes go in a new file.
    """
    con.execute(_BOOTSTRAP)
    done = applied_migrations(con)
    applied = []
    for mig in migrations(directory):
        if mig.version in done:
            if done[mig.version] != mig.checksum:
                raise RuntimeError(
                    f"migration {mig.version:03d}_{mig.name} changed after it was applied; add a new migration instead"
                )
            continue
        con.begin()
        try:
            con.execute(mig.sql)
            con.execute(
                "INSERT INTO core.schema_migrations VALUES (?, ?, ?, ?)",
                [mig.version, mig.name, mig.checksum, utc_now()],
            )
            con.commit()
        except Exception:
            con.rollback()
            raise
        applied.append(mig.version)
    return applied


class WarehouseLockedError(RuntimeError):
    """Another process holds the DuckDB file's write lock (DuckDB allows one writing process)."""


LOCK_TIMEOUT_S = 60.0  # how long a connection waits for another process's lock before failing


def _lock_holder(message: str) -> str:
    """The process named in DuckDB's lock error, with its command line where this machine can read it."""
    match = re.search(r"held in (.*) \(PID (\d+)\)", message)
    if not match:
        return "another process"
    exe, pid = match.group(1), match.group(2)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmdline = exe
    return f"process {pid} ({cmdline[:200]})"


def _open(target: str, read_only: bool, lock_timeout_s: float) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, retried with backoff while another process holds the file's lock."""
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.1
    while True:
        try:
            return duckdb.connect(target, read_only=read_only)
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise
            if time.monotonic() + delay > deadline:
                holder = _lock_holder(str(exc))
                raise WarehouseLockedError(
                    f"the warehouse {target} is locked by {holder}, still after {lock_timeout_s:.0f} s: DuckDB "
                    "allows one writing process. Let that process finish or stop it; runs of this project's "
                    "Dagster instance take turns through the duckdb pool, but another instance or a notebook does not."
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def connect(
    path: str | Path, read_only: bool = False, lock_timeout_s: float = LOCK_TIMEOUT_S
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, creating its folder and applying pending migrations.

    A read-only connection cannot migrate, so it refuses a file whose schema is behind (open it read-write
    once first). `":memory:"` gives a throw-away warehouse for tests. While another process holds the file's
    lock (a second Dagster instance, a notebook), the connection is retried with backoff for `lock_timeout_s`,
    then fails with a WarehouseLockedError naming that process.
    """
    target = str(path)
    if target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    con = _open(target, read_only, lock_timeout_s)
    try:
        # Bulk inserts are ~1.5x faster when DuckDB may reorder rows; nothing relies on insertion order
        # (raw rows carry ts and seq, and every reader here says ORDER BY).
        con.execute("SET preserve_insertion_order = false")
        if read_only:
            pending = {m.version for m in migrations()} - set(applied_migrations(con))
            if pending:
                raise RuntimeError(
                    f"warehouse {target} lacks migrations {sorted(pending)}; open it read-write once to apply them"
                )
        else:
            migrate(con)
    except Exception:
        con.close()
        raise
    return con


def utc_now() -> datetime:
    """Naive UTC now (the warehouse stores naive UTC timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _column_to_numpy(s: pl.Series) -> np.ndarray:
    dtype = s.dtype
    if dtype == pl.Date:
        s = s.cast(pl.Datetime("us"))
    elif dtype == pl.Null:
        return np.ma.masked_all(len(s), dtype=object)
    if s.dtype in (pl.Utf8, pl.Categorical, pl.Enum) or isinstance(s.dtype, pl.Categorical):
        return s.cast(pl.Utf8).to_numpy()
    if s.null_count() and (s.dtype.is_integer() or s.dtype == pl.Boolean):
        fill = False if s.dtype == pl.Boolean else 0
        return np.ma.masked_array(s.fill_null(fill).to_numpy(), mask=s.is_null().to_numpy())
    return s.to_numpy()


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> Iterator[str]:
    """Expose a polars frame to SQL as a temporary view (numpy-backed) and yield its name.

    Float NaN arrives in DuckDB as NULL (DuckDB's numpy scan treats NaN as missing).
    """
    name = f"_tf_frame_{next(_view_ids)}"
    # duckdb 2.0 refuses register/unregister while a result of execute() is unread (e.g. after fetchone());
    # complete() finishes it (a no-op when there is none).
    con.complete()
    con.register(name, {c: _column_to_numpy(frame[c]) for c in frame.columns})
    try:
        yield name
    finally:
        con.complete()
        con.unregister(name)


_DUCK_TO_POLARS: dict[str, pl.DataType] = {
    "VARCHAR": pl.Utf8(),
    "DATE": pl.Date(),
    "TIMESTAMP": pl.Datetime("us"),
    "TIMESTAMP_NS": pl.Datetime("ns"),
    "DOUBLE": pl.Float64(),
    "FLOAT": pl.Float32(),
    "BIGINT": pl.Int64(),
    "INTEGER": pl.Int32(),
    "SMALLINT": pl.Int16(),
    "TINYINT": pl.Int8(),
    "HUGEINT": pl.Int64(),
    "BOOLEAN": pl.Boolean(),
}


def query_polars(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
) -> pl.DataFrame:
    """Run a query and return a polars frame with the SQL column types (NULLs stay null)."""
    rel = con.execute(sql, params) if params is not None else con.execute(sql)
    names = [d[0] for d in rel.description]
    types = [str(d[1]) for d in rel.description]
    arrays = rel.fetchnumpy()
    columns = []
    for name, duck_type in zip(names, types, strict=True):
        arr = arrays[name]
        target = _DUCK_TO_POLARS.get(duck_type)
        mask = np.ma.getmaskarray(arr) if isinstance(arr, np.ma.MaskedArray) else None
        data = arr.data if isinstance(arr, np.ma.MaskedArray) else arr
        if target is None:
            series = pl.Series(name, data.tolist())
        elif target == pl.Utf8:
            # A masked text column's hidden slots hold arbitrary fill objects: keep only the real strings.
            values = data.tolist()
            if mask is not None:
                values = [None if m else v for v, m in zip(values, mask.tolist(), strict=True)]
            series = pl.Series(name, values, dtype=pl.Utf8)
        elif target == pl.Date:
            series = pl.Series(name, data.astype("datetime64[D]")).cast(pl.Date)
        elif isinstance(target, pl.Datetime):
            series = pl.Series(name, data.astype(f"datetime64[{target.time_unit}]"))
        else:
            series = pl.Series(name, data).cast(target)
        if mask is not None and mask.any():
            series = pl.select(pl.when(pl.Series(mask)).then(None).otherwise(series).alias(name)).to_series()
        columns.append(series)
    return pl.DataFrame(columns) if columns else pl.DataFrame()
