"""Recovering from a killed run: a run whose process is gone is marked failed, and its pool slots are freed.

A run killed with kill -9 (or by the kernel's out-of-memory killer) cannot report its own end. Launched from the
UI, Dagster's code server notices the dead worker and marks the run failed, and run monitoring frees its pool
slots after `free_slots_after_run_end_seconds`. A run executed in-process (the main command, the CLI's
`asset materialize`) has no such watcher: it stays STARTED and keeps the only `duckdb` slot for ever, so every
later warehouse step waits. `dead_runs_sensor` closes both gaps on this machine: it checks the pid each
in-progress run recorded when it started, marks the ones whose process is gone as failed with a message that says
so, and frees the slots of runs that have ended but still hold one. The main command runs the same sweep before
it starts, since it runs without the daemon.

Runs are judged by their pid on this host, which holds for the embedded single-machine deployment.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from assets.common import WAREHOUSE_POOL

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
_RUNNING = {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING}
_CLOCK_SLACK_S = 5.0  # a process that started this long after the run cannot be the run's worker (pid reuse)


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process that started executing the run (its RUN_START event), or None before it started."""
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
    return events[0].dagster_event.pid if events and events[0].dagster_event is not None else None


def _process_start_time(pid: int) -> float | None:
    """Unix time at which `pid` started (Linux /proc), or None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        lines = Path("/proc/stat").read_text().splitlines()
        boot = next(float(line.split()[1]) for line in lines if line.startswith("btime"))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None


def process_alive(pid: int, started_by: float | None = None) -> bool:
    """Whether `pid` runs now and, when `started_by` is given, started no later than that (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if started_by is None:
        return True
    start = _process_start_time(pid)
    return start is None or start <= started_by + _CLOCK_SLACK_S


def dead_worker_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The pid of a STARTING/STARTED run's worker when that process no longer exists; None for a live run."""
    if run.status not in _RUNNING:
        return None
    pid = run_worker_pid(instance, run.run_id)
    if pid is None:
        return None
    record = instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record is not None else None
    return None if process_alive(pid, started) else pid


def is_dead(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """A run that is STARTING/STARTED by its status, but whose worker process no longer exists."""
    return dead_worker_pid(instance, run) is not None


def live_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Queued or running runs, without the ones whose process is gone."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS))
    return [r for r in runs if not is_dead(instance, r)]


def recover(instance: dg.DagsterInstance) -> list[str]:
    """Mark dead runs failed and free pool slots still held by runs that ended; what was done, one line each."""
    done = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(_RUNNING))):
        pid = dead_worker_pid(instance, run)
        if pid is not None:
            instance.report_run_failed(
                run,
                message=f"The run's process (pid {pid}) is gone: it was killed (kill -9, or by the kernel's "
                "out-of-memory killer) or it crashed. Marked failed by dead_runs_sensor; its pool slots are freed.",
            )
            done.append(f"run {run.run_id}: process {pid} is gone, marked failed")
    storage = instance.event_log_storage
    info = storage.get_concurrency_info(WAREHOUSE_POOL)
    holders = {slot.run_id for slot in info.claimed_slots} | {step.run_id for step in info.pending_steps}
    for run_id in sorted(holders):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            done.append(f"run {run_id}: ended but held or awaited a {WAREHOUSE_POOL} slot, freed")
    return done


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 60 s, marks failed any run whose process is gone (kill -9, out of memory) and frees the "
    "duckdb pool slots of runs that ended, so no later warehouse step waits for a dead run.",
)
def dead_runs_sensor(context: dg.SensorEvaluationContext):
    done = recover(context.instance)
    if not done:
        return dg.SkipReason("no dead runs and no stale pool slots")
    context.log.info("; ".join(done))
    return dg.SkipReason("; ".join(done))
