"""The Celery app tradeflow's workers run: `celery -A pipelines.celery_app worker --concurrency 1`.

Broker and result backend come from TRADEFLOW_CELERY_BROKER and TRADEFLOW_CELERY_BACKEND only (dagster-celery's
own `worker start` writes them into a config file), with the same settings the executor submits under.
"""

from __future__ import annotations

import os

from dagster_celery.config import DEFAULT_CONFIG, dict_wrapper
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from pipelines.executors import BACKEND_ENV, BROKER_ENV, CELERY_SETTINGS


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"set {name} for the Celery workers, e.g. redis://127.0.0.1:6379/0 (see README)")
    return value


app = make_app(
    {
        "broker": _required(BROKER_ENV),
        "backend": _required(BACKEND_ENV),
        "include": [],
        "config_source": dict_wrapper({**DEFAULT_CONFIG, **CELERY_SETTINGS}),
    }
)
execute_plan = create_task(app)
