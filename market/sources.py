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
# Trades and quotes may also carry "vendor_id" (Utf8): the vendor's trade id or sequence number. Only a row repeating
# an earlier row's id is a re-send; without one no row is a duplicate, since identical prints are legal.
QUOTE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "ts": pl.Datetime("ns"),
    "bid": pl.Float64(),
    "ask": pl.Float64(),
    "bid_size": pl.Float64(),
    "ask_size": pl.Float64(),
}

# A vendor's own 1-minute bars (Polygon aggregates, IB historical bars), kept beside the ticks to cross-check them.
# ts is the bar's START (naive UTC ns), like Polygon's `t`; a minute without trades has no bar.
BAR_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "ts": pl.Datetime("ns"),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),  # fractional on Polygon (fractional shares)
    "vwap": pl.Float64(),  # null when the vendor gives none
    "trade_count": pl.Int64(),  # null when the vendor gives none
}


class SourceError(RuntimeError):
    """A source failed for good (retries exhausted, an error status, a refused request). Nothing is written."""


class MissingDataError(SourceError):
    """The vendor has nothing for a session the calendar says traded (e.g. a whole missing day on Polygon).

    The ingest records it as a gap and leaves that symbol's stored partition as it was."""


def empty_bars() -> pl.DataFrame:
    """A vendor-bars frame with the contract's columns and no rows."""
    return pl.DataFrame(schema=BAR_SCHEMA)


@dataclass(frozen=True)
class DayTape:
    """One symbol's raw trades, quotes and vendor minute bars for one session (TRADE/QUOTE/BAR_SCHEMA columns).

    None means the stream was not fetched (switched off, or a source without vendor bars): the warehouse then leaves
    that table's stored rows alone, whereas an empty frame replaces them with nothing. Rows may lie outside the
    regular session (pre- and after-hours): the warehouse keeps or drops them."""

    trades: pl.DataFrame | None
    quotes: pl.DataFrame | None
    bars: pl.DataFrame | None = None


def empty_trades() -> pl.DataFrame:
    """A trades frame with the contract's columns and no rows."""
    return pl.DataFrame(schema=TRADE_SCHEMA)


def empty_quotes() -> pl.DataFrame:
    """A quotes frame with the contract's columns and no rows (what an index returns)."""
    return pl.DataFrame(schema=QUOTE_SCHEMA)


def bars_from_trades(trades: pl.DataFrame, every: str = "1m") -> pl.DataFrame:
    """Vendor-style bars (BAR_SCHEMA) of `every` ("1m", "1s") from raw trades: a bar per period WITH trades, labelled
    by its start.

    The embedded market uses it so that every source fills the same tables; rows that are not plausible trades
    (null or non-finite values) are left out, as a vendor's aggregation would."""
    ok = trades.filter(
        pl.col("ts").is_not_null() & pl.col("price").is_finite() & pl.col("size").is_finite() & (pl.col("price") > 0)
    )
    grouped = (
        ok.sort("ts", maintain_order=True)
        .group_by("symbol", pl.col("ts").dt.truncate(every), maintain_order=True)
        .agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("size").sum().alias("volume"),
            pl.when(pl.col("size").sum() > 0)
            .then((pl.col("price") * pl.col("size")).sum() / pl.col("size").sum())
            .otherwise(None)
            .alias("vwap"),
            pl.len().cast(pl.Int64).alias("trade_count"),
        )
    )
    return grouped.select(pl.col(name).cast(dtype) for name, dtype in BAR_SCHEMA.items())


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
        """Generate (deterministically) the day's tape for `symbol`, with minute bars aggregated from its trades."""
        from market.synthetic import generate_day

        tape = generate_day(self.config, symbol, session_date)
        return DayTape(tape.trades, tape.quotes, bars_from_trades(tape.trades))

    def __repr__(self) -> str:
        return f"SyntheticSource({self.config!r})"
