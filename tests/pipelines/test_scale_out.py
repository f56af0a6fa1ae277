"""The production deployment for real: a Postgres instance, the daemon's queue, and steps on two Celery workers.

A real Postgres and a real Redis start on 127.0.0.1 (installed first if missing; see deploy/local_services.py).
Runs are launched the way the UI launches them (queued, dequeued by the daemon, run worker, Celery steps), and
a worker's process is killed in the middle of the raw_ticks step: the step goes back on the queue, runs again,
and the warehouse ends up row for row equal to an in-process run of the same job. Training then fans out: each
(slice, seed) run is a step of its own on the workers, and every family's training job runs there at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import dagster as dg
import fsspec
import pytest
from dagster._core.scheduler.instigation import TickData, TickStatus
from dagster._serdes import deserialize_value

from assets.family import SOURCE_SUFFIXES
from assets.settings import ensure_dagster_home
from deploy import local_services
from pipelines.definitions import build_definitions
from pipelines.demo import shadow_plan
from rl.core.registry import get_family
from tests import ROOT
from tests.object_store import SECRET, s3_bucket
from tests.pipelines.test_market_data import _differing_rows

BIN = Path(sys.executable).parent
DAYS = ("2024-01-02", "2024-01-19")  # the tiny intraday, propfirm and zerodte ranges (tests/conftest.py)
RANGE_TAGS = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[1]}
FAMILIES = ("intraday", "funding", "propfirm", "zerodte")
CELERY_STEP = "[CeleryExecutor] Executing steps"


@pytest.fixture(scope="module")
def services():
    """A Postgres and a Redis of this module's own, stopped and removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="tradeflow-services-"))
    started = local_services.start(root)
    yield started
    local_services.stop(root)
    shutil.rmtree(root, ignore_errors=True)


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    """A server process in a process group of its own, so `_stop` also ends what it started (the daemon's code
    server outlived a SIGTERMed daemon here)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log_file = log.open("w")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(*procs: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM each process's group, wait for the process, then SIGKILL whatever of its group is left."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _dagster(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(BIN / "dagster"), *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _launch(instance: dg.DagsterInstance, job: str, tags: dict[str, str] | None = None, *more: str) -> str:
    """Launch as the UI does (queued, then the daemon's run launcher), with `more` CLI options; the new run's id."""
    before = {r.run_id for r in instance.get_runs()}
    args = ["job", "launch", "-w", "workspace.yaml", "-j", job, *more]
    _dagster(*args, *(["--tags", json.dumps(tags)] if tags else []))
    (run,) = [r for r in instance.get_runs(filters=dg.RunsFilter(job_name=job)) if r.run_id not in before]
    return run.run_id


def _wait(instance: dg.DagsterInstance, run_id: str, timeout: float, on_event=None) -> dg.DagsterRunStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if on_event is not None:
            on_event(instance.all_logs(run_id))
        if run.is_finished:
            return run.status
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {instance.get_run_by_id(run_id).status} after {timeout:.0f}s")


def _celery_steps(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(step key, worker hostname) of every Celery execution of the run's steps, retries included."""
    out = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if (record.message or "").startswith(CELERY_STEP):
            metadata = record.dagster_event.engine_event_data.metadata
            out.append((record.step_key, str(metadata["Celery worker"].value)))
    return out


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()  # the embedded default
    return [int(p) for p in text.split()]


def _span(defs: dg.Definitions, data_job: str) -> dict[str, str]:
    """The partition range tags covering every family's days in `data_job`, as the main command computes them."""
    days = []
    for family in FAMILIES:
        cfg = defs.resources["configs"].family(family)
        if get_family(cfg.kind).data_job == data_job:
            days += get_family(cfg.kind).data_partitions(cfg)
    return {
        "dagster/asset_partition_range_start": min(days).isoformat(),
        "dagster/asset_partition_range_end": max(days).isoformat(),
    }


def _tiny_zerodte(f: dict) -> None:
    f["data"].update({"start": "2024-01-02", "end": "2024-01-19"})
    f["walk_forward"].update({"train_days": 6, "test_days": 3, "slices": 2})
    f["ppo"].update({"total_timesteps": 512, "n_envs": 8, "n_steps": 32, "batch_size": 128, "n_epochs": 1})


@pytest.fixture
def bucket(monkeypatch):
    """A real S3 endpoint on 127.0.0.1 for the deployment's artifacts and step outputs (TRADEFLOW_ARTIFACTS)."""
    with s3_bucket(monkeypatch) as url:
        yield url


def test_postgres_instance_queue_daemon_and_celery_workers_survive_a_killed_worker(
    tf_env, services, bucket, monkeypatch, tmp_path
) -> None:
    tf_env.edit_yaml(tf_env.configs / "zerodte.yaml", _tiny_zerodte)
    # The tiny intraday candidate beats not trading on one slice of two (+$96 a day IQM, P 0.50): a lower bar
    # promotes it, so the shadow signals at the end play a policy (the others stay unpromoted, nothing to play).
    tf_env.edit_yaml(tf_env.configs / "intraday.yaml", lambda f: f.update(promotion={"min_probability": 0.4}))
    assert _span(build_definitions(), "market_data_job") == RANGE_TAGS
    # The reference: the same job in process, on the embedded SQLite instance, into a home of its own.
    monkeypatch.setenv("TRADEFLOW_HOME", str(tmp_path / "reference"))
    reference = build_definitions().resolve_job_def("market_data_job")
    assert reference.execute_in_process(instance=dg.DagsterInstance.ephemeral(), tags=RANGE_TAGS).success

    monkeypatch.setenv("TRADEFLOW_HOME", str(tf_env.home))
    for key, value in {**services.env(), "TRADEFLOW_DAGSTER_YAML": "deploy/dagster.yaml"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TRADEFLOW_EXECUTOR", "celery")
    monkeypatch.setenv("TRADEFLOW_FAN_OUT", "1")  # each (slice, seed) training run is a step of its own
    # Datasets, checkpoints, reports and step outputs through the bucket, as workers on several machines need.
    monkeypatch.setenv("TRADEFLOW_ARTIFACTS", f"{bucket}/deployment")
    monkeypatch.setenv("DAGSTER_HOME", str(ensure_dagster_home(tf_env.home)))
    instance = dg.DagsterInstance.get()
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert services.pg_password not in (tf_env.home / "dagster" / "dagster.yaml").read_text()  # the embedded default
    # Model automation stays off here, so the only runs are the ones this test launches (state kept in Postgres).
    _dagster("sensor", "stop", "-w", "workspace.yaml", "model_automation_sensor")
    _dagster("sensor", "stop", "-w", "workspace.yaml", "stale_models_sensor")

    logs = tmp_path / "logs"
    logs.mkdir()
    worker_cmd = [str(BIN / "celery"), "-A", "pipelines.celery_app", "worker", "--concurrency", "1", "-Q", "dagster"]
    worker_cmd += ["--without-gossip", "--without-mingle", "-l", "INFO"]
    workers = {f"w{n}": _spawn([*worker_cmd, "-n", f"w{n}@%h"], logs / f"w{n}.log") for n in (1, 2)}
    daemon = _spawn([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], logs / "daemon.log")
    killed: list[tuple[str, int]] = []

    def kill_the_raw_ticks_worker(records) -> None:
        """SIGKILL the process running raw_ticks the first time a worker starts it (the step's first attempt)."""
        if killed:
            return
        for record in records:
            if record.step_key == "raw_ticks" and (record.message or "").startswith(CELERY_STEP):
                host = str(record.dagster_event.engine_event_data.metadata["Celery worker"].value)
                (child,) = _children(workers[host.split("@")[0]].pid)
                os.kill(child, signal.SIGKILL)
                killed.append((host, child))
                return

    try:
        data_run = _launch(instance, "market_data_job", RANGE_TAGS)
        status = _wait(instance, data_run, timeout=420, on_event=kill_the_raw_ticks_worker)
        assert status == dg.DagsterRunStatus.SUCCESS, (logs / "w1.log").read_text()[-3000:]
        assert killed, "the raw_ticks step was never seen starting on a worker"
        steps = _celery_steps(instance, data_run)
        attempts = [host for step, host in steps if step == "raw_ticks"]
        assert len(attempts) == 2  # the killed attempt, then the redelivered one
        assert {step for step, _ in steps} == {"raw_ticks", "bars_1m", "features_1m", "options_chain_1m"}
        reference_db = tmp_path / "reference" / "warehouse.duckdb"
        for day in ("2024-01-02", "2024-01-10", "2024-01-19"):
            for table in ("raw.ticks", "raw.quotes"):  # stored as fetched: equal exactly
                assert _differing_rows(tf_env.home, reference_db, table, day) == 0, (table, day)
            for table in ("core.bars_1m", "core.features_1m", "core.options_chain_1m"):
                assert _differing_rows(tf_env.home, reference_db, table, day, decimals=9) == 0, (table, day)

        funding_run = _launch(instance, "funding_data_job", _span(build_definitions(), "funding_data_job"))
        assert _wait(instance, funding_run, timeout=300) == dg.DagsterRunStatus.SUCCESS
        sources = [dg.AssetKey(f"{family}_{suffix}") for family in FAMILIES for suffix in SOURCE_SUFFIXES]
        _wait_for(lambda: all(instance.get_latest_data_version_record(k, is_source=True) for k in sources))
        # Every family's training job at once (on the config versions the sensor observed): the queue admits
        # them, the duckdb pool takes the warehouse steps one at a time, and the two workers share the rest.
        runs = {family: _launch(instance, f"{family}_training_job") for family in FAMILIES}
        trained = []
        for family, run_id in runs.items():
            status = _wait(instance, run_id, timeout=900)
            # The tiny propfirm curriculum's first stage learns nothing in 256 steps, so its blocking gate stops
            # the run before phase two, on the workers as in process (tests/pipelines/test_propfirm.py).
            expected = dg.DagsterRunStatus.FAILURE if family == "propfirm" else dg.DagsterRunStatus.SUCCESS
            assert status == expected, f"{family}: " + (logs / "w1.log").read_text()[-3000:]
            trained += _celery_steps(instance, run_id)
        keys = {step for step, _ in trained}
        for family in ("intraday", "funding", "zerodte"):
            assert {f"{family}_dataset", f"{family}_reward_audit", f"{family}_evaluation"} <= keys
        runs_of_intraday = sorted(s for s in keys if s.startswith("intraday_policy.intraday_train_run["))
        assert len(runs_of_intraday) == 2  # the tiny config's two slices, one seed: a step each
        assert {"intraday_policy.intraday_training_plan", "intraday_policy.intraday_assemble_policy"} <= keys
        assert "propfirm_entries_policy" in keys and "propfirm_policy" not in keys  # gated: one step per stage
        gate = instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(dg.AssetKey("propfirm_entries_policy"), "entries_gate")
        )
        assert gate is not None and gate.evaluation.passed is False
        retried = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": runs["propfirm"]}))
        assert not retried  # a failed check is a finding: run retries only follow crashes
        assert {host.split("@")[0] for _, host in steps + trained} == {"w1", "w2"}  # both workers ran steps
        held = fsspec.url_to_fs(f"{bucket}/deployment", skip_instance_cache=True)[0].find(f"{bucket[5:]}/deployment")
        for family in ("intraday", "funding", "zerodte"):  # their outputs passed between workers through the bucket
            assert any(k.endswith(f"/storage/{family}_evaluation") for k in held), family
            assert any(f"/reports/{family}/" in k and k.endswith("/report.md") for k in held), family
        assert not (tf_env.home / "storage").exists()
        _shadow_signals_on_the_workers(instance, tf_env.home)
        assert not [w for w in logs.iterdir() if SECRET in w.read_text()]

        # The daemon's sensors tick against Postgres; the schedules' state lives there too.
        ticks = _ticks(services)
        assert {"config_observation_sensor", "dead_runs_sensor"} <= {name for name, _ in ticks}
        assert not [t for t in ticks if t[1] == TickStatus.FAILURE]
        assert {h.daemon_type for h in instance.get_daemon_heartbeats().values()} >= {
            "SENSOR",
            "SCHEDULER",
            "QUEUED_RUN_COORDINATOR",
        }
    finally:
        _stop(daemon, *workers.values())


def test_the_daemon_ticks_the_nightly_schedule_on_postgres_and_its_run_ingests_the_session(
    tf_env, services, monkeypatch, tmp_path
) -> None:
    """The schedule as production runs it: the daemon evaluates it against the Postgres instance, queues the run it
    requests, launches it, and the session lands in the warehouse. The cron is moved to every minute so a tick comes
    within the test (TRADEFLOW_MARKET_DATA_CRON, the setting a deployment moves its refresh with)."""
    from market.calendar import is_session
    from warehouse.db import connect

    for key, value in {**services.env(), "TRADEFLOW_DAGSTER_YAML": "deploy/dagster.yaml"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TRADEFLOW_MARKET_DATA_CRON", "* * * * *")
    monkeypatch.setenv("DAGSTER_HOME", str(ensure_dagster_home(tf_env.home)))
    instance = dg.DagsterInstance.get()
    for sensor in ("model_automation_sensor", "stale_models_sensor"):  # this test's only runs: the schedule's
        _dagster("sensor", "stop", "-w", "workspace.yaml", sensor)
    _dagster("schedule", "stop", "-w", "workspace.yaml", "funding_data_nightly_schedule")
    before = {r.run_id for r in instance.get_runs()}
    ticked = lambda: [t for t in _ticks(services) if t == ("market_data_nightly_schedule", TickStatus.SUCCESS)]  # noqa: E731
    earlier = len(ticked())
    daemon = _spawn([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], tmp_path / "daemon.log")
    try:
        _wait_for(lambda: [r for r in instance.get_runs() if r.run_id not in before], timeout=180)
        (run,) = [r for r in instance.get_runs() if r.run_id not in before]
        assert run.job_name == "market_data_job"
        assert run.tags.get("dagster/schedule_name") == "market_data_nightly_schedule"
        assert _wait(instance, run.run_id, timeout=300) == dg.DagsterRunStatus.SUCCESS
    finally:
        _stop(daemon, timeout=60)
    session = date.fromisoformat(run.tags["dagster/partition"])
    assert is_session(session) and run.tags["dagster/run_key"] == f"nightly-{session}"
    assert len(ticked()) > earlier  # the daemon's tick, stored in Postgres
    con = connect(tf_env.home / "warehouse.duckdb", read_only=True)
    stored = con.execute("SELECT count(*) FROM core.bars_1m WHERE session_date = ?", [session]).fetchone()[0]
    con.close()
    assert stored > 0


def _shadow_signals_on_the_workers(instance: dg.DagsterInstance, home: Path) -> None:
    """The nightly cycle's second half as the main command plays it, here through the queue and on the workers:
    each data job's next partition, then the shadow signals of the families it feeds there, each played by the
    promoted policy's checkpoints reached through the bucket. Propfirm's gated run promoted nothing to play."""
    from warehouse.db import connect
    from warehouse.signals import get_signals

    played: dict[str, tuple[str, str]] = {}  # family -> (partition, signals run id)
    plan = shadow_plan(build_definitions().resources["configs"], ["intraday", "zerodte", "funding"])
    for data_job, days in plan.items():
        for day, families in days.items():
            tag = {"dagster/partition": day}
            assert _wait(instance, _launch(instance, data_job, tag), timeout=300) == dg.DagsterRunStatus.SUCCESS
            job = data_job.replace("_data_job", "_signals_job")
            run_id = _launch(instance, job, tag, "-o", ",".join(f"{f}_signals" for f in families))
            assert _wait(instance, run_id, timeout=300) == dg.DagsterRunStatus.SUCCESS
            steps = _celery_steps(instance, run_id)
            assert sorted(step for step, _ in steps) == sorted(f"{f}_signals" for f in families)
            played |= {f: (day, run_id) for f in families}
    assert set(played) == {"intraday", "zerodte", "funding"}
    promoted = []
    con = connect(home / "warehouse.duckdb", read_only=True)
    try:
        for family, (day, run_id) in played.items():
            records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
            (event,) = [r for r in records if r.asset_materialization.asset_key == dg.AssetKey(f"{family}_signals")]
            meta = event.asset_materialization.metadata
            stored = get_signals(con, family, date.fromisoformat(day))
            if "note" in meta:  # nothing promoted: nothing played, nothing stored
                assert "is promoted yet" in meta["note"].value and stored.is_empty(), family
                continue
            promoted.append(family)
            assert stored.height == meta["decisions"].value > 0, family
            assert stored["policy_run_id"].unique().to_list() == [meta["policy_run_id"].value], family
    finally:
        con.close()
    assert promoted == ["intraday"]  # the one promoted policy played its signals on the workers


def _ticks(services: local_services.Services) -> list[tuple[str, TickStatus]]:
    """(sensor or schedule name, status) of every tick the daemon stored, read straight from Postgres."""
    import psycopg2

    con = psycopg2.connect(
        host=local_services.HOST,
        port=services.pg_port,
        user=services.pg_user,
        password=services.pg_password,
        dbname=services.pg_db,
    )
    try:
        with con.cursor() as cur:
            cur.execute("select tick_body from job_ticks")
            bodies = [deserialize_value(row[0], TickData) for row in cur.fetchall()]
    finally:
        con.close()
    return [(b.instigator_name, b.status) for b in bodies]


def _wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(1)


def test_a_wrong_postgres_password_fails_without_printing_it(services, tmp_path, monkeypatch, caplog) -> None:
    wrong = "not-the-password-" + services.pg_password[:6]
    for key, value in {**services.env(), "TRADEFLOW_PG_PASSWORD": wrong}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TRADEFLOW_DAGSTER_YAML", "deploy/dagster.yaml")
    with pytest.raises(Exception) as caught:
        dg.DagsterInstance.from_config(str(ensure_dagster_home(tmp_path / "home"))).get_runs(limit=1)
    said = caplog.text + repr(caught.value) + str(caught.value.__cause__ or "")
    assert 'password authentication failed for user "tradeflow"' in said  # the cause is named in the log
    assert wrong not in said and services.pg_password not in said


def test_the_executor_and_instance_settings_refuse_bad_values(monkeypatch, tmp_path) -> None:
    from pipelines.executors import executor_from_env, fan_out_from_env

    monkeypatch.delenv("TRADEFLOW_EXECUTOR", raising=False)
    assert executor_from_env() is None
    monkeypatch.setenv("TRADEFLOW_EXECUTOR", "celery")
    monkeypatch.setenv("TRADEFLOW_FAN_OUT", "1")  # each (slice, seed) training run is a step of its own
    assert executor_from_env().name == "celery"
    monkeypatch.setenv("TRADEFLOW_EXECUTOR", "k8s")
    with pytest.raises(ValueError, match="TRADEFLOW_EXECUTOR must be 'default' or 'celery', got 'k8s'"):
        executor_from_env()
    monkeypatch.setenv("TRADEFLOW_FAN_OUT", "yes")
    with pytest.raises(ValueError, match="TRADEFLOW_FAN_OUT must be 0 or 1, got 'yes'"):
        fan_out_from_env()
    monkeypatch.setenv("TRADEFLOW_DAGSTER_YAML", "deploy/nope.yaml")
    with pytest.raises(FileNotFoundError, match="TRADEFLOW_DAGSTER_YAML=deploy/nope.yaml: no such instance config"):
        ensure_dagster_home(tmp_path)
    monkeypatch.delenv("TRADEFLOW_DAGSTER_YAML")
    assert "postgres" not in (ensure_dagster_home(tmp_path) / "dagster.yaml").read_text()  # the embedded default


SEARCH = """
import sys
from pathlib import Path
from rl.core.search import run_search
from rl.families.intraday import FAMILY
from tests.core.test_search import search_setup

tmp = Path(sys.argv[1])
cfg, days, slices, reward = search_setup("env:TRADEFLOW_OPTUNA_URL", trials=6, heartbeat_s=3)
run_search(FAMILY, days, cfg, reward, slices, tmp, tmp / "presets", lambda line: print(line, flush=True))
"""


def test_search_workers_share_one_postgres_study_and_a_killed_trial_is_failed_and_retried(
    services, tmp_path, monkeypatch
) -> None:
    import optuna
    import psycopg2

    con = psycopg2.connect(host=local_services.HOST, port=services.pg_port, user=services.pg_user,
                           password=services.pg_password, dbname=services.pg_db)  # fmt: skip
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute("CREATE DATABASE optuna")
    con.close()
    url = f"postgresql://{services.pg_user}:{services.pg_password}@{local_services.HOST}:{services.pg_port}/optuna"
    monkeypatch.setenv("TRADEFLOW_OPTUNA_URL", url)  # the config names the variable, never the password
    storage = url.replace("postgresql://", "postgresql+psycopg2://")

    def search(log: Path) -> subprocess.Popen:
        return _spawn([sys.executable, "-c", SEARCH, str(tmp_path)], log)

    first = search(tmp_path / "first.log")
    deadline = time.monotonic() + 120
    killed = None
    while killed is None and time.monotonic() < deadline and first.poll() is None:
        names = optuna.get_all_study_names(storage)
        if names:
            study = optuna.load_study(study_name=names[0], storage=storage)
            trials = study.get_trials(deepcopy=False)
            # Mid-trial means with its settings drawn: a trial killed before that has none to retry with.
            running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING and t.params]
            if running:
                first.send_signal(signal.SIGKILL)  # the worker dies mid-trial; its trial stays RUNNING
                first.wait()
                killed = running[0].number
        time.sleep(0.1)
    assert killed is not None, (tmp_path / "first.log").read_text()[-2000:]
    time.sleep(7)  # past the grace period (twice the 3 s heartbeat)
    workers = [search(tmp_path / f"worker{n}.log") for n in (1, 2)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0], (tmp_path / "worker1.log").read_text()[-2000:]

    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    trials = study.get_trials(deepcopy=False)
    states = {t.number: t.state for t in trials}
    assert optuna.trial.TrialState.RUNNING not in states.values()
    assert states[killed] == optuna.trial.TrialState.FAIL  # failed by its silent heartbeat, never left running
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retried) == 1 and retried[0].params == study.trials[killed].params  # retried once, same settings
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert 6 <= len(finished) <= 7  # the budget, overshot by at most one trial a concurrent worker had begun
    ran = [sum("trial " in line and "->" in line for line in (tmp_path / f"worker{n}.log").read_text().splitlines())
           for n in (1, 2)]  # fmt: skip
    assert all(ran), ran  # both workers ran trials of the one study
    logs = "".join((tmp_path / name).read_text() for name in ("first.log", "worker1.log", "worker2.log"))
    assert services.pg_password not in logs and ":***@" in logs  # the study's URL is logged without its password
