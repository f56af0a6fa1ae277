"""tradeflow market: the NYSE calendar, symbols, market sources and the deterministic synthetic market.

No orchestration imports: the pipeline wraps these plain functions; tests and notebooks call them directly.
"""

from market.calendar import (
    is_session,
    latest_completed_session,
    non_session_days,
    session_bounds,
    session_minutes,
    sessions,
)
from market.sources import DayTape, MarketSource, SyntheticSource
from market.symbols import DEFAULT_SYMBOLS, SymbolSpec, get_symbol
from market.synthetic import DEFAULT_EDGE, SyntheticMarketConfig, generate_day

__all__ = [
    "DEFAULT_EDGE",
    "DEFAULT_SYMBOLS",
    "DayTape",
    "MarketSource",
    "SymbolSpec",
    "SyntheticMarketConfig",
    "SyntheticSource",
    "generate_day",
    "get_symbol",
    "is_session",
    "latest_completed_session",
    "non_session_days",
    "session_bounds",
    "session_minutes",
    "sessions",
]
