"""Daily partitions: trading days of the configured instruments' exchanges (weekends and days every one of them is
closed are not partitions), and UTC days for crypto.

The sessions partitions follow `configs/market.yaml`: they start at its `history_start` (default 2000-01-03, the
calendars reach back to 2000) and cover the calendars of its symbols, so an equities-only setup keeps NYSE days
while adding ES also makes CME-only days (Martin Luther King Day, an early close) partitions. Dagster fixes
partitions when the code location loads, so changing either takes a reload.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import yaml

from assets.settings import config_dir
from market.calendar import FIRST_DAY, NYSE, SessionRule, non_session_days
from market.symbols import declared, parse_instruments, session_rules

NEW_YORK = "America/New_York"
DEFAULT_HISTORY_START = date(2000, 1, 3)
# Holidays are listed up to this date; the calendar library knows them years ahead.
HOLIDAYS_UNTIL = date(2030, 12, 31)


def history_start(raw: dict, where: str = "market.yaml") -> date:
    """The `history_start` setting as a date in [2000-01-01, today]; ValueError naming the setting otherwise."""
    value = raw.get("history_start", DEFAULT_HISTORY_START)
    try:
        start = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{where}: history_start must be a date (YYYY-MM-DD), got {value!r}") from None
    if not FIRST_DAY <= start <= date.today():
        raise ValueError(f"{where}: history_start must be between {FIRST_DAY} and today, got {start}")
    return start


def market_settings(path: Path | None = None) -> tuple[date, tuple[SessionRule, ...]]:
    """The first partition and the session rules of market.yaml's symbols (NYSE when the file is absent)."""
    path = path or config_dir() / "market.yaml"
    if not path.exists():
        return DEFAULT_HISTORY_START, (NYSE,)
    raw = yaml.safe_load(path.read_text()) or {}
    try:
        with declared(parse_instruments(raw.get("instruments"), f"{path.name}: instruments")):
            rules = session_rules(raw.get("symbols") or ["SPY"])
    except ValueError:
        rules = (NYSE,)  # the definitions refuse the file with its own message when they load
    return history_start(raw, path.name), rules


def sessions_partitions(
    start: date = DEFAULT_HISTORY_START, rules: tuple[SessionRule, ...] = (NYSE,)
) -> dg.TimeWindowPartitionsDefinition:
    """One partition per trading day of any of `rules`; `end_offset=1` makes today a partition once it starts."""
    tz = ZoneInfo(NEW_YORK)
    closed = non_session_days(start, HOLIDAYS_UNTIL, rules)
    holidays = [datetime(d.year, d.month, d.day, tzinfo=tz) for d in closed]
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(),
        timezone=NEW_YORK,
        end_offset=1,
        exclusions=["0 0 * * 6", "0 0 * * 0", *holidays],
    )


SESSIONS_START, SESSION_RULES = market_settings()
SESSIONS = sessions_partitions(SESSIONS_START, SESSION_RULES)


def check_partition_keys(keys: list[str], partitions: dg.PartitionsDefinition = SESSIONS) -> None:
    """ValueError naming the range and the setting when a key is not a partition (before Dagster's own error)."""
    bad = [k for k in keys if not partitions.has_partition_key(k)]
    if bad:
        raise ValueError(
            f"{', '.join(bad[:5])} {'is' if len(bad) == 1 else 'are'} not a session partition: partitions run "
            f"from {SESSIONS_START} (history_start in configs/market.yaml) to the current trading day, on the "
            "trading days of the configured symbols' exchanges"
        )


FUNDING_START = date(2024, 1, 1)
# Perpetual futures trade every day; a UTC day becomes a partition once it is complete (end_offset=0).
FUNDING_DAYS = dg.DailyPartitionsDefinition(start_date=FUNDING_START.isoformat(), timezone="UTC", end_offset=0)


# The first partition of each data job's assets, by job name (a family names its data job).
FIRST_PARTITION = {"market_data_job": SESSIONS_START, "funding_data_job": FUNDING_START}
# The partitions of each data job's assets: a family's shadow signals follow its data job's.
DATA_PARTITIONS: dict[str, dg.PartitionsDefinition] = {"market_data_job": SESSIONS, "funding_data_job": FUNDING_DAYS}


def partition_dates(keys: list[str]) -> list[date]:
    """Partition keys of a run (one key, or a whole single-run backfill range) as dates."""
    return [date.fromisoformat(k) for k in keys]
