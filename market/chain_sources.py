"""Real same-day option chains: the contract every chain source fills, whatever the vendor.

A `ChainSource` hands over one underlying's RAW per-minute quotes of the contracts expiring on a session, in
CHAIN_SCHEMA; the warehouse (warehouse/options.py) joins the stored underlying bars, solves the implied volatility,
applies the same quote rules as the embedded chain and quarantines what breaks them. Sources never validate.

Rows: one per listed contract of the strike window and regular-session minute, so that a contract-minute without
a quote is visible rather than absent.
- minute: the bar start (naive UTC ns, like core.bars_1m); the row holds the contract's LAST bid and ask inside
  [minute, minute + 1 min), the quote standing at the bar's close, where the warehouse prices the chain.
- bid / ask: null when the contract had no quote that minute. The standing quote is never carried forward:
  that would be a fill, and a stale quote would pass for a live one.
- volume: contracts traded in the minute; 0.0 for a minute without trades where the vendor reports trades (Polygon
  sends no aggregate for such a minute), null where the source does not fetch it (IBKR).

The strike window: `strikes_each_side` listed strikes either side of the listed strike nearest the underlying's
first price of the session (its first regular-session minute bar's close, as the embedded chain centres its
strikes). Counting listed strikes, not increments, follows whatever the exchange lists; it bounds the requests a
session costs (two per contract). SPX same-day options are the weekly class SPXW (`market.option_chain.OPTION_ROOT`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

from market.calendar import session_bounds, session_minutes
from market.option_chain import OPTION_ROOT
from market.values import is_int, is_number, known_keys

CHAIN_SCHEMA: dict[str, pl.DataType] = {
    "contract": pl.Utf8(),  # OCC ticker as Polygon writes it: O:SPY240305C00470000 (market.option_chain.occ_symbol)
    "underlying": pl.Utf8(),
    "right": pl.Utf8(),  # C or P
    "strike": pl.Float64(),
    "minute": pl.Datetime("ns"),  # bar start, naive UTC
    "bid": pl.Float64(),  # the minute's last bid; null: no quote that minute
    "ask": pl.Float64(),
    "volume": pl.Float64(),  # null: unknown
}
OPTIONS_SOURCES = ("embedded", "polygon", "ibkr")
_MINUTE_NS = 60_000_000_000


@dataclass(frozen=True)
class OptionsConfig:
    """The `options:` section of configs/market.yaml: where options_chain_1m's quotes come from.

    `embedded` prices the chain from the stored bars (no keys, no network); `polygon` and `ibkr` fetch real quotes
    with the connection settings of their own sections."""

    source: str = "embedded"  # embedded | polygon | ibkr
    strikes_each_side: int = 15  # listed strikes either side of the session's first price (the embedded chain's too)

    def __post_init__(self) -> None:
        if self.source not in OPTIONS_SOURCES:
            raise ValueError(f"options.source must be one of {', '.join(OPTIONS_SOURCES)}, got {self.source!r}")
        if not is_int(self.strikes_each_side) or not 1 <= self.strikes_each_side <= 200:
            n = self.strikes_each_side
            raise ValueError(f"options.strikes_each_side must be an integer in [1, 200], got {n!r}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> OptionsConfig:
        """From the YAML section (None: the defaults); unknown keys and bad values raise ValueError naming the key."""
        return cls(**known_keys(cls, raw, where="options"))


@runtime_checkable
class ChainSource(Protocol):
    """Where real same-day option quotes come from (a vendor connector); the embedded chain needs none."""

    name: str

    def fetch_chain(self, underlying: str, session_date: date) -> pl.DataFrame:
        """RAW CHAIN_SCHEMA rows of `underlying`'s contracts expiring on `session_date` (see the module docstring);
        `MissingDataError` when the vendor lists no such contract, ValueError off-session."""
        ...

    def skipped(self, underlying: str, session_date: date) -> tuple[str, ...]:
        """Contracts the vendor listed in the window but could not serve (IB qualifies them to None), as reported
        after `fetch_chain`; they have no rows."""
        ...


def option_root(underlying: str) -> str:
    """The trading class of `underlying`'s same-day options: SPXW for SPX, the symbol itself otherwise."""
    return OPTION_ROOT.get(underlying, underlying)


def strike_window(strikes: Iterable[Any], first_price: float, each_side: int) -> list[float]:
    """The listed strikes kept: `each_side` either side of the one nearest `first_price` (fewer at the edges)."""
    listed = np.unique(np.asarray([s for s in strikes if is_number(s) and s > 0], dtype=np.float64))
    if not listed.size:
        return []
    centre = int(np.argmin(np.abs(listed - first_price)))
    return listed[max(0, centre - each_side) : centre + each_side + 1].tolist()


def first_session_close(minute_ns: Iterable[Any], close: Iterable[Any], session_date: date) -> float | None:
    """The close of the first regular-session minute bar among vendor bars (bar starts in UTC ns); None if none."""
    lo, hi = (int(b.astype(np.int64)) for b in session_bounds(session_date))
    inside = [(t, c) for t, c in zip(minute_ns, close, strict=True) if is_int(t) and lo <= t < hi and is_number(c)]
    return float(min(inside)[1]) if inside else None


def last_per_minute(quotes: Iterable[tuple[Any, Any, Any]]) -> dict[int, tuple[Any, Any]]:
    """The last (bid, ask) of each minute from (ts_ns, bid, ask) rows, consumed once as they stream in (the later
    row wins a tie), keyed by the minute's start in UTC ns. A quote without an integer timestamp belongs to no
    minute and is left out."""
    last: dict[int, tuple[int, Any, Any]] = {}
    for t, b, a in quotes:
        if not is_int(t):
            continue
        minute = t - t % _MINUTE_NS
        held = last.get(minute)
        if held is None or t >= held[0]:
            last[minute] = (t, b, a)
    return {m: (b, a) for m, (_, b, a) in last.items()}


def _number_or_none(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def _volume(volume: Mapping[int, Any] | None, minute: int) -> float | None:
    """None when volumes were not fetched or the aggregate had none; 0.0 for a minute without an aggregate."""
    if volume is None:
        return None
    return _number_or_none(volume[minute]) if minute in volume else 0.0


def contract_minutes(
    contract: str, quotes: Mapping[int, tuple[Any, Any]], volume: Mapping[int, Any] | None = None
) -> pl.DataFrame:
    """One contract's reduced quotes (minute start ns -> (bid, ask)) and volumes as rows (contract, minute, bid,
    ask, volume); a value that is not a number is null. `volume` None: not fetched."""
    minutes = sorted(set(quotes) | set(volume or {}))
    pairs = [quotes.get(m, (None, None)) for m in minutes]
    return pl.DataFrame(
        {
            "contract": [contract] * len(minutes),
            "minute": pl.Series(minutes, dtype=pl.Int64).cast(pl.Datetime("ns")),
            "bid": [_number_or_none(b) for b, _ in pairs],
            "ask": [_number_or_none(a) for _, a in pairs],
            "volume": [_volume(volume, m) for m in minutes],
        },
        schema={"contract": pl.Utf8, "minute": pl.Datetime("ns"), "bid": pl.Float64, "ask": pl.Float64,
                "volume": pl.Float64},
    )  # fmt: skip


def chain_grid(
    underlying: str, session_date: date, contracts: pl.DataFrame, minutes: pl.DataFrame, *, volume_known: bool
) -> pl.DataFrame:
    """CHAIN_SCHEMA rows: every contract (contract, right, strike) at every regular-session minute, with its
    quotes from `minutes` (contract_minutes rows) where it had any; a minute without a quote stays null. With
    `volume_known`, a minute without a vendor aggregate traded nothing (0.0)."""
    grid = contracts.select("contract", "right", "strike").join(
        pl.DataFrame({"minute": session_minutes(session_date)}), how="cross"
    )
    seen = minutes.with_columns(pl.lit(True).alias("_seen"))
    rows = grid.join(seen, on=["contract", "minute"], how="left")
    if volume_known:  # a minute the vendor sent nothing for traded nothing
        rows = rows.with_columns(pl.when(pl.col("_seen")).then(pl.col("volume")).otherwise(0.0).alias("volume"))
    rows = rows.with_columns(pl.lit(underlying).alias("underlying"))
    return rows.select(pl.col(c).cast(t) for c, t in CHAIN_SCHEMA.items()).sort("contract", "minute")
