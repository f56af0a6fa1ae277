"""Nightly refresh of the latest completed NYSE session's partitions, after the close in New York."""

from __future__ import annotations

from datetime import date

import dagster as dg

from market.calendar import is_session
from pipelines.jobs import market_data_job
from pipelines.partitions import NEW_YORK


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
)
def market_data_nightly_schedule(context: dg.ScheduleEvaluationContext):
    """At 18:30 New York time, refresh that day's session (closes are at 16:00, 13:00 on early-close days)."""
    return nightly_request(context.scheduled_execution_time.date())
