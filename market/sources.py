"""Market sources: anything that can hand over one symbol's raw trades and quotes for one session.

Sources return RAW frames (no sorting, de-duplication, validation or side classification); the warehouse
owns all of that, so a live connector and the synthetic market go through the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import polars as pl

if TYPE_CHECKING:
    from market.synthetic import SyntheticMarketConfig

TRADE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "ts": pl.Datetime("ns"),
    "price": pl.Float64(),
    "size": pl.Float64(),
}
QUOTE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "ts": pl.Datetime("ns"),
    "bid": pl.Float64(),
    "ask": pl.Float64(),
    "bid_size": pl.Float64(),
    "ask_size": pl.Float64(),
}


@dataclass(frozen=True)
class DayTape:
    """One symbol's raw trades and quotes for one session (columns as TRADE_SCHEMA / QUOTE_SCHEMA)."""

    trades: pl.DataFrame
    quotes: pl.DataFrame


def empty_trades() -> pl.DataFrame:
    """A trades frame with the contract's columns and no rows."""
    return pl.DataFrame(schema=TRADE_SCHEMA)


def empty_quotes() -> pl.DataFrame:
    """A quotes frame with the contract's columns and no rows (what an index returns)."""
    return pl.DataFrame(schema=QUOTE_SCHEMA)


@runtime_checkable
class MarketSource(Protocol):
    """Where raw ticks come from: the synthetic market offline, a vendor connector live."""

    name: str

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        """Raw trades and quotes of `symbol` on `session_date`; raises on an unknown symbol or non-session."""
        ...


class SyntheticSource:
    """The deterministic synthetic market as a MarketSource (no keys, no network)."""

    name = "synthetic"

    def __init__(self, config: SyntheticMarketConfig | None = None) -> None:
        from market.synthetic import SyntheticMarketConfig

        self.config = config if config is not None else SyntheticMarketConfig()

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        """Generate (deterministically) the day's tape for `symbol`."""
        from market.synthetic import generate_day

        return generate_day(self.config, symbol, session_date)

    def __repr__(self) -> str:
        return f"SyntheticSource({self.config!r})"
