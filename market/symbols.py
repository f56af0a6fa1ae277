"""Tradable symbols and the parameters the synthetic market needs to make each one look plausible."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SymbolSpec:
    """One symbol: what it is and how the synthetic market scales it relative to SPY."""

    symbol: str
    kind: Literal["equity", "index"]
    start_price: float  # price level on the reference session (2024-01-02); the daily walk starts there
    beta: float  # loading on the shared market factor
    idio_vol: float = 0.0  # idiosyncratic volatility as a fraction of the market factor's
    density: float = 1.0  # trades and quotes per day relative to SPY's (equities)
    wide_spread_prob: float = 0.1  # chance that a quote or trade sees a spread wider than one tick (equities)
    level_interval_s: float = 1.0  # seconds between printed levels (indexes only)
    tick: float = 0.01
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("equity", "index"):
            raise ValueError(f"{self.symbol}: kind must be 'equity' or 'index', got {self.kind!r}")
        if not self.start_price > 0:
            raise ValueError(f"{self.symbol}: start_price must be > 0, got {self.start_price}")
        if self.density <= 0 or self.level_interval_s <= 0:
            raise ValueError(f"{self.symbol}: density and level_interval_s must be > 0")
        if not 0.0 <= self.wide_spread_prob < 1.0:
            raise ValueError(f"{self.symbol}: wide_spread_prob must be in [0, 1), got {self.wide_spread_prob}")
        if self.idio_vol < 0:
            raise ValueError(f"{self.symbol}: idio_vol must be >= 0, got {self.idio_vol}")

    @property
    def is_index(self) -> bool:
        """Indexes print levels only: size 0.0 and no quotes."""
        return self.kind == "index"


DEFAULT_SYMBOLS: dict[str, SymbolSpec] = {
    "SPY": SymbolSpec(
        "SPY",
        "equity",
        start_price=470.0,
        beta=1.0,
        idio_vol=0.05,
        density=1.0,
        wide_spread_prob=0.08,
        description="S&P 500 ETF: the agent's main instrument",
    ),
    "QQQ": SymbolSpec(
        "QQQ",
        "equity",
        start_price=400.0,
        beta=1.2,
        idio_vol=0.5,
        density=0.75,
        wide_spread_prob=0.12,
        description="Nasdaq-100 ETF: higher beta, its own idiosyncratic moves",
    ),
    "SPX": SymbolSpec(
        "SPX",
        "index",
        start_price=4700.0,
        beta=1.0,
        idio_vol=0.0,
        level_interval_s=1.0,
        description="S&P 500 cash index: levels once a second, no volume, no quotes",
    ),
}


def get_symbol(name: str) -> SymbolSpec:
    """The spec for `name`; ValueError listing the known symbols otherwise."""
    try:
        return DEFAULT_SYMBOLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown symbol {name!r}; known: {', '.join(DEFAULT_SYMBOLS)}") from None
