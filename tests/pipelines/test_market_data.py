"""The real market-data graph, run through Dagster on the embedded market: idempotent, parallel-safe, backfillable."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import nullcontext
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml

from assets.resources import MarketDataResource, market_from_yaml
from assets.settings import ensure_dagster_home
from pipelines.definitions import build_definitions
from tests import ROOT  # noqa: E402
from warehouse.staging import committed

DAGSTER = str(Path(sys.executable).with_name("dagster"))
MINUTES = 390
SYMBOLS = 3
# The futures roots ES and NQ are two listed contracts each, on the 1,380 minutes of a Globex day.
FUTURES_MINUTES = 4 * 1380


def _counts(home: Path, day: str) -> dict[str, int]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        out = {}
        for table in ("raw.ticks", "raw.quotes", "raw.minute_bars", "core.bars_1m", "core.features_1m",
                      "core.options_chain_1m"):  # fmt: skip
            out[table] = con.execute(f"select count(*) from {table} where session_date = ?", [day]).fetchone()[0]
        out["dup_bars"] = con.execute(
            "select count(*) from (select symbol, minute from core.bars_1m where session_date = ? "
            "group by all having count(*) > 1)",
            [day],
        ).fetchone()[0]
        return out
    finally:
        con.close()


def test_one_partition_through_the_real_graph_three_times_keeps_one_copy(tf_env) -> None:
    defs = build_definitions()
    job = defs.resolve_job_def("market_data_job")
    instance = dg.DagsterInstance.ephemeral()
    seen = []
    for _ in range(3):
        result = job.execute_in_process(instance=instance, partition_key="2024-01-03")
        assert result.success
        evaluations = result.get_asset_check_evaluations()
        assert {e.check_name for e in evaluations} == {
            "quarantine_report",
            "session_coverage",
            "bar_integrity",
            "vendor_bar_agreement",
            "quote_coverage",
            "extreme_bar_returns",
            "features_finite",
            "features_truncation_invariant",
            "chain_quote_rules",
        }
        assert all(e.passed for e in evaluations), [(e.check_name, e.metadata) for e in evaluations]
        seen.append(_counts(tf_env.home, "2024-01-03"))
    assert seen[0] == seen[1] == seen[2]
    assert seen[0]["raw.ticks"] > 0 and seen[0]["raw.quotes"] > 0 and seen[0]["raw.minute_bars"] > 0
    assert seen[0]["core.bars_1m"] == MINUTES * SYMBOLS + FUTURES_MINUTES
    assert seen[0]["core.features_1m"] == MINUTES * SYMBOLS + FUTURES_MINUTES
    assert seen[0]["dup_bars"] == 0
    assert seen[0]["core.options_chain_1m"] == 3 * MINUTES * 2 * 31  # SPY, QQQ, SPX: 31 strikes, calls and puts


def test_a_range_run_records_each_partitions_own_metadata(tf_env) -> None:
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    tags = {"dagster/asset_partition_range_start": "2024-01-03", "dagster/asset_partition_range_end": "2024-01-05"}
    assert defs.resolve_job_def("market_data_job").execute_in_process(instance=instance, tags=tags).success
    days = ["2024-01-03", "2024-01-04", "2024-01-05"]
    counts = {day: _counts(tf_env.home, day) for day in days}
    assert len({c["raw.ticks"] for c in counts.values()}) == 3  # distinct per session, so a total would show
    for day in days:
        meta = {
            name: instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=[day]), limit=1
            )
            .records[0]
            .asset_materialization.metadata
            for name in ("raw_ticks", "bars_1m", "features_1m")
        }
        assert meta["raw_ticks"]["ticks"].value == counts[day]["raw.ticks"]
        assert meta["raw_ticks"]["quotes"].value == counts[day]["raw.quotes"]
        assert meta["raw_ticks"]["run_ticks"].value == sum(c["raw.ticks"] for c in counts.values())
        assert meta["raw_ticks"]["run_sessions"].value == 3
        assert meta["bars_1m"]["bars"].value == counts[day]["core.bars_1m"]
        assert meta["features_1m"]["rows"].value == counts[day]["core.features_1m"]


def _cli_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(ensure_dagster_home(home))
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([DAGSTER, "instance", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    return env


def _materialize(env: dict, select: str, *partition_args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [DAGSTER, "asset", "materialize", "-m", "pipelines.definitions", "--select", select, *partition_args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _materialize_each_day(env: dict, days: list[str]) -> list[str]:
    """raw_ticks for each day in a process of its own, all at once; each run's output, once all succeeded."""
    procs = [_materialize(env, "raw_ticks", "--partition", d) for d in days]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for day, proc, out in zip(days, procs, outputs, strict=True):
        assert proc.returncode == 0, f"{day}:\n{out[-3000:]}"
    return outputs


def _differing_rows(home: Path, expected: Path, table: str, day: str, decimals: int | None = None) -> int:
    """Rows of `table` on `day` present in one database but not the other (multiset difference, both ways); with
    `decimals`, floating-point columns are compared rounded (an aggregate's sum order can move the last bits)."""
    con = duckdb.connect(str(expected))
    try:
        con.execute(f"ATTACH '{home / 'warehouse.duckdb'}' AS run (READ_ONLY)")
        columns = "*"
        if decimals is not None:
            described = con.execute(f"describe select * from {table}").fetchall()
            columns = ", ".join(
                f'round("{name}", {decimals}) as "{name}"' if kind in ("DOUBLE", "FLOAT") else f'"{name}"'
                for name, kind, *_ in described
            )
        mine = f"select {columns} from {table} where session_date = '{day}'"
        theirs = f"select {columns} from run.{table} where session_date = '{day}'"
        return sum(
            con.execute(f"select count(*) from ({a} except all {b})").fetchone()[0]
            for a, b in ((mine, theirs), (theirs, mine))
        )
    finally:
        con.close()


def _expected_warehouse(tf_env, days: list[str]) -> Path:
    """The same sessions ingested directly, one after another, into a database of their own."""
    from warehouse.db import connect
    from warehouse.ingest import ingest_day

    expected = tf_env.home.parent / "expected.duckdb"
    market = market_from_yaml(tf_env.configs / "market.yaml")
    con = connect(expected)
    for day in days:
        ingest_day(con, market.build(), market.symbols, date.fromisoformat(day))
    con.close()
    return expected


def test_four_partitions_in_parallel_runs_share_duckdb_through_the_pool(tf_env) -> None:
    env = _cli_env(tf_env.home)
    days = ["2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]
    for out in _materialize_each_day(env, days):
        assert "Could not set lock" not in out
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    runs = instance.get_runs()
    assert len(runs) == 4 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)

    expected = _expected_warehouse(tf_env, days)
    for day in days:
        counts = _counts(tf_env.home, day)
        assert counts["raw.ticks"] > 0 and counts["raw.quotes"] > 0
        assert _differing_rows(tf_env.home, expected, "raw.ticks", day) == 0
        assert _differing_rows(tf_env.home, expected, "raw.quotes", day) == 0


@pytest.mark.parametrize("store", ["folder", "s3"])
def test_with_staging_four_parallel_ingests_never_open_duckdb_and_bars_load_exactly_their_rows(
    tf_env, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    """Staged in `<home>/staging`, or in an S3 bucket (a real local endpoint) that the processes reach by URL."""
    from tests.object_store import SECRET, s3_bucket

    with s3_bucket(monkeypatch) if store == "s3" else nullcontext(None) as bucket:
        url = f"{bucket}/staging" if bucket else None
        tf_env.edit_yaml(tf_env.configs / "market.yaml", lambda m: m.update(staging=url or True))
        outputs = _staged_then_loaded(tf_env, ["2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"], url)
    if store == "s3":  # the key lives in the environment only: not in any output, config, or the event log
        stored = b"".join(p.read_bytes() for p in (tf_env.home / "dagster").rglob("*") if p.is_file())
        assert SECRET not in "".join(outputs) and SECRET.encode() not in stored
        assert b"staged_commit" in stored  # the haystack holds the runs' metadata


def test_the_staging_setting_takes_a_folder_or_a_bucket_url_and_refuses_credentials_in_it(tmp_path: Path) -> None:
    from assets.resources import staging_from_yaml

    path = tmp_path / "market.yaml"
    for value, expected in ((True, str(tmp_path / "staging")), ("s3://bucket/raw", "s3://bucket/raw"), (False, None)):
        path.write_text(yaml.safe_dump({"staging": value}))
        assert staging_from_yaml(path, tmp_path) == expected
    for value, message in (("s3://AKIA:hunter2@bucket/raw", "carries credentials"), (7, "true, false, a folder")):
        path.write_text(yaml.safe_dump({"staging": value}))
        with pytest.raises(ValueError, match=message) as err:
            staging_from_yaml(path, tmp_path)
        assert "hunter2" not in str(err.value)


def _staged_then_loaded(tf_env, days: list[str], url: str | None) -> list[str]:
    defs = build_definitions()
    assert defs.get_assets_def("raw_ticks").op.pool is None  # no writer slot: the ingests run at once
    assert defs.get_assets_def("bars_1m").op.pool == "duckdb"
    env = _cli_env(tf_env.home)
    outputs = _materialize_each_day(env, days)
    assert not (tf_env.home / "warehouse.duckdb").exists()  # the ingests staged; none opened the warehouse
    staged = sorted(c.stats.session_date.isoformat() for c in committed(url or tf_env.home / "staging"))
    assert staged == days

    proc = _materialize(env, "bars_1m", "--partition-range", f"{days[0]}...{days[-1]}")
    outputs.append(proc.communicate(timeout=600)[0])
    assert proc.returncode == 0, outputs[-1][-3000:]
    assert committed(url or tf_env.home / "staging") == []  # loaded, then removed
    expected = _expected_warehouse(tf_env, days)
    for day in days:
        counts = _counts(tf_env.home, day)
        assert counts["raw.ticks"] > 0 and counts["core.bars_1m"] == MINUTES * SYMBOLS + FUTURES_MINUTES
        for table in ("raw.ticks", "raw.quotes", "raw.minute_bars"):
            assert _differing_rows(tf_env.home, expected, table, day) == 0, (table, day)
    con = duckdb.connect(str(tf_env.home / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT session_date) FROM raw.staged_loads").fetchone() == (4, 4)
    con.close()
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    record = instance.fetch_materializations(dg.AssetKey("bars_1m"), limit=1).records[0]
    assert record.asset_materialization.metadata["staged_commits_loaded"].value == 4
    return outputs


def test_cli_backfill_of_three_partitions_in_one_run(tf_env) -> None:
    env = _cli_env(tf_env.home)
    proc = _materialize(env, "raw_ticks,bars_1m,features_1m", "--partition-range", "2024-01-03...2024-01-05")
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out[-3000:]
    for day in ("2024-01-03", "2024-01-04", "2024-01-05"):
        assert _counts(tf_env.home, day)["core.features_1m"] == MINUTES * SYMBOLS + FUTURES_MINUTES
    assert _counts(tf_env.home, "2024-01-08")["raw.ticks"] == 0
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    records = instance.fetch_materializations(dg.AssetKey("features_1m"), limit=10).records
    assert sorted(r.partition_key for r in records) == ["2024-01-03", "2024-01-04", "2024-01-05"]


class DirtySource:
    """The embedded market with planted bad SPY trades: two re-sent late (out of order), a NaN price, a zero size and
    one out of session."""

    name = "dirty"

    def __init__(self, inner) -> None:
        self.inner = inner

    def fetch_day(self, symbol: str, session_date: date):
        from market.sources import DayTape

        tape = self.inner.fetch_day(symbol, session_date)
        if symbol != "SPY":
            return tape
        t = tape.trades
        bad = pl.concat(
            [
                t.slice(100, 2),
                t.slice(200, 1).with_columns(price=pl.lit(float("nan"))),
                t.slice(300, 1).with_columns(size=pl.lit(0.0)),
                t.slice(400, 1).with_columns((pl.col("ts") - pl.duration(hours=12)).cast(pl.Datetime("ns"))),
            ]
        )
        return DayTape(pl.concat([t, bad]), tape.quotes)


class DirtyMarket(MarketDataResource):
    def build(self) -> DirtySource:
        return DirtySource(super().build())


def test_bad_ticks_are_quarantined_with_reasons_and_reported_by_the_check(tf_env) -> None:
    clean = market_from_yaml(tf_env.configs / "market.yaml")
    defs = build_definitions(market=DirtyMarket(**clean.model_dump()))
    result = defs.resolve_job_def("market_data_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key="2024-01-03"
    )
    assert result.success
    report = next(e for e in result.get_asset_check_evaluations() if e.check_name == "quarantine_report")
    assert report.metadata["quarantined"].value == 5
    assert report.metadata["by_reason"].value == {
        "out_of_order": 2,
        "nan_price": 1,
        "zero_size": 1,
        "out_of_session": 1,
    }
    con = duckdb.connect(str(tf_env.home / "warehouse.duckdb"), read_only=True)
    reasons = con.execute("select reason, count(*) from raw.quarantine group by all order by all").fetchall()
    con.close()
    assert dict(reasons) == {"nan_price": 1, "out_of_order": 2, "out_of_session": 1, "zero_size": 1}
