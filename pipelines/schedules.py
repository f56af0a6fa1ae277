"""Nightly refreshes: the latest completed NYSE session after the close in New York, and the last complete UTC day.

Each runs on its default cron unless TRADEFLOW_MARKET_DATA_CRON / TRADEFLOW_FUNDING_CRON names another (e.g. later
in the evening, once a vendor's day is final), read when the definitions load.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from dagster._utils.schedules import is_valid_cron_string

from assets.partitions import NEW_YORK
from market.calendar import latest_completed_session
from pipelines.jobs import funding_data_job, market_data_job

MARKET_DATA_CRON = ("TRADEFLOW_MARKET_DATA_CRON", "30 18 * * 1-5")
FUNDING_CRON = ("TRADEFLOW_FUNDING_CRON", "30 0 * * *")


def _cron(setting: tuple[str, str]) -> tuple[str, str]:
    """(cron, how the description names it) from the environment variable, refusing a malformed one by name."""
    name, default = setting
    cron = os.environ.get(name, "").strip() or default
    if not is_valid_cron_string(cron):
        raise ValueError(f"{name}={cron!r} is not a cron schedule (five fields, e.g. {default!r})")
    return cron, "" if cron == default else f" (cron {cron!r} from {name})"


def nightly_request(when: datetime) -> dg.RunRequest | dg.SkipReason:
    """A run for the latest NYSE session that has closed by `when`: a tick after the close asks for that day's, a
    tick before it (a moved cron) never for a session still trading, and a weekend or holiday tick for the session
    before, under the run key its own tick already used, so Dagster launches nothing twice (and catches up a missed
    night)."""
    session = latest_completed_session(when)
    if session is None:
        return dg.SkipReason(f"no NYSE session has closed by {when.isoformat()}")
    return dg.RunRequest(run_key=f"nightly-{session.isoformat()}", partition_key=session.isoformat())


def funding_request(run_date: date) -> dg.RunRequest:
    """A run for the UTC day before `run_date`: the last one whose funding settlements are all published."""
    day = (run_date - timedelta(days=1)).isoformat()
    return dg.RunRequest(run_key=f"funding-nightly-{day}", partition_key=day)


def _nightly(
    name: str,
    job: dg.UnresolvedAssetJobDefinition,
    setting: tuple[str, str],
    timezone: str,
    description: str,
    request: Callable[[datetime], dg.RunRequest | dg.SkipReason],
) -> dg.ScheduleDefinition:
    """A refresh schedule, running by default, on its cron (or the one its variable names)."""
    cron, note = _cron(setting)

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{description}{note}.",
    )
    def schedule(context: dg.ScheduleEvaluationContext):
        return request(context.scheduled_execution_time)

    return schedule


def market_data_nightly_schedule() -> dg.ScheduleDefinition:
    """The session's refresh after the close (16:00 New York, 13:00 on early-close days)."""
    return _nightly(
        "market_data_nightly_schedule", market_data_job, MARKET_DATA_CRON, NEW_YORK,
        "At 18:30 New York time on weekdays, ingests the latest NYSE session that has closed (a holiday repeats "
        "the session before's run key, so nothing reruns)",
        nightly_request,
    )  # fmt: skip


def funding_data_nightly_schedule() -> dg.ScheduleDefinition:
    """The UTC day that just ended (crypto funding settles every day of the week)."""
    return _nightly(
        "funding_data_nightly_schedule", funding_data_job, FUNDING_CRON, "UTC",
        "At 00:30 UTC every day, ingests the funding rates and mark prices of the UTC day that just ended",
        lambda when: funding_request(when.astimezone(UTC).date()),
    )  # fmt: skip
