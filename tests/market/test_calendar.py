"""NYSE calendar helpers: session counts, bounds in naive UTC, early closes, holidays, completed sessions."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from market import calendar as cal


def test_2024_has_252_sessions_inclusive_bounds():
    days = cal.sessions(date(2024, 1, 1), date(2024, 12, 31))
    assert len(days) == 252
    assert days[0] == date(2024, 1, 2) and days[-1] == date(2024, 12, 31)
    assert days == sorted(days)
    assert cal.sessions(date(2024, 1, 2), date(2024, 1, 2)) == [date(2024, 1, 2)]
    assert cal.sessions(date(2024, 1, 5), date(2024, 1, 2)) == []


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 7, 3), True),  # early close is still a session
        (date(2024, 7, 4), False),  # Independence Day
        (date(2024, 12, 25), False),
        (date(2024, 11, 30), False),  # Saturday
        (date(2024, 12, 1), False),  # Sunday
        (date(2025, 1, 9), False),  # one-off closure (national day of mourning)
        (date(2024, 3, 5), True),
    ],
)
def test_is_session(day, expected):
    assert cal.is_session(day) is expected


def test_session_bounds_are_naive_utc_across_dst():
    winter_open, winter_close = cal.session_bounds(date(2024, 1, 10))
    assert winter_open == np.datetime64("2024-01-10T14:30", "ns")
    assert winter_close == np.datetime64("2024-01-10T21:00", "ns")
    summer_open, summer_close = cal.session_bounds(date(2024, 7, 10))
    assert summer_open == np.datetime64("2024-07-10T13:30", "ns")
    assert summer_close == np.datetime64("2024-07-10T20:00", "ns")
    assert winter_open.dtype == np.dtype("datetime64[ns]")


def test_session_minutes_full_and_early_close():
    full = cal.session_minutes(date(2024, 3, 5))
    assert full.dtype == np.dtype("datetime64[ns]")
    assert len(full) == 390
    open_, close = cal.session_bounds(date(2024, 3, 5))
    assert full[0] == open_ and full[-1] == close - np.timedelta64(1, "m")
    assert np.all(np.diff(full) == np.timedelta64(1, "m"))
    assert len(cal.session_minutes(date(2024, 11, 29))) == 210  # day after Thanksgiving
    assert len(cal.session_minutes(date(2024, 12, 24))) == 210


def test_non_session_raises_value_error():
    with pytest.raises(ValueError, match="not an NYSE session"):
        cal.session_bounds(date(2024, 12, 25))
    with pytest.raises(ValueError, match="not an NYSE session"):
        cal.session_minutes(date(2024, 11, 30))
    with pytest.raises(ValueError, match="outside the supported calendar range"):
        cal.is_session(date(1990, 1, 2))


def test_non_session_days_are_weekday_holidays():
    holidays = cal.non_session_days(date(2024, 1, 1), date(2024, 12, 31))
    assert date(2024, 7, 4) in holidays and date(2024, 12, 25) in holidays and date(2024, 3, 29) in holidays
    assert all(d.weekday() < 5 for d in holidays)
    assert not any(cal.is_session(d) for d in holidays)
    weekdays = sum(1 for i in range(366) if (date(2024, 1, 1) + timedelta(days=i)).weekday() < 5)
    assert len(holidays) + 252 == weekdays
    assert date(2025, 1, 9) in cal.non_session_days(date(2025, 1, 6), date(2025, 1, 10))


def test_latest_completed_session_around_the_close_and_weekend():
    early_close = datetime(2024, 11, 29, 18, 0)  # 13:00 New York
    assert cal.latest_completed_session(early_close - timedelta(seconds=1)) == date(2024, 11, 27)
    assert cal.latest_completed_session(early_close) == date(2024, 11, 29)
    assert cal.latest_completed_session(datetime(2024, 12, 1, 15, 0)) == date(2024, 11, 29)  # Sunday
    assert cal.latest_completed_session(datetime(2024, 12, 2, 15, 0)) == date(2024, 11, 29)  # Monday, open
    assert cal.latest_completed_session(datetime(2024, 12, 2, 21, 0)) == date(2024, 12, 2)
    assert cal.latest_completed_session(datetime(1999, 6, 1)) is None


def test_latest_completed_session_accepts_aware_datetimes():
    ny = datetime(2024, 3, 5, 16, 0, tzinfo=ZoneInfo("America/New_York"))  # the close, in New York time
    assert cal.latest_completed_session(ny) == date(2024, 3, 5)
    assert cal.latest_completed_session(ny - timedelta(minutes=1)) == date(2024, 3, 4)
    utc = datetime(2024, 3, 5, 21, 0, tzinfo=UTC)
    assert cal.latest_completed_session(utc) == date(2024, 3, 5)


def test_calendar_is_built_once():
    assert cal.session_table() is cal.session_table()
