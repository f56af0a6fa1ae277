"""Nightly refreshes: the latest completed NYSE session after the close in New York, and the last complete UTC day."""

from __future__ import annotations

from datetime import UTC, date, timedelta

import dagster as dg

from assets.partitions import NEW_YORK
from market.calendar import is_session
from pipelines.jobs import funding_data_job, market_data_job


def nightly_request(session: date) -> dg.RunRequest | dg.SkipReason:
    """A run for the session's partition, or a skip on weekends and exchange holidays."""
    if not is_session(session):
        return dg.SkipReason(f"{session.isoformat()} is not an NYSE session")
    return dg.RunRequest(run_key=f"nightly-{session.isoformat()}", partition_key=session.isoformat())


@dg.schedule(
    job=market_data_job,
    cron_schedule="30 18 * * 1-5",
    execution_timezone=NEW_YORK,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 18:30 New York time on weekdays, ingests that day's NYSE session (skips holidays).",
)
def market_data_nightly_schedule(context: dg.ScheduleEvaluationContext):
    """At 18:30 New York time, refresh that day's session (closes are at 16:00, 13:00 on early-close days)."""
    return nightly_request(context.scheduled_execution_time.date())


def funding_request(run_date: date) -> dg.RunRequest:
    """A run for the UTC day before `run_date`: the last one whose funding settlements are all published."""
    day = (run_date - timedelta(days=1)).isoformat()
    return dg.RunRequest(run_key=f"funding-nightly-{day}", partition_key=day)


@dg.schedule(
    job=funding_data_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 00:30 UTC every day, ingests the funding rates and mark prices of the UTC day that just ended.",
)
def funding_data_nightly_schedule(context: dg.ScheduleEvaluationContext):
    """At 00:30 UTC, ingest the UTC day that just ended (crypto funding settles every day of the week)."""
    return funding_request(context.scheduled_execution_time.astimezone(UTC).date())
