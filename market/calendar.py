"""NYSE session calendar (exchange_calendars "XNYS") as plain dates and naive-UTC numpy timestamps.

Building an exchange_calendars calendar is slow, so it is built once, lazily, for a bounded range and
flattened into sorted numpy arrays; every helper below is a binary search over those arrays.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np

CALENDAR_NAME = "XNYS"
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2035, 12, 31)
_MINUTE_NS = 60_000_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class SessionTable(NamedTuple):
    """Every XNYS session in [FIRST_DAY, LAST_DAY]: day numbers since 1970-01-01 and open/close in UTC ns."""

    days: np.ndarray  # int64, days since the epoch, sorted
    open_ns: np.ndarray  # int64, session open, UTC ns
    close_ns: np.ndarray  # int64, session close, UTC ns (exclusive)


@lru_cache(maxsize=1)
def session_table() -> SessionTable:
    """Build the XNYS calendar once and keep only what the helpers need (about 9,000 sessions)."""
    import exchange_calendars as xc

    cal = xc.get_calendar(CALENDAR_NAME, start=FIRST_DAY.isoformat(), end=LAST_DAY.isoformat())
    sched = cal.schedule
    days = sched.index.values.astype("datetime64[D]").astype(np.int64)
    # Schedule columns are tz-aware UTC; strip the zone to get naive UTC nanoseconds.
    open_ns = sched["open"].dt.tz_convert(None).values.astype("datetime64[ns]").astype(np.int64)
    close_ns = sched["close"].dt.tz_convert(None).values.astype("datetime64[ns]").astype(np.int64)
    for arr in (days, open_ns, close_ns):
        arr.flags.writeable = False  # shared by every caller
    return SessionTable(days, open_ns, close_ns)


def _day_number(d: date) -> int:
    if isinstance(d, datetime):
        d = d.date()
    return d.toordinal() - _EPOCH_ORDINAL


def _check_range(d: date) -> None:
    if isinstance(d, datetime):
        d = d.date()
    if not FIRST_DAY <= d <= LAST_DAY:
        raise ValueError(f"date {d} outside the supported calendar range {FIRST_DAY}..{LAST_DAY}")


def _to_date(day_number: int) -> date:
    return date.fromordinal(int(day_number) + _EPOCH_ORDINAL)


def session_index(d: date) -> int:
    """Position of session `d` in the session table; ValueError if `d` is not an NYSE session."""
    _check_range(d)
    table = session_table()
    n = _day_number(d)
    i = int(np.searchsorted(table.days, n))
    if i >= len(table.days) or table.days[i] != n:
        raise ValueError(f"{d} is not an NYSE session (weekend or holiday)")
    return i


def sessions(start: date, end: date) -> list[date]:
    """NYSE sessions in [start, end], inclusive, oldest first."""
    _check_range(start)
    _check_range(end)
    table = session_table()
    lo = np.searchsorted(table.days, _day_number(start), side="left")
    hi = np.searchsorted(table.days, _day_number(end), side="right")
    return [_to_date(x) for x in table.days[lo:hi]]


def is_session(d: date) -> bool:
    """True when the NYSE holds a regular session on `d`."""
    _check_range(d)
    table = session_table()
    n = _day_number(d)
    i = int(np.searchsorted(table.days, n))
    return i < len(table.days) and int(table.days[i]) == n


def session_bounds(d: date) -> tuple[np.datetime64, np.datetime64]:
    """Open and close of session `d` as naive-UTC datetime64[ns]; the close is exclusive."""
    i = session_index(d)
    table = session_table()
    return np.datetime64(int(table.open_ns[i]), "ns"), np.datetime64(int(table.close_ns[i]), "ns")


def session_minutes(d: date) -> np.ndarray:
    """Bar-start minutes [open, close) of session `d` as datetime64[ns] (390, or 210 on an early close)."""
    i = session_index(d)
    table = session_table()
    return np.arange(table.open_ns[i], table.close_ns[i], _MINUTE_NS, dtype=np.int64).astype("datetime64[ns]")


def latest_completed_session(now_utc: datetime) -> date | None:
    """The last session whose close is <= `now_utc` (naive means UTC); None before the calendar range."""
    if now_utc.tzinfo is not None:
        now_utc = now_utc.astimezone(UTC).replace(tzinfo=None)
    now_ns = np.datetime64(now_utc, "ns").astype(np.int64)
    table = session_table()
    i = int(np.searchsorted(table.close_ns, now_ns, side="right")) - 1
    return None if i < 0 else _to_date(table.days[i])


def non_session_days(start: date, end: date) -> list[date]:
    """Weekdays in [start, end] without a session (holidays, one-off closures): partition exclusions."""
    _check_range(start)
    _check_range(end)
    days = np.arange(_day_number(start), _day_number(end) + 1, dtype=np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    holidays = days[(weekday < 5) & ~np.isin(days, session_table().days)]
    return [_to_date(x) for x in holidays]


EXTENDED_OPEN = time(4, 0)  # America/New_York: pre-market opens
EXTENDED_CLOSE = time(20, 0)  # America/New_York: after-hours ends (17:00 on early-close days; 20:00 is a superset)


def extended_bounds(d: date) -> tuple[np.datetime64, np.datetime64]:
    """Pre-market open (04:00 New York) and after-hours close (20:00, exclusive) of session `d`, naive UTC.

    Vendors such as Polygon return these hours with every day's bars; the warehouse keeps or drops them."""
    session_index(d)
    zone = ZoneInfo("America/New_York")
    lo, hi = (
        datetime.combine(d, t, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        for t in (EXTENDED_OPEN, EXTENDED_CLOSE)
    )
    return np.datetime64(lo, "ns"), np.datetime64(hi, "ns")


def fetch_window(d: date, extended_hours: bool) -> tuple[np.datetime64, np.datetime64]:
    """The UTC window a source should fetch for session `d`: the regular session, or pre- to after-hours."""
    return extended_bounds(d) if extended_hours else session_bounds(d)
