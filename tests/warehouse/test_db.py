"""Warehouse connection, versioned migrations and idempotent partition writes."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from warehouse.db import MIGRATIONS_DIR, connect, migrate, migrations, query_polars
from warehouse.features import FEATURES, FEATURES_MD, features_markdown
from warehouse.partitions import PartitionWrite, replace_partition, replace_partition_sql, replace_partitions

D1, D2 = date(2024, 1, 3), date(2024, 1, 4)


def _ticks(d: date, symbol: str, n: int, price: float = 100.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "session_date": [d] * n,
            "ts": [datetime(d.year, d.month, d.day, 15, 0, i) for i in range(n)],
            "seq": list(range(n)),
            "price": [price + i for i in range(n)],
            "size": [100.0] * n,
            "side": [1] * n,
        },
        schema_overrides={"ts": pl.Datetime("ns"), "side": pl.Int8},
    )


def _count(con: duckdb.DuckDBPyConnection, table: str, d: date, symbol: str | None = None) -> int:
    sql = f"SELECT count(*) FROM {table} WHERE session_date = ?" + (" AND symbol = ?" if symbol else "")
    return con.execute(sql, [d, symbol] if symbol else [d]).fetchone()[0]


@pytest.fixture
def con(tmp_path: Path):
    c = connect(tmp_path / "wh" / "warehouse.duckdb")
    yield c
    c.close()


def test_connect_creates_folder_schemas_and_records_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "w.duckdb"
    con = connect(path)
    assert path.exists()
    schemas = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    assert {"raw", "core", "ml"} <= schemas
    recorded = con.execute("SELECT version, name FROM core.schema_migrations ORDER BY version").fetchall()
    assert recorded == [(m.version, m.name) for m in migrations()]
    assert len(recorded) >= 4
    tables = {
        f"{s}.{t}" for s, t in con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
    }
    for t in ("raw.ticks", "raw.quotes", "raw.quarantine", "core.bars_1m", "core.features_1m"):
        assert t in tables
    for t in ("datasets", "training_runs", "evaluation_runs", "evaluation_episodes", "evaluation_metrics"):
        assert f"ml.{t}" in tables
    con.close()


def test_reopening_does_not_reapply_migrations(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    con = connect(path)
    first = con.execute("SELECT version, applied_at FROM core.schema_migrations ORDER BY version").fetchall()
    con.execute("INSERT INTO raw.ticks VALUES ('SPY', DATE '2024-01-03', TIMESTAMP '2024-01-03 15:00:00', 0, 1, 1, 0)")
    con.close()
    con = connect(path)
    assert con.execute("SELECT version, applied_at FROM core.schema_migrations ORDER BY version").fetchall() == first
    assert migrate(con) == []
    assert con.execute("SELECT count(*) FROM raw.ticks").fetchone()[0] == 1  # tables were not recreated
    con.close()
    ro = connect(path, read_only=True)
    assert ro.execute("SELECT count(*) FROM core.schema_migrations").fetchone()[0] == len(first)
    ro.close()


def test_a_new_migration_file_is_applied_once_and_an_edited_one_is_refused(tmp_path: Path) -> None:
    mig_dir = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, mig_dir)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    applied = migrate(con, mig_dir)
    assert applied == [m.version for m in migrations()]
    next_version = applied[-1] + 1
    (mig_dir / f"{next_version:03d}_extra.sql").write_text("CREATE TABLE core.extra (x INTEGER);")
    assert migrate(con, mig_dir) == [next_version]
    assert migrate(con, mig_dir) == []
    (mig_dir / f"{next_version:03d}_extra.sql").write_text("CREATE TABLE core.extra (x BIGINT);")
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        migrate(con, mig_dir)
    con.close()


def test_a_failing_migration_rolls_back_and_is_not_recorded(tmp_path: Path) -> None:
    mig_dir = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, mig_dir)
    last = migrations()[-1].version
    (mig_dir / f"{last + 1:03d}_broken.sql").write_text("CREATE TABLE core.half (x INTEGER); SELECT * FROM nowhere;")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(duckdb.Error):
        migrate(con, mig_dir)
    versions = [r[0] for r in con.execute("SELECT version FROM core.schema_migrations").fetchall()]
    assert last + 1 not in versions
    assert not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'half'").fetchone()[0]
    con.close()


def test_read_only_connection_refuses_an_unmigrated_file(tmp_path: Path) -> None:
    path = tmp_path / "bare.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(RuntimeError, match="lacks migrations"):
        connect(path, read_only=True)


def test_features_table_columns_follow_FEATURES_and_the_markdown_agrees(con) -> None:
    cols = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'core' "
            "AND table_name = 'features_1m' ORDER BY ordinal_position"
        ).fetchall()
    ]
    assert cols == ["symbol", "session_date", "minute", *FEATURES]
    assert FEATURES_MD.read_text() == features_markdown()
    for name in FEATURES:
        assert f"`{name}`" in FEATURES_MD.read_text()


def test_query_polars_keeps_types_and_nulls(con) -> None:
    frame = query_polars(
        con,
        "SELECT 'a' AS s, NULL::VARCHAR AS ns, DATE '2024-01-03' AS d, TIMESTAMP '2024-01-03 15:00:01' AS t, "
        "1.5::DOUBLE AS f, NULL::DOUBLE AS nf, 3::BIGINT AS i, true AS b",
    )
    assert frame.schema == {
        "s": pl.Utf8,
        "ns": pl.Utf8,
        "d": pl.Date,
        "t": pl.Datetime("us"),
        "f": pl.Float64,
        "nf": pl.Float64,
        "i": pl.Int64,
        "b": pl.Boolean,
    }
    assert frame.row(0) == ("a", None, D1, datetime(2024, 1, 3, 15, 0, 1), 1.5, None, 3, True)


def test_writing_the_same_partition_three_times_keeps_exactly_one_copy(con) -> None:
    replace_partition(con, "raw.ticks", D2, _ticks(D2, "SPY", 4))
    for _ in range(3):
        assert replace_partition(con, "raw.ticks", D1, _ticks(D1, "SPY", 5)) == 5
    assert _count(con, "raw.ticks", D1) == 5
    assert con.execute("SELECT count(DISTINCT seq) FROM raw.ticks WHERE session_date = ?", [D1]).fetchone()[0] == 5
    assert _count(con, "raw.ticks", D2) == 4  # the other partition is untouched


def test_a_failing_insert_rolls_back_and_keeps_the_old_partition(con) -> None:
    replace_partition(con, "raw.ticks", D1, _ticks(D1, "SPY", 5, price=50.0))
    replace_partition(con, "raw.ticks", D2, _ticks(D2, "SPY", 3))
    broken = _ticks(D1, "SPY", 7).with_columns(pl.lit(None, dtype=pl.Float64).alias("price"))  # NOT NULL violated
    with pytest.raises(duckdb.ConstraintException):
        replace_partition(con, "raw.ticks", D1, broken)
    unknown = _ticks(D1, "SPY", 7).with_columns(pl.lit(1).alias("no_such_column"))
    with pytest.raises(duckdb.Error):
        replace_partition(con, "raw.ticks", D1, unknown)
    assert con.execute("SELECT min(price), count(*) FROM raw.ticks WHERE session_date = ?", [D1]).fetchone() == (
        50.0,
        5,
    )
    assert _count(con, "raw.ticks", D2) == 3


def test_rows_outside_the_partition_are_refused_before_anything_changes(con) -> None:
    replace_partition(con, "raw.ticks", D1, _ticks(D1, "SPY", 5))
    with pytest.raises(ValueError, match="do not belong"):
        replace_partition(con, "raw.ticks", D1, _ticks(D2, "SPY", 2))
    with pytest.raises(ValueError, match="outside"):
        replace_partition(con, "raw.ticks", D1, _ticks(D1, "QQQ", 2), extra_where={"symbol": "SPY"})
    sql = (
        "SELECT 'SPY' AS symbol, DATE '2024-01-04' AS session_date, TIMESTAMP '2024-01-04 15:00:00' AS ts, "
        "0 AS seq, 1.0 AS price, 1.0 AS size, 0 AS side"
    )
    with pytest.raises(ValueError, match="outside the partition"):
        replace_partition_sql(con, "raw.ticks", D1, sql)
    assert _count(con, "raw.ticks", D1) == 5 and _count(con, "raw.ticks", D2) == 0
    with pytest.raises(ValueError, match="not a partitioned warehouse table"):
        replace_partition(con, "ml.datasets", D1, _ticks(D1, "SPY", 1))


def test_extra_where_narrows_the_partition_and_constants_fill_columns(con) -> None:
    replace_partition(con, "raw.ticks", D1, _ticks(D1, "SPY", 5))
    for _ in range(2):
        replace_partition(con, "raw.ticks", D1, _ticks(D1, "QQQ", 2), extra_where={"symbol": "QQQ"})
    assert _count(con, "raw.ticks", D1, "SPY") == 5 and _count(con, "raw.ticks", D1, "QQQ") == 2
    replace_partition(con, "raw.ticks", D1, _ticks(D1, "SPY", 4), extra_where={"symbol": ["SPY"]})
    assert _count(con, "raw.ticks", D1, "QQQ") == 2 and _count(con, "raw.ticks", D1, "SPY") == 4
    writes = [
        PartitionWrite(
            "raw.ticks",
            frame=_ticks(D1, s, n).drop("symbol", "session_date"),
            constants={"symbol": s},
            extra_where={"symbol": ["SPY", "QQQ"]},
        )
        for s, n in (("SPY", 3), ("QQQ", 6))
    ]
    for _ in range(2):
        assert replace_partitions(con, D1, writes) == {"raw.ticks": 9}
    assert _count(con, "raw.ticks", D1, "SPY") == 3 and _count(con, "raw.ticks", D1, "QQQ") == 6
    replace_partition(con, "raw.ticks", D1, _ticks(D1, "SPY", 1))  # no extra_where: the whole day
    assert _count(con, "raw.ticks", D1) == 1


def _rates(d: date, exchange: str, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "exchange": [exchange] * n,
            "symbol": ["BTCUSDT"] * n,
            "day": [d] * n,
            "funding_time": [datetime(d.year, d.month, d.day, i) for i in range(n)],
            "rate": [1e-4] * n,
            "interval_hours": [1] * n,
        },
        schema_overrides={"funding_time": pl.Datetime("ns"), "interval_hours": pl.Int32},
    )


def _day_count(con: duckdb.DuckDBPyConnection, d: date) -> int:
    return con.execute("SELECT count(*) FROM raw.funding_rates WHERE day = ?", [d]).fetchone()[0]


def test_the_partition_column_is_chosen_per_call_or_per_write_and_validated(con) -> None:
    replace_partition(con, "raw.funding_rates", D2, _rates(D2, "okx", 2), partition_column="day")
    for _ in range(3):
        assert replace_partition(con, "raw.funding_rates", D1, _rates(D1, "binance", 4), partition_column="day") == 4
    assert _day_count(con, D1) == 4 and _day_count(con, D2) == 2
    with pytest.raises(ValueError, match="do not belong to partition day"):
        replace_partition(con, "raw.funding_rates", D1, _rates(D2, "okx", 1), partition_column="day")
    for bad in ("day; DROP TABLE raw.ticks", "Day", ""):
        with pytest.raises(ValueError, match="bad column name"):
            replace_partition(con, "raw.funding_rates", D1, _rates(D1, "okx", 1), partition_column=bad)
    assert _day_count(con, D1) == 4
    # One transaction over tables keyed on different columns: the write's own column wins over the call's.
    writes = [
        PartitionWrite("raw.funding_rates", frame=_rates(D1, "bybit", 3)),
        PartitionWrite("raw.ticks", frame=_ticks(D1, "SPY", 2), partition_column="session_date"),
    ]
    for _ in range(2):
        assert replace_partitions(con, D1, writes, partition_column="day") == {"raw.funding_rates": 3, "raw.ticks": 2}
    assert _day_count(con, D1) == 3 and _count(con, "raw.ticks", D1) == 2 and _day_count(con, D2) == 2
    null_price = _ticks(D1, "SPY", 1).with_columns(pl.lit(None, dtype=pl.Float64).alias("price"))
    broken = [
        PartitionWrite("raw.funding_rates", frame=_rates(D1, "bybit", 5)),
        PartitionWrite("raw.ticks", frame=null_price, partition_column="session_date"),
    ]
    with pytest.raises(duckdb.ConstraintException):
        replace_partitions(con, D1, broken, partition_column="day")
    assert _day_count(con, D1) == 3 and _count(con, "raw.ticks", D1) == 2  # both tables rolled back


def test_a_second_process_holding_the_lock_is_waited_for_then_named(tmp_path) -> None:
    import subprocess
    import sys
    import time

    from warehouse.db import WarehouseLockedError, connect

    path = tmp_path / "w.duckdb"
    connect(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(3)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(
            WarehouseLockedError, match=rf"locked by process {holder.pid} \(.*duckdb\.connect.*one writing"
        ):
            connect(path, lock_timeout_s=0.5)
        assert time.monotonic() - start >= 0.3  # it retried before giving up
        con = connect(path, lock_timeout_s=30)  # waits for the other process to let go, then works
        assert con.execute("select 1").fetchone() == (1,)
        con.close()
    finally:
        holder.kill()
        holder.wait()
