"""Each symbol's own session on a date: its open, close and calendar minutes, from its instrument's session rule.

An NYSE ETF and a CME future stored under the same date have different minutes (390 from 09:30 New York against
1,380 from 17:00 CT the evening before), so bars, features and checks take their grids from here, per symbol.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import numpy as np
import polars as pl

from market.calendar import session_index, session_table
from market.symbols import get_symbol

_MINUTE = np.timedelta64(1, "m")
_EPOCH = date(1970, 1, 1).toordinal()


def symbol_sessions(pairs: Iterable[tuple[str, date]]) -> pl.DataFrame:
    """symbol, session_date, open and close (naive UTC, close exclusive) and minutes, one row per pair given.

    ValueError for an unknown symbol or a date that is not a session of the symbol's calendar. Vectorised per
    symbol (a binary search in its calendar's table), since features ask for thousands of sessions at once."""
    rows = sorted(set(pairs))
    by_symbol: dict[str, list[date]] = {}
    for symbol, day in rows:
        by_symbol.setdefault(symbol, []).append(day)
    opens, closes = [], []
    for symbol, days in by_symbol.items():
        rule = get_symbol(symbol, days[0]).session_rule
        table = session_table(rule)
        numbers = np.array([d.toordinal() - _EPOCH for d in days], dtype=np.int64)
        at = np.clip(np.searchsorted(table.days, numbers), 0, len(table.days) - 1)
        missing = table.days[at] != numbers
        if missing.any():
            session_index(days[int(np.argmax(missing))], rule)  # raises, naming the day and the calendar
        opens.append(table.open_ns[at])
        closes.append(table.close_ns[at])
    open_us = (
        (np.concatenate(opens) if opens else np.zeros(0, np.int64)).astype("datetime64[ns]").astype("datetime64[us]")
    )
    close_us = (
        (np.concatenate(closes) if closes else np.zeros(0, np.int64)).astype("datetime64[ns]").astype("datetime64[us]")
    )
    return pl.DataFrame(
        {
            "symbol": pl.Series([s for s, _ in rows], dtype=pl.Utf8),
            "session_date": pl.Series([d for _, d in rows], dtype=pl.Date),
            "open": pl.Series(open_us, dtype=pl.Datetime("us")),
            "close": pl.Series(close_us, dtype=pl.Datetime("us")),
            "minutes": pl.Series(((close_us - open_us) // _MINUTE).astype(np.int64), dtype=pl.Int64),
        }
    )


def minute_grid(pairs: Iterable[tuple[str, date]]) -> pl.DataFrame:
    """symbol, session_date, minute: every calendar minute (bar start) each pair's bars must cover."""
    sessions = symbol_sessions(pairs)
    if not sessions.height:
        return pl.DataFrame(schema={"symbol": pl.Utf8, "session_date": pl.Date, "minute": pl.Datetime("us")})
    return sessions.select(
        "symbol",
        "session_date",
        pl.datetime_ranges("open", pl.col("close") - pl.duration(minutes=1), interval="1m", closed="both").alias(
            "minute"
        ),
    ).explode("minute")
