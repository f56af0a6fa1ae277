"""The prop-firm family's arrays: one row per (futures root, trading day) holding that day's front contract.

`FuturesDays` wraps a `MarketDays` whose symbol is the root (ES), so days sort by root then date and an account
walks one root's days in order, plus what the rule book needs that MarketDays lacks: each bar's high, low and UTC
start, and the contract traded that day. Prices are that contract's own (never back-adjusted): positions are
flat at every day's cutoff, so no position is carried across a roll.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from rl.core.data import MarketDays, OnBars, row_indices

BASE_COLUMNS = ("root", "symbol", "session_date", "minute", "open", "high", "low", "close", "mean_spread")
_OWN = ("contracts", "high", "low", "minute_ns")


@dataclass(frozen=True, eq=False)
class FuturesDays(OnBars):
    """D (root, day) rows padded to T minutes: bars and features (`bars`), highs, lows, bar starts, contracts."""

    bars: MarketDays  # symbols = roots; open, close, spread, features, length
    contracts: np.ndarray  # [D] str: the contract traded that day (ESH24)
    high: np.ndarray  # [D, T] float64
    low: np.ndarray  # [D, T] float64
    minute_ns: np.ndarray  # [D, T] int64: bar start, UTC ns (padding repeats the last bar's)

    def __post_init__(self) -> None:
        d, t = self.bars.open.shape
        if self.contracts.shape != (d,):
            raise ValueError(f"contracts must be [D={d}], got {self.contracts.shape}")
        for name in ("high", "low", "minute_ns"):
            if getattr(self, name).shape != (d, t):
                raise ValueError(f"{name} must be [D={d}, T={t}], got {getattr(self, name).shape}")
        valid = np.arange(t)[None, :] < self.bars.length[:, None]
        top = np.maximum(self.bars.open, self.bars.close)
        bottom = np.minimum(self.bars.open, self.bars.close)
        if np.any(valid & ((self.high < top - 1e-9) | (self.low > bottom + 1e-9) | (self.low <= 0))):
            raise ValueError("every bar needs low <= open, close <= high and a positive low")
        if np.any(valid[:, 1:] & (np.diff(self.minute_ns, axis=1) <= 0)):
            raise ValueError("bar starts must increase within a day")

    # ------------------------------------------------------------------ views shared with MarketDays
    @property
    def roots(self) -> np.ndarray:
        return self.bars.symbols

    def subset(self, indices: Iterable[int] | np.ndarray) -> FuturesDays:
        """The rows at `indices` (ints or a boolean mask), in that order."""
        idx = row_indices(indices)
        return FuturesDays(
            self.bars.subset(idx), self.contracts[idx], self.high[idx], self.low[idx], self.minute_ns[idx]
        )

    def next_day(self) -> np.ndarray:
        """[D] int64: the row of the same root's next trading day, -1 on its last."""
        nxt = np.arange(1, self.n_days + 1, dtype=np.int64)
        same = np.append(self.roots[1:] == self.roots[:-1], False)
        return np.where(same, nxt, -1)

    # ------------------------------------------------------------------ storage
    def _arrays(self) -> dict[str, np.ndarray]:
        out = {f"bars_{k}": v for k, v in self.bars._arrays().items()}
        out["contracts"] = np.asarray(self.contracts, dtype=str)
        out |= {k: getattr(self, k) for k in ("high", "low", "minute_ns")}
        return out

    @classmethod
    def _from_arrays(cls, z: Mapping[str, np.ndarray]) -> FuturesDays:
        bars = MarketDays._from_arrays({k[5:]: z[k] for k in z if k.startswith("bars_")})
        return cls(bars, z["contracts"].astype(str), z["high"], z["low"], z["minute_ns"])

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, feature_names: Sequence[str]) -> FuturesDays:
        """From a frame like `warehouse.datasets.load_futures_frame` (row = root, day, minute); each (root, day)
        must hold one contract. Gaps and bad prices are refused by MarketDays.from_frame."""
        missing = [c for c in (*BASE_COLUMNS, *feature_names) if c not in frame.columns]
        if missing:
            raise ValueError(f"frame is missing column(s) {missing}")
        mixed = (
            frame.group_by("root", "session_date").agg(pl.col("symbol").n_unique().alias("n")).filter(pl.col("n") > 1)
        )
        if mixed.height:
            raise ValueError(f"{mixed.height} (root, day) rows mix contracts; each day trades one contract")
        df = frame.sort("root", "session_date", "minute")
        bars = MarketDays.from_frame(df.drop("symbol").rename({"root": "symbol"}), feature_names)
        starts = np.concatenate([[0], np.cumsum(bars.length)[:-1]]).astype(np.int64)
        rows = np.repeat(np.arange(bars.n_days), bars.length)
        pos = np.arange(df.height) - np.repeat(starts, bars.length)

        def dense(name: str, dtype: type) -> np.ndarray:
            values = df.get_column(name).to_numpy().astype(dtype)
            out = np.zeros(bars.open.shape, dtype=dtype)
            out[rows, pos] = values
            last = values[starts + bars.length - 1]
            pad = np.arange(out.shape[1])[None, :] >= bars.length[:, None]
            out[pad] = np.broadcast_to(last[:, None], out.shape)[pad]
            return out

        minute = dense("minute", "datetime64[ns]").astype(np.int64)
        contracts = df.get_column("symbol").to_numpy()[starts].astype(str)
        return cls(bars, contracts, dense("high", np.float64), dense("low", np.float64), minute)


def synthetic_futures_days(
    n_days: int = 6,
    n_minutes: int = 120,
    first_bar: str = "2024-03-04T19:30",
    seed: int = 0,
    edge: float = 0.5,
    root: str = "ES",
    n_features: int = 5,
) -> FuturesDays:
    """Consecutive synthetic days of one root for tests and benchmarks: `n_minutes` bars a day starting at
    `first_bar` (UTC; 14:30 ET in March) on a 0.25 grid around 5,000, with a learnable order-flow signal."""
    base = _es_walk(n_days, n_minutes, n_features, seed, edge)
    rng = np.random.default_rng(seed + 1)
    wick = np.abs(rng.normal(0.0, 0.5, base.open.shape))
    open_, close = base.open, base.close
    high = np.round((np.maximum(open_, close) + wick) * 4) / 4
    low = np.round((np.minimum(open_, close) - wick[:, ::-1]) * 4) / 4
    start = np.datetime64(first_bar, "ns").astype(np.int64)
    day = np.arange(n_days, dtype=np.int64)[:, None] * 86_400_000_000_000
    minute = start + day + np.arange(n_minutes, dtype=np.int64)[None, :] * 60_000_000_000
    bars = MarketDays(
        np.full(n_days, root),
        np.datetime64("2024-03-04") + np.arange(n_days).astype("timedelta64[D]"),
        base.features,
        open_,
        close,
        base.spread,
        base.length,
        base.feature_names,
    )
    contracts = np.full(n_days, f"{root}M24")
    return FuturesDays(bars, contracts, high, np.maximum(low, 1.0), minute)


def _es_walk(n_days: int, n_minutes: int, n_features: int, seed: int, edge: float) -> MarketDays:
    """random_walk_days on ES's scale and tick: 5,000 +/- a quarter-point grid, a 0.25 spread."""
    from rl.core.data import random_walk_days

    days = random_walk_days(n_days, n_minutes, n_features, seed, start_price=5000.0, minute_vol=0.0004, edge=edge)
    open_ = np.round(days.open * 4) / 4
    close = np.round(days.close * 4) / 4
    return MarketDays(
        days.symbols,
        days.dates,
        days.features,
        open_,
        close,
        np.full(open_.shape, 0.25),
        days.length,
        days.feature_names,
    )
