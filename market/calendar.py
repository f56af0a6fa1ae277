"""Session calendars (exchange_calendars) as plain dates and naive-UTC numpy timestamps, one per session rule.

A `SessionRule` names an exchange calendar (XNYS for NYSE equities, CMES for CME Globex) and optionally a local
close that ends each session before the calendar's own: CME equity-index futures trade from 17:00 CT the evening
before to 16:00 CT, then pause for the daily break, while the CMES calendar runs to 17:00. Holidays and early
closes come from the calendar (Labor Day on CME is an early-close session, not a closure).

Building an exchange_calendars calendar is slow, so each rule's table is built once, lazily, for a bounded range
and flattened into sorted numpy arrays; every helper below is a binary search over those arrays. Every helper
takes the rule as `rule=` and defaults to NYSE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np

CALENDAR_NAME = "XNYS"
CALENDARS = ("XNYS", "CMES")
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2035, 12, 31)
_MINUTE_NS = 60_000_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class SessionRule:
    """Which days are sessions and when each opens and closes: an exchange calendar, optionally cut short."""

    calendar: str = CALENDAR_NAME
    timezone: str = "America/New_York"  # the zone of `close`
    close: time | None = None  # a local time ending every session earlier than the calendar does

    def __post_init__(self) -> None:
        if self.calendar not in CALENDARS:
            raise ValueError(f"unknown calendar {self.calendar!r}; available: {', '.join(CALENDARS)}")
        try:
            ZoneInfo(self.timezone)
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None

    def __str__(self) -> str:
        return self.calendar if self.close is None else f"{self.calendar} to {self.close:%H:%M} {self.timezone}"


NYSE = SessionRule()
CME_EQUITY = SessionRule("CMES", "America/Chicago", time(16, 0))


class SessionTable(NamedTuple):
    """Every session of a rule in [FIRST_DAY, LAST_DAY]: day numbers since 1970-01-01 and open/close in UTC ns."""

    days: np.ndarray  # int64, days since the epoch, sorted
    open_ns: np.ndarray  # int64, session open, UTC ns
    close_ns: np.ndarray  # int64, session close, UTC ns (exclusive)


@lru_cache(maxsize=8)
def session_table(rule: SessionRule = NYSE) -> SessionTable:
    """Build the rule's calendar once and keep only what the helpers need (about 9,000 sessions)."""
    import exchange_calendars as xc
    import pandas as pd

    cal = xc.get_calendar(rule.calendar, start=FIRST_DAY.isoformat(), end=LAST_DAY.isoformat())
    sched = cal.schedule
    days = sched.index.values.astype("datetime64[D]").astype(np.int64)
    # Schedule columns are tz-aware UTC; strip the zone to get naive UTC nanoseconds.
    open_ns = sched["open"].dt.tz_convert(None).values.astype("datetime64[ns]").astype(np.int64)
    close_ns = sched["close"].dt.tz_convert(None).values.astype("datetime64[ns]").astype(np.int64)
    if rule.close is not None:
        local = pd.DatetimeIndex(sched.index.values) + pd.Timedelta(hours=rule.close.hour, minutes=rule.close.minute)
        cut = local.tz_localize(rule.timezone).tz_convert(None).values.astype("datetime64[ns]").astype(np.int64)
        close_ns = np.minimum(close_ns, cut)
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


def session_index(d: date, rule: SessionRule = NYSE) -> int:
    """Position of session `d` in the rule's session table; ValueError if `d` is not one of its sessions."""
    _check_range(d)
    table = session_table(rule)
    n = _day_number(d)
    i = int(np.searchsorted(table.days, n))
    if i >= len(table.days) or table.days[i] != n:
        name = "an NYSE" if rule.calendar == CALENDAR_NAME else f"a {rule.calendar}"
        raise ValueError(f"{d} is not {name} session (weekend or holiday)")
    return i


def sessions(start: date, end: date, rule: SessionRule = NYSE) -> list[date]:
    """The rule's sessions in [start, end], inclusive, oldest first."""
    _check_range(start)
    _check_range(end)
    table = session_table(rule)
    lo = np.searchsorted(table.days, _day_number(start), side="left")
    hi = np.searchsorted(table.days, _day_number(end), side="right")
    return [_to_date(x) for x in table.days[lo:hi]]


def is_session(d: date, rule: SessionRule = NYSE) -> bool:
    """True when the rule's exchange holds a session on `d` (NYSE by default)."""
    _check_range(d)
    table = session_table(rule)
    n = _day_number(d)
    i = int(np.searchsorted(table.days, n))
    return i < len(table.days) and int(table.days[i]) == n


def session_bounds(d: date, rule: SessionRule = NYSE) -> tuple[np.datetime64, np.datetime64]:
    """Open and close of session `d` as naive-UTC datetime64[ns]; the close is exclusive."""
    i = session_index(d, rule)
    table = session_table(rule)
    return np.datetime64(int(table.open_ns[i]), "ns"), np.datetime64(int(table.close_ns[i]), "ns")


def session_minutes(d: date, rule: SessionRule = NYSE) -> np.ndarray:
    """Bar-start minutes [open, close) of session `d` as datetime64[ns] (NYSE: 390, or 210 on an early close;
    CME equity index: 1,380 from 17:00 CT the evening before)."""
    i = session_index(d, rule)
    table = session_table(rule)
    return np.arange(table.open_ns[i], table.close_ns[i], _MINUTE_NS, dtype=np.int64).astype("datetime64[ns]")


def latest_completed_session(now_utc: datetime, rule: SessionRule = NYSE) -> date | None:
    """The last session whose close is <= `now_utc` (naive means UTC); None before the calendar range."""
    if now_utc.tzinfo is not None:
        now_utc = now_utc.astimezone(UTC).replace(tzinfo=None)
    now_ns = np.datetime64(now_utc, "ns").astype(np.int64)
    table = session_table(rule)
    i = int(np.searchsorted(table.close_ns, now_ns, side="right")) - 1
    return None if i < 0 else _to_date(table.days[i])


def non_session_days(start: date, end: date, rules: tuple[SessionRule, ...] = (NYSE,)) -> list[date]:
    """Weekdays in [start, end] without a session under any of `rules` (holidays, one-off closures): partition
    exclusions."""
    _check_range(start)
    _check_range(end)
    days = np.arange(_day_number(start), _day_number(end) + 1, dtype=np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    traded = np.unique(np.concatenate([session_table(r).days for r in rules]))
    holidays = days[(weekday < 5) & ~np.isin(days, traded)]
    return [_to_date(x) for x in holidays]


EXTENDED_OPEN = time(4, 0)  # America/New_York: pre-market opens
EXTENDED_CLOSE = time(20, 0)  # America/New_York: after-hours ends (17:00 on early-close days; 20:00 is a superset)


def extended_bounds(d: date, rule: SessionRule = NYSE) -> tuple[np.datetime64, np.datetime64]:
    """Pre-market open (04:00 New York) and after-hours close (20:00, exclusive) of NYSE session `d`, naive UTC;
    other calendars have no extended hours, so their session's own bounds.

    Vendors such as Polygon return these hours with every day's bars; the warehouse keeps or drops them."""
    if rule != NYSE:
        return session_bounds(d, rule)
    session_index(d)
    zone = ZoneInfo("America/New_York")
    lo, hi = (
        datetime.combine(d, t, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        for t in (EXTENDED_OPEN, EXTENDED_CLOSE)
    )
    return np.datetime64(lo, "ns"), np.datetime64(hi, "ns")


def fetch_window(d: date, extended_hours: bool, rule: SessionRule = NYSE) -> tuple[np.datetime64, np.datetime64]:
    """The UTC window a source should fetch for session `d`: the regular session, or pre- to after-hours."""
    return extended_bounds(d, rule) if extended_hours else session_bounds(d, rule)
