"""Daily partitions: NYSE sessions for equities (weekends and holidays are not partitions), UTC days for crypto."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg

from market.calendar import non_session_days

NEW_YORK = "America/New_York"
SESSIONS_START = date(2024, 1, 2)
# Holidays are listed up to this date; the calendar library knows them years ahead.
HOLIDAYS_UNTIL = date(2030, 12, 31)


def nyse_sessions_partitions(start: date = SESSIONS_START) -> dg.TimeWindowPartitionsDefinition:
    """One partition per NYSE session; `end_offset=1` makes today's session a partition once it starts."""
    tz = ZoneInfo(NEW_YORK)
    holidays = [datetime(d.year, d.month, d.day, tzinfo=tz) for d in non_session_days(start, HOLIDAYS_UNTIL)]
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(),
        timezone=NEW_YORK,
        end_offset=1,
        exclusions=["0 0 * * 6", "0 0 * * 0", *holidays],
    )


SESSIONS = nyse_sessions_partitions()
FUNDING_START = date(2024, 1, 1)
# Perpetual futures trade every day; a UTC day becomes a partition once it is complete (end_offset=0).
FUNDING_DAYS = dg.DailyPartitionsDefinition(start_date=FUNDING_START.isoformat(), timezone="UTC", end_offset=0)


def partition_dates(keys: list[str]) -> list[date]:
    """Partition keys of a run (one key, or a whole single-run backfill range) as dates."""
    return [date.fromisoformat(k) for k in keys]
