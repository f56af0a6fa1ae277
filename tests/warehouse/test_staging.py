"""Parallel ingest: workers stage partitions as committed Parquet folders; the single DuckDB writer loads them."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from market.synthetic import SyntheticMarketConfig, SyntheticSource
from warehouse.db import connect
from warehouse.ingest import ingest_day
from warehouse.staging import TMP, committed, load_staged, stage_day

DATES = [date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5), date(2024, 1, 8)]


def _cfg(seed: int = 5) -> SyntheticMarketConfig:
    return SyntheticMarketConfig(seed=seed, trades_per_day=2_000, quotes_per_day=1_000)


CFG = _cfg()
# Every raw table an ingest writes, with the columns that do not carry the wall clock of the write.
TABLES = {
    "raw.ticks": "symbol, session_date, ts, seq, price, size, side",
    "raw.quotes": "symbol, session_date, ts, bid, ask, bid_size, ask_size",
    "raw.quarantine": "source, table_name, session_date, symbol, ts, reason, payload",
    "raw.ingest_gaps": "symbol, session_date, source, reason",
}


def _stage(store: str, symbols: list[str], day: date, seed: int = 5) -> str:
    """One worker's job (a separate process): stage one partition and return its commit id."""
    return stage_day(store, SyntheticSource(_cfg(seed)), symbols, day).commit_id


def _die_at_commit(store: str, day: date) -> None:
    """A worker killed after writing its Parquet files but before the committing rename."""
    import warehouse.staging as staging

    staging.os.rename = lambda *_: os._exit(137)
    stage_day(store, SyntheticSource(CFG), ["SPY"], day)


def _rows(con, table: str) -> list[tuple]:
    return con.execute(f"SELECT {TABLES[table]} FROM {table} ORDER BY ALL").fetchall()


def test_workers_staging_at_once_load_to_exactly_the_tables_a_direct_ingest_writes(tmp_path: Path) -> None:
    store = tmp_path / "staging"
    jobs = [(["SPY", "QQQ", "SPX"], d) for d in DATES[:3]] + [(["SPY", "QQQ"], DATES[3]), (["SPX"], DATES[3])]
    with ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("spawn")) as pool:
        ids = list(pool.map(_stage, [str(store)] * len(jobs), *zip(*jobs, strict=True)))
    assert len(set(ids)) == len(jobs)
    assert not list((store / TMP).iterdir())

    staged = connect(tmp_path / "staged.duckdb")
    report = load_staged(staged, store)
    assert sorted(c.commit_id for c in report.loaded) == sorted(ids)
    assert staged.execute("SELECT count(*) FROM raw.staged_loads").fetchone()[0] == len(jobs)
    assert committed(store) == []

    direct = connect(tmp_path / "direct.duckdb")
    for symbols, d in jobs:
        ingest_day(direct, SyntheticSource(CFG), symbols, d)
    for table in TABLES:
        assert _rows(staged, table) == _rows(direct, table), table
    ticks = staged.execute("SELECT count(*), count(DISTINCT (symbol, session_date)) FROM raw.ticks").fetchone()
    assert ticks[0] == sum(c.stats.ticks for c in report.loaded) and ticks[1] == 3 * len(DATES)


def test_a_worker_killed_before_its_commit_leaves_nothing_loadable(tmp_path: Path) -> None:
    store = tmp_path / "staging"
    proc = mp.get_context("spawn").Process(target=_die_at_commit, args=(str(store), DATES[0]))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 137
    (leftover,) = list((store / TMP).iterdir())
    assert any(p.suffix == ".parquet" for p in leftover.iterdir())  # it did write, then died
    assert committed(store) == []

    con = connect(tmp_path / "w.duckdb")
    young = load_staged(con, store)
    assert young.loaded == [] and young.in_flight == [leftover.name]  # may still be writing: left alone
    old = load_staged(con, store, abandoned_after_s=0.0)
    assert old.abandoned == [leftover.name] and not leftover.exists()
    assert con.execute("SELECT count(*) FROM raw.ticks").fetchone()[0] == 0


def test_restaging_a_partition_replaces_it_and_a_commit_loads_once(tmp_path: Path) -> None:
    store, con = tmp_path / "staging", connect(tmp_path / "w.duckdb")
    first = _stage(str(store), ["SPY"], DATES[0], seed=1)
    second = _stage(str(store), ["SPY"], DATES[0], seed=2)
    kept = tmp_path / "kept"
    shutil.copytree(store / f"session_date={DATES[0]}" / first, kept)  # as if the loader died before cleanup

    report = load_staged(con, store)
    assert [c.commit_id for c in report.loaded] == [first, second]
    direct = connect(tmp_path / "direct.duckdb")
    ingest_day(direct, SyntheticSource(_cfg(2)), ["SPY"], DATES[0])
    assert _rows(con, "raw.ticks") == _rows(direct, "raw.ticks")  # the later commit won; nothing appended

    shutil.copytree(kept, store / f"session_date={DATES[0]}" / first)
    again = load_staged(con, store)
    assert again.loaded == [] and again.already_loaded == [first]
    assert _rows(con, "raw.ticks") == _rows(direct, "raw.ticks")


def test_a_staged_file_changed_after_its_commit_is_refused_and_the_stored_day_kept(tmp_path: Path) -> None:
    store, con = tmp_path / "staging", connect(tmp_path / "w.duckdb")
    ingest_day(con, SyntheticSource(CFG), ["SPY"], DATES[0])
    before = _rows(con, "raw.ticks")
    commit_id = _stage(str(store), ["SPY"], DATES[0], seed=9)
    folder = store / f"session_date={DATES[0]}" / commit_id
    ticks = next(folder.glob("*-ticks.parquet"))
    pl.read_parquet(ticks).head(10).write_parquet(ticks)
    with pytest.raises(ValueError, match=r"ticks\.parquet is missing or changed since it was staged; re-stage"):
        load_staged(con, store)
    assert _rows(con, "raw.ticks") == before and folder.exists()


def _die_before_manifest(store: str, day: date) -> None:
    """A worker killed after uploading its Parquet objects but before the manifest that commits them."""
    import warehouse.staging as staging

    real = staging._Bucket.commit

    def partial(self, key: str, files: list) -> None:
        real(self, key, files[:-1])
        os._exit(137)

    staging._Bucket.commit = partial
    stage_day(store, SyntheticSource(CFG), ["SPY"], day)


def test_an_s3_store_stages_and_loads_what_a_folder_does_and_an_unfinished_commit_is_never_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same workers, against a real S3 endpoint: no rename there, so the manifest written last is the commit."""
    import fsspec

    from tests.object_store import SECRET, s3_bucket
    from warehouse.store import check_location

    with s3_bucket(monkeypatch) as bucket:
        store = f"{bucket}/staging"
        jobs = [(["SPY", "QQQ"], DATES[0]), (["SPX"], DATES[0]), (["SPY", "QQQ", "SPX"], DATES[1])]
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
            ids = list(pool.map(_stage, [store] * len(jobs), *zip(*jobs, strict=True)))
        proc = ctx.Process(target=_die_before_manifest, args=(store, DATES[2]))
        proc.start()
        proc.join(120)
        assert proc.exitcode == 137
        fs, _ = fsspec.url_to_fs(store, skip_instance_cache=True)
        (unfinished,) = [p for p in fs.glob(f"{store.removeprefix('s3://')}/session_date={DATES[2]}/*")]
        assert fs.ls(unfinished) and not fs.exists(f"{unfinished}/manifest.json")  # it uploaded, then died
        assert sorted(c.commit_id for c in committed(store)) == sorted(ids)

        con = connect(tmp_path / "w.duckdb")
        report = load_staged(con, store)
        assert sorted(c.commit_id for c in report.loaded) == sorted(ids)
        assert report.in_flight == [unfinished.split("/", 2)[2]]  # young: it may still be uploading
        direct = connect(tmp_path / "direct.duckdb")
        for symbols, d in jobs:
            ingest_day(direct, SyntheticSource(CFG), symbols, d)
        for table in TABLES:
            assert _rows(con, table) == _rows(direct, table), table
        assert con.execute(f"SELECT count(*) FROM raw.ticks WHERE session_date = '{DATES[2]}'").fetchone() == (0,)
        old = load_staged(con, store, abandoned_after_s=0.0)
        assert old.loaded == [] and old.abandoned == report.in_flight and committed(store) == []
        assert fs.find(store.removeprefix("s3://")) == []  # loaded commits and the abandoned upload are gone

        changed = _stage(store, ["SPY"], DATES[3])
        (ticks,) = fs.glob(f"{store.removeprefix('s3://')}/session_date={DATES[3]}/{changed}/*-ticks.parquet")
        fs.pipe_file(ticks, b"not the staged file")
        with pytest.raises(ValueError, match=r"ticks\.parquet is missing or changed since it was staged") as err:
            load_staged(con, store)
        assert SECRET not in str(err.value)
    with pytest.raises(ValueError, match="carries credentials") as err:
        check_location(f"s3://{'AKIA'}:{SECRET}@bucket/staging", "staging")
    assert SECRET not in str(err.value)
