"""kill -9 during a write, then recovery: the dead run is marked failed, its duckdb slot freed, the data intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb

from assets.common import WAREHOUSE_POOL
from assets.settings import ensure_dagster_home
from pipelines.recovery import dead_runs_sensor, is_dead, live_runs
from pipelines.sensors import models_in_progress
from tests import ROOT

DAGSTER = str(Path(sys.executable).with_name("dagster"))
DAY = "2024-01-04"


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "DAGSTER_HOME": str(ensure_dagster_home(home)), "PYTHONPATH": str(ROOT)}
    subprocess.run([DAGSTER, "instance", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    return env


def _materialize(env: dict[str, str]) -> subprocess.Popen:
    cmd = [DAGSTER, "asset", "materialize", "-m", "pipelines.definitions", "--select", "raw_ticks", "--partition", DAY]
    return subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _ticks(home: Path) -> int:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("select count(*) from raw.ticks where session_date = ?", [DAY]).fetchone()[0]
    finally:
        con.close()


def test_a_run_killed_mid_write_is_recovered_and_the_next_run_completes(tf_env) -> None:
    tf_env.edit_yaml(tf_env.configs / "market.yaml", lambda m: m["embedded"].update(trades_per_day=1_000_000))
    env = _env(tf_env.home)
    first = _materialize(env)
    try:
        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
        deadline = time.monotonic() + 120
        warehouse = tf_env.home / "warehouse.duckdb"
        while not (
            instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots and warehouse.exists()
        ):
            assert first.poll() is None, first.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the run never took the duckdb slot and opened the warehouse"
            time.sleep(0.05)
        time.sleep(0.2)  # inside the step: a million-trade session takes seconds to generate and write
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    (run,) = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.STARTED  # nobody told Dagster: it still holds the only slot
    assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots
    assert is_dead(instance, run) and live_runs(instance) == []
    assert models_in_progress(instance, "intraday") == []

    result = dead_runs_sensor(dg.build_sensor_context(instance=instance))  # what the daemon runs every minute
    assert "marked failed" in result.skip_message and "freed" in result.skip_message
    run = instance.get_run_by_id(run.run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
    assert "kill -9" in failure.dagster_event.message
    assert not instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots
    partial = _ticks(tf_env.home)

    second = _materialize(env)
    out = second.communicate(timeout=300)[0]
    assert second.returncode == 0, out[-3000:]
    runs = {r.run_id: r.status for r in instance.get_runs()}
    assert sorted(runs.values(), key=str) == sorted([dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS], key=str)
    full = _ticks(tf_env.home)
    assert full > 0 and partial in (0, full)  # the killed session was never half-written: none of it, or all

    third = _materialize(env)  # the partition rewritten is replaced, not appended
    assert third.communicate(timeout=300)[0] is not None and third.returncode == 0
    assert _ticks(tf_env.home) == full
    assert dead_runs_sensor(dg.build_sensor_context(instance=instance)).skip_message.startswith("no dead runs")
