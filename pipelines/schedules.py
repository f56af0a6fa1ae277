"""Nightly refreshes: the latest completed NYSE session after the close in New York, and the last complete UTC day.

Each runs on its default cron unless TRADEFLOW_MARKET_DATA_CRON / TRADEFLOW_FUNDING_CRON names another (e.g. later
in the evening, once a vendor's day is final), read when the definitions load.
"""

from __future__ import annotations

import os
from datetime import UTC, date, timedelta

import dagster as dg
from dagster._utils.schedules import is_valid_cron_string

from assets.partitions import NEW_YORK
from market.calendar import is_session
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


def nightly_request(session: date) -> dg.RunRequest | dg.SkipReason:
    """A run for the session's partition, or a skip on weekends and exchange holidays."""
    if not is_session(session):
        return dg.SkipReason(f"{session.isoformat()} is not an NYSE session")
    return dg.RunRequest(run_key=f"nightly-{session.isoformat()}", partition_key=session.isoformat())


def market_data_nightly_schedule() -> dg.ScheduleDefinition:
    """The market-data refresh on the session's New York date (18:30 on weekdays by default)."""
    cron, note = _cron(MARKET_DATA_CRON)

    @dg.schedule(
        name="market_data_nightly_schedule",
        job=market_data_job,
        cron_schedule=cron,
        execution_timezone=NEW_YORK,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"At 18:30 New York time on weekdays, ingests that day's NYSE session (skips holidays){note}.",
    )
    def schedule(context: dg.ScheduleEvaluationContext):
        """Refresh that day's session (closes are at 16:00, 13:00 on early-close days)."""
        return nightly_request(context.scheduled_execution_time.date())

    return schedule


def funding_request(run_date: date) -> dg.RunRequest:
    """A run for the UTC day before `run_date`: the last one whose funding settlements are all published."""
    day = (run_date - timedelta(days=1)).isoformat()
    return dg.RunRequest(run_key=f"funding-nightly-{day}", partition_key=day)


def funding_data_nightly_schedule() -> dg.ScheduleDefinition:
    """The funding refresh of the UTC day that just ended (00:30 UTC every day by default)."""
    cron, note = _cron(FUNDING_CRON)

    @dg.schedule(
        name="funding_data_nightly_schedule",
        job=funding_data_job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="At 00:30 UTC every day, ingests the funding rates and mark prices of the UTC day that just "
        f"ended{note}.",
    )
    def schedule(context: dg.ScheduleEvaluationContext):
        """Ingest the UTC day that just ended (crypto funding settles every day of the week)."""
        return funding_request(context.scheduled_execution_time.astimezone(UTC).date())

    return schedule
