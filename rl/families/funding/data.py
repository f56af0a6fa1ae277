"""Hourly cross-exchange perpetual-futures arrays for the funding env: `FundingDays` and a test generator.

Snapshot t is the hourly instant `timeline[t]`. Every [T, S, X] array holds what is known AT that instant:
- `mark`, `bid`, `ask`, `volume_24h`: the latest mark-price row at or before timeline[t] (forward-filled; NaN
  before a pair's first row, which makes it unavailable).
- `rate_now`, `interval_h`: the latest funding rate published at or before timeline[t] and its interval.
- `funding_paid`: the sum of rates whose funding time falls in (timeline[t] - 1h, timeline[t]], i.e. paid during
  the hour that ends at snapshot t; 0 elsewhere. Each leg is paid on its own exchange's schedule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from rl.core.data import ArrayRecord

HOUR_NS = 3_600_000_000_000
_CUBES = ("mark", "bid", "ask", "funding_paid", "rate_now", "interval_h", "volume_24h")


@dataclass(frozen=True)
class FundingDays(ArrayRecord):
    """Hourly snapshots of S symbols on X exchanges over T hours (see the module docstring for timing)."""

    timeline: np.ndarray  # datetime64[ns] [T], hourly
    symbols: np.ndarray  # str [S]
    exchanges: np.ndarray  # str [X]
    mark: np.ndarray  # float64 [T,S,X] mark price
    bid: np.ndarray  # float64 [T,S,X]
    ask: np.ndarray  # float64 [T,S,X]
    funding_paid: np.ndarray  # float64 [T,S,X] rate settled in the hour ending at t (fraction), else 0
    rate_now: np.ndarray  # float64 [T,S,X] latest published rate at t (fraction per interval)
    interval_h: np.ndarray  # int32 [T,S,X] interval of that rate (hours)
    volume_24h: np.ndarray  # float64 [T,S,X] USD

    def __post_init__(self) -> None:
        t = np.asarray(self.timeline)
        if t.ndim != 1 or t.size < 2:
            raise ValueError(f"timeline must be 1-d with at least 2 hours, got shape {t.shape}")
        if not np.issubdtype(t.dtype, np.datetime64):
            raise ValueError(f"timeline must be datetime64, got {t.dtype}")
        if np.any(np.diff(t.astype("datetime64[ns]").astype(np.int64)) != HOUR_NS):
            raise ValueError("timeline must be strictly hourly")
        shape = (t.size, len(self.symbols), len(self.exchanges))
        for name in _CUBES:
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ValueError(f"{name} has shape {arr.shape}, expected {shape} (T, S, X)")
        if len(self.exchanges) < 2:
            raise ValueError("need at least two exchanges to form a pair")

    @property
    def n_hours(self) -> int:
        """T: number of hourly snapshots."""
        return int(self.timeline.shape[0])

    @property
    def dates(self) -> np.ndarray:
        """datetime64[D] [D]: the UTC days the timeline covers, in order (walk-forward slices select by these)."""
        return np.unique(np.asarray(self.timeline).astype("datetime64[D]"))

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The hourly arrays the env derives its observation from (checkpoint metadata)."""
        return _CUBES

    def select_dates(self, dates: Iterable[date | np.datetime64 | str]) -> FundingDays:
        """The hours of consecutive UTC `dates` (a walk-forward window); a gap inside them is refused."""
        wanted = np.unique(np.asarray([np.datetime64(d, "D") for d in dates], dtype="datetime64[D]"))
        if wanted.size == 0:
            raise ValueError("select_dates needs at least one date")
        hour_day = np.asarray(self.timeline).astype("datetime64[D]")
        mask = np.isin(hour_day, wanted)
        missing = sorted(set(wanted.tolist()) - set(hour_day[mask].tolist()))
        if missing:
            raise ValueError(f"{len(missing)} requested day(s) are not in this FundingDays, e.g. {missing[0]}")
        idx = np.flatnonzero(mask)
        if idx[-1] - idx[0] + 1 != idx.size:
            raise ValueError("select_dates needs consecutive days: the hours would not form one hourly timeline")
        window = slice(int(idx[0]), int(idx[-1]) + 1)
        return FundingDays(
            timeline=self.timeline[window],
            symbols=self.symbols,
            exchanges=self.exchanges,
            **{name: getattr(self, name)[window] for name in _CUBES},
        )

    @property
    def available(self) -> np.ndarray:
        """bool [T,S,X]: a quote and a published rate exist at t (a leg can be traded)."""
        ok = np.isfinite(self.mark) & np.isfinite(self.bid) & np.isfinite(self.ask) & np.isfinite(self.rate_now)
        return ok & (self.mark > 0) & (self.interval_h > 0)

    @property
    def apr_now(self) -> np.ndarray:
        """float64 [T,S,X] annualised rate from rate_now with each leg's own interval (NaN where unavailable)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            apr = self.rate_now * (24.0 / self.interval_h) * 365.0
        return np.where(self.available, apr, np.nan)

    @classmethod
    def from_frames(
        cls,
        rates: pl.DataFrame,
        marks: pl.DataFrame,
        start: np.datetime64 | None = None,
        end: np.datetime64 | None = None,
    ) -> FundingDays:
        """Build from the funding_rates / mark_prices frame schemas (market/funding.py) on an hourly grid.

        The grid runs from the first whole hour at or after `start` (default: the first mark) to the last whole
        hour at or before `end` (default: the last mark). Rows need not be sorted.
        """
        for frame, cols, what in (
            (rates, ("exchange", "symbol", "funding_time", "rate", "interval_hours"), "rates"),
            (marks, ("exchange", "symbol", "ts", "mark", "bid", "ask", "volume_24h"), "marks"),
        ):
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise ValueError(f"{what} frame is missing column(s) {missing}")
        if marks.height == 0:
            raise ValueError("marks frame is empty")
        exchanges = np.array(sorted(set(marks["exchange"].to_list()) | set(rates["exchange"].to_list())))
        symbols = np.array(sorted(set(marks["symbol"].to_list()) | set(rates["symbol"].to_list())))
        m_ts = marks["ts"].cast(pl.Datetime("ns")).to_numpy().astype(np.int64)
        lo = int(np.asarray(start, dtype="datetime64[ns]").astype(np.int64)) if start is not None else int(m_ts.min())
        hi = int(np.asarray(end, dtype="datetime64[ns]").astype(np.int64)) if end is not None else int(m_ts.max())
        t0 = -(-lo // HOUR_NS) * HOUR_NS
        t1 = (hi // HOUR_NS) * HOUR_NS
        n_t = (t1 - t0) // HOUR_NS + 1
        if n_t < 2:
            raise ValueError("the frames span less than two whole hours")
        timeline = (t0 + HOUR_NS * np.arange(n_t)).astype("datetime64[ns]")
        shape = (n_t, len(symbols), len(exchanges))

        def cells(frame: pl.DataFrame, ts_col: str) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
            """Flat cell index and hour index (first snapshot at or after each row), sorted by time."""
            frame = frame.sort(ts_col)
            ts = frame[ts_col].cast(pl.Datetime("ns")).to_numpy().astype(np.int64)
            hour = -(-(ts - t0) // HOUR_NS)
            s = np.searchsorted(symbols, frame["symbol"].to_numpy().astype(str))
            x = np.searchsorted(exchanges, frame["exchange"].to_numpy().astype(str))
            return hour, s * len(exchanges) + x, frame

        hour, cell, mk = cells(marks, "ts")
        keep = hour < n_t
        cube = {name: np.full(shape, np.nan) for name in ("mark", "bid", "ask", "volume_24h")}
        for name in cube:
            _place_ffill(cube[name], hour[keep], cell[keep], mk[name].to_numpy().astype(np.float64)[keep])

        hour, cell, rt = cells(rates, "funding_time")
        rate = rt["rate"].to_numpy().astype(np.float64)
        interval = rt["interval_hours"].to_numpy().astype(np.float64)
        keep = hour < n_t
        rate_now = np.full(shape, np.nan)
        interval_now = np.full(shape, np.nan)
        _place_ffill(rate_now, hour[keep], cell[keep], rate[keep])
        _place_ffill(interval_now, hour[keep], cell[keep], interval[keep])
        paid = np.zeros(shape)
        inside = keep & (hour >= 0)
        np.add.at(paid.reshape(n_t, -1), (hour[inside], cell[inside]), rate[inside])
        return cls(
            timeline=timeline,
            symbols=symbols,
            exchanges=exchanges,
            mark=cube["mark"],
            bid=cube["bid"],
            ask=cube["ask"],
            funding_paid=paid,
            rate_now=rate_now,
            interval_h=np.nan_to_num(interval_now, nan=0.0).astype(np.int32),
            volume_24h=cube["volume_24h"],
        )

    @classmethod
    def _from_arrays(cls, z: Mapping[str, np.ndarray]) -> FundingDays:
        return cls(
            timeline=z["timeline"].astype("datetime64[ns]"),
            symbols=z["symbols"].astype(str),
            exchanges=z["exchanges"].astype(str),
            **{name: z[name] for name in _CUBES},
        )

    def _arrays(self) -> dict[str, np.ndarray]:
        out = {name: getattr(self, name) for name in _CUBES}
        out["timeline"] = np.asarray(self.timeline, dtype="datetime64[ns]")
        out["symbols"] = np.asarray(self.symbols, dtype=str)
        out["exchanges"] = np.asarray(self.exchanges, dtype=str)
        return out


def _place_ffill(cube: np.ndarray, hour: np.ndarray, cell: np.ndarray, values: np.ndarray) -> None:
    """Write time-sorted `values` at (max(hour, 0), cell) (later rows win) and forward-fill along time."""
    n_t = cube.shape[0]
    flat = cube.reshape(n_t, -1)
    flat[np.maximum(hour, 0), cell] = values
    has = np.isfinite(flat)
    idx = np.where(has, np.arange(n_t)[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    filled = np.take_along_axis(flat, idx, axis=0)
    flat[:] = np.where(np.maximum.accumulate(has, axis=0), filled, np.nan)


def random_funding_days(
    n_hours: int = 240,
    n_symbols: int = 6,
    exchanges: Sequence[str] = ("binance", "bybit", "okx"),
    seed: int = 0,
    planted_spread_apr: float = 0.0,
    anomalous: int = 0,
    anomalous_apr: float = 20.0,
    anomalous_half_spread: float = 0.003,
    hourly_vol: float = 0.004,
) -> FundingDays:
    """Synthetic hourly data for tests and benchmarks (no warehouse).

    Rates are AR(1) around a small positive mean, on per-(symbol, exchange) intervals of 8h, 4h or 1h (symbol 0
    on exchange 0 is hourly, on exchange 1 8-hourly). `planted_spread_apr` > 0 plants a persistent spread on
    symbol 0: exchange 1 pays that APR more than exchange 0, with no offsetting price move (a pair entered on
    observed rates earns it after fees). The last `anomalous` symbols ("ANOM{i}USDT") quote `anomalous_apr` on
    exchange 0 but have a wide half-spread and a mark on exchange 0 that rises by 1.5x the funding every hour,
    so the quoted APR is more than erased (seed 004's COAIUSDT).
    """
    if n_hours < 2 or n_symbols < 1 or len(exchanges) < 2 or not 0 <= anomalous <= n_symbols:
        raise ValueError("random_funding_days needs n_hours >= 2, n_symbols >= 1, >= 2 exchanges, anomalous <= S")
    rng = np.random.default_rng(seed)
    x = len(exchanges)
    shape = (n_hours, n_symbols, x)
    names = [f"SYM{i}USDT" for i in range(n_symbols - anomalous)] + [f"ANOM{i}USDT" for i in range(anomalous)]
    interval = rng.choice(np.array([8, 4, 1], dtype=np.int32), size=(n_symbols, x), p=[0.6, 0.25, 0.15])
    interval[0, 0], interval[0, 1] = 1, 8
    base = rng.uniform(5.0, 500.0, size=n_symbols)
    common = np.cumsum(rng.standard_normal((n_hours, n_symbols)) * hourly_vol, axis=0)
    basis = rng.standard_normal(shape) * 2e-4
    mark = base[None, :, None] * np.exp(common[:, :, None] + basis)

    apr = np.empty(shape)
    apr[0] = rng.normal(0.1, 0.1, size=(n_symbols, x))
    shocks = rng.normal(0.0, 0.05, size=shape)
    for t in range(1, n_hours):
        apr[t] = 0.1 + 0.95 * (apr[t - 1] - 0.1) + shocks[t]
    if planted_spread_apr > 0:
        apr[:, 0, 0] = 0.05
        apr[:, 0, 1] = 0.05 + planted_spread_apr
    half = np.full(shape, 2e-4)
    anom = np.arange(n_symbols - anomalous, n_symbols)
    if anomalous:
        apr[:, anom, 0] = anomalous_apr
        apr[:, anom, 1:] = 0.0
        interval[anom, 0] = 1
        half[:, anom, :] = anomalous_half_spread
        drift = 1.5 * anomalous_apr / 8760.0
        mark[:, anom, 0] *= np.exp(drift * np.arange(n_hours))[:, None]
    rate_at = apr * interval[None] / (24.0 * 365.0)
    hours = np.arange(n_hours)[:, None, None]
    settle = (hours % interval[None]) == 0
    # rate_now: the rate settled at the latest funding time <= t (each leg on its own schedule).
    last_settle = hours - hours % interval[None]
    rate_now = np.take_along_axis(rate_at, np.broadcast_to(last_settle, shape), axis=0)
    paid = np.where(settle, rate_at, 0.0)
    volume = rng.uniform(5e6, 5e8, size=(n_symbols, x))
    volume[anom] = 2e5
    timeline = np.datetime64("2025-10-22T00:00", "ns") + np.arange(n_hours) * np.timedelta64(1, "h")
    return FundingDays(
        timeline=timeline.astype("datetime64[ns]"),
        symbols=np.array(names),
        exchanges=np.array(list(exchanges)),
        mark=mark,
        bid=mark * (1.0 - half),
        ask=mark * (1.0 + half),
        funding_paid=paid,
        rate_now=rate_now,
        interval_h=np.broadcast_to(interval[None], shape).astype(np.int32).copy(),
        volume_24h=np.broadcast_to(volume[None], shape).copy(),
    )
