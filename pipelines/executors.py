"""Which executor runs a job's steps: Dagster's default (a process per step on this machine) or Celery workers.

TRADEFLOW_EXECUTOR=celery sends every step of a launched run to the Celery workers listening on the broker
(`TRADEFLOW_CELERY_BROKER`, results on `TRADEFLOW_CELERY_BACKEND`); the main command's in-process runs are
unaffected. The worker side is `pipelines.celery_app`, built from the same settings. TRADEFLOW_FAN_OUT=1 gives
the executor more to spread: each (slice, seed) training run becomes a step of its own.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

EXECUTOR_ENV = "TRADEFLOW_EXECUTOR"
BROKER_ENV = "TRADEFLOW_CELERY_BROKER"
BACKEND_ENV = "TRADEFLOW_CELERY_BACKEND"
FAN_OUT_ENV = "TRADEFLOW_FAN_OUT"

# A step is acknowledged only when it has finished, and a worker process that dies mid-step (kill -9, the
# out-of-memory killer) puts its step back on the queue, where another worker runs it again; every asset
# replaces its partition, so the re-run neither loses nor duplicates rows. One step per worker process at a time.
CELERY_SETTINGS: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "task_default_queue": "dagster",
    "task_default_priority": 5,
    "broker_connection_retry_on_startup": True,
}


def executor_from_env() -> dg.ExecutorDefinition | None:
    """The Celery executor when TRADEFLOW_EXECUTOR=celery, None (Dagster's default) when unset or `default`."""
    choice = os.environ.get(EXECUTOR_ENV, "default")
    if choice == "default":
        return None
    if choice != "celery":
        raise ValueError(f"{EXECUTOR_ENV} must be 'default' or 'celery', got {choice!r}")
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {"broker": {"env": BROKER_ENV}, "backend": {"env": BACKEND_ENV}, "config_source": CELERY_SETTINGS},
        name="celery",
    )


def fan_out_from_env() -> bool:
    """TRADEFLOW_FAN_OUT=1: each (slice, seed) training run is a step of its own, for the executor to spread."""
    value = os.environ.get(FAN_OUT_ENV, "0")
    if value not in ("0", "1"):
        raise ValueError(f"{FAN_OUT_ENV} must be 0 or 1, got {value!r}")
    return value == "1"
