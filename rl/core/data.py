"""Dense per-day market arrays for the environments: one (symbol, session) per row, padded to a common length.

The environments index these arrays directly (no frames in the hot path). `content_hash()` is the data version
recorded with every checkpoint and evaluation.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Self

import numpy as np
import polars as pl

_BASE_COLUMNS = ("symbol", "session_date", "minute", "open", "close", "mean_spread")
_ARRAY_FIELDS = ("symbols", "dates", "features", "open", "close", "spread", "length")


def save_arrays_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays atomically (temp file + os.replace) so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def arrays_hash(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over every named array (name, dtype, shape, bytes): a dataset's data version."""
    h = hashlib.sha256()
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


class ArrayRecord:
    """Named arrays stored as one .npz file and versioned by their content hash: what every family's episode data
    (MarketDays, FundingDays) shares. A subclass says which arrays it holds (`_arrays`) and how to rebuild itself
    from them (`_from_arrays`)."""

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @classmethod
    def _from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Self:
        raise NotImplementedError

    def save_npz(self, path: str | Path) -> None:
        """Write atomically (temp file + os.replace) so a reader never sees half a file."""
        save_arrays_npz(path, self._arrays())

    @classmethod
    def load_npz(cls, path: str | Path) -> Self:
        """Read a file written by `save_npz`."""
        with np.load(Path(path), allow_pickle=False) as z:
            return cls._from_arrays(z)

    def content_hash(self) -> str:
        """sha256 over every array (name, dtype, shape, bytes): the data version."""
        return arrays_hash(self._arrays())


def row_indices(indices: Iterable[int] | np.ndarray) -> np.ndarray:
    """int64 row numbers from ints or a boolean mask, in the given order."""
    idx = np.asarray(indices)
    return np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64)


class DayRows(ArrayRecord):
    """One row per (symbol, session) with its `dates` and a `subset` of rows: the date selection walk-forward slices
    make of every minute-bar family's data."""

    dates: np.ndarray

    def subset(self, indices: Iterable[int] | np.ndarray) -> Self:
        raise NotImplementedError

    def select_dates(self, dates: Iterable[date | np.datetime64 | str]) -> Self:
        """Every row (all symbols) whose session date is in `dates`, keeping the stored order."""
        wanted = np.asarray([np.datetime64(d, "D") for d in dates], dtype="datetime64[D]")
        mask = np.isin(self.dates, wanted)
        if not mask.any():
            raise ValueError(f"none of the {len(wanted)} requested dates is in this {type(self).__name__}")
        return self.subset(mask)


class OnBars(DayRows):
    """A family's day data built around the underlying's MarketDays (`bars`): its rows are the bars' rows."""

    bars: MarketDays

    @property
    def symbols(self) -> np.ndarray:
        return self.bars.symbols

    @property
    def dates(self) -> np.ndarray:
        return self.bars.dates

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.bars.feature_names

    @property
    def n_days(self) -> int:
        return self.bars.n_days

    def __len__(self) -> int:
        return self.n_days


@dataclass(frozen=True, eq=False)
class MarketDays(DayRows):
    """Market data of D days padded to T minutes; rows past `length[d]` repeat the last bar, never read."""

    symbols: np.ndarray  # [D] str: traded symbol of each day
    dates: np.ndarray  # [D] datetime64[D]: session date
    features: np.ndarray  # [D, T, F] float32: feature values of bar t (complete at the end of minute t)
    open: np.ndarray  # [D, T] float64: first price of bar t
    close: np.ndarray  # [D, T] float64: last price of bar t (the mark)
    spread: np.ndarray  # [D, T] float64: mean bid/ask spread in bar t, dollars (0 where no quotes exist)
    length: np.ndarray  # [D] int32: valid minutes of each day
    feature_names: tuple[str, ...]  # names of the F feature columns, in order

    def __post_init__(self) -> None:
        d = len(self.symbols)
        if self.features.ndim != 3 or self.features.dtype != np.float32:
            raise ValueError(f"features must be float32 [D,T,F], got {self.features.dtype} {self.features.shape}")
        _, t, f = self.features.shape
        if self.features.shape[0] != d or self.dates.shape != (d,) or self.length.shape != (d,):
            raise ValueError("symbols, dates, length and features must agree on the number of days")
        for name in ("open", "close", "spread"):
            arr = getattr(self, name)
            if arr.shape != (d, t) or arr.dtype != np.float64:
                raise ValueError(f"{name} must be float64 [D={d}, T={t}], got {arr.dtype} {arr.shape}")
        if self.dates.dtype != np.dtype("datetime64[D]"):
            raise ValueError(f"dates must be datetime64[D], got {self.dates.dtype}")
        if self.length.dtype != np.int32 or (d and (self.length.min() < 1 or self.length.max() > t)):
            raise ValueError("length must be int32 with 1 <= length <= T")
        if len(self.feature_names) != f:
            raise ValueError(f"{len(self.feature_names)} feature names for {f} feature columns")

    @property
    def n_days(self) -> int:
        """Number of (symbol, session) days D."""
        return int(self.features.shape[0])

    @property
    def max_minutes(self) -> int:
        """Padded day length T."""
        return int(self.features.shape[1])

    @property
    def n_features(self) -> int:
        """Number of feature columns F."""
        return int(self.features.shape[2])

    def __len__(self) -> int:
        return self.n_days

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, feature_names: Sequence[str]) -> MarketDays:
        """Build from a frame like `warehouse.datasets.load_training_frame` (row = symbol, day, minute).

        Non-finite feature values (warm-up) become 0; a missing spread is carried forward/backward within the
        day and is 0 for a day with no quotes at all (an index). Bad prices or duplicate minutes raise
        ValueError.
        """
        feature_names = tuple(feature_names)
        missing = [c for c in (*_BASE_COLUMNS, *feature_names) if c not in frame.columns]
        if missing:
            raise ValueError(f"frame is missing column(s) {missing}")
        if frame.height == 0:
            raise ValueError("frame has no rows")
        df = frame.select(*_BASE_COLUMNS, *feature_names).sort("symbol", "session_date", "minute")
        new_day = df.select(
            (
                (pl.col("symbol") != pl.col("symbol").shift(1))
                | (pl.col("session_date") != pl.col("session_date").shift(1))
            ).fill_null(True)
        ).to_series()
        starts = np.flatnonzero(new_day.to_numpy())
        n_rows = df.height
        lengths = np.diff(np.append(starts, n_rows))
        n_days, t_max = len(starts), int(lengths.max())
        day_of_row = np.repeat(np.arange(n_days), lengths)
        pos_of_row = np.arange(n_rows) - np.repeat(starts, lengths)

        minutes = df.get_column("minute").cast(pl.Int64).to_numpy()
        if np.any(np.diff(minutes)[pos_of_row[1:] != 0] <= 0):
            raise ValueError("duplicate minute within a (symbol, session_date)")
        symbols = df.get_column("symbol").to_numpy()[starts].astype(str)
        dates = df.get_column("session_date").to_numpy()[starts].astype("datetime64[D]")

        def dense(values: np.ndarray, dtype: type) -> np.ndarray:
            out = np.zeros((n_days, t_max), dtype=dtype)
            out[day_of_row, pos_of_row] = values
            return out

        prices = {}
        for name in ("open", "close"):
            values = df.get_column(name).cast(pl.Float64).fill_null(np.nan).to_numpy()
            bad = ~np.isfinite(values) | (values <= 0)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"non-finite or non-positive {name} price for {symbols[day_of_row[row]]} "
                    f"{dates[day_of_row[row]]} at row {int(pos_of_row[row])}"
                )
            prices[name] = dense(values, np.float64)
        spread_series = (
            df.select(
                pl.col("mean_spread")
                .cast(pl.Float64)
                .fill_nan(None)
                .forward_fill()
                .backward_fill()
                .over("symbol", "session_date")
                .fill_null(0.0)
            )
            .to_series()
            .to_numpy()
        )
        if np.any(spread_series < 0):
            raise ValueError("mean_spread must be >= 0")
        spread = dense(spread_series, np.float64)
        feats = np.zeros((n_days, t_max, len(feature_names)), dtype=np.float32)
        if feature_names:
            fv = df.select(pl.col(list(feature_names)).cast(pl.Float64)).to_numpy().astype(np.float32)
            fv[~np.isfinite(fv)] = 0.0
            feats[day_of_row, pos_of_row] = fv
        length = lengths.astype(np.int32)
        _pad_tail(prices["open"], prices["close"], spread, feats, length)
        return cls(symbols, dates, feats, prices["open"], prices["close"], spread, length, feature_names)

    def subset(self, indices: Iterable[int] | np.ndarray) -> MarketDays:
        """The days at `indices` (ints or a boolean mask), in that order."""
        idx = row_indices(indices)
        if idx.size == 0:
            raise ValueError("subset needs at least one day")
        return MarketDays(
            self.symbols[idx],
            self.dates[idx],
            self.features[idx],
            self.open[idx],
            self.close[idx],
            self.spread[idx],
            self.length[idx],
            self.feature_names,
        )

    @classmethod
    def _from_arrays(cls, z: Mapping[str, np.ndarray]) -> MarketDays:
        return cls(
            z["symbols"].astype(str),
            z["dates"].astype("datetime64[D]"),
            z["features"],
            z["open"],
            z["close"],
            z["spread"],
            z["length"],
            tuple(str(n) for n in z["feature_names"]),
        )

    def _arrays(self) -> dict[str, np.ndarray]:
        out = {name: getattr(self, name) for name in _ARRAY_FIELDS}
        out["symbols"] = np.asarray(self.symbols, dtype=str)
        out["feature_names"] = np.asarray(self.feature_names, dtype=str)
        return out


def _pad_tail(open_: np.ndarray, close: np.ndarray, spread: np.ndarray, feats: np.ndarray, length: np.ndarray) -> None:
    """Fill padding after each day's last bar with that bar's values (finite, never read by the envs)."""
    t_max = open_.shape[1]
    pad = np.arange(t_max)[None, :] >= length[:, None]
    if not pad.any():
        return
    last = (length - 1).astype(np.int64)
    rows = np.arange(len(length))
    open_[pad] = np.broadcast_to(close[rows, last][:, None], open_.shape)[pad]
    close[pad] = np.broadcast_to(close[rows, last][:, None], close.shape)[pad]
    spread[pad] = np.broadcast_to(spread[rows, last][:, None], spread.shape)[pad]
    feats[pad] = np.broadcast_to(feats[rows, last][:, None, :], feats.shape)[pad]


def random_walk_days(
    n_days: int = 4,
    n_minutes: int | Sequence[int] = 390,
    n_features: int = 4,
    seed: int = 0,
    start_price: float = 470.0,
    minute_vol: float = 0.0004,
    spread: float = 0.01,
    edge: float = 0.0,
    symbol: str = "SPY",
    trend: float = 0.0,
) -> MarketDays:
    """Synthetic days for tests and benchmarks (no warehouse): 1-cent-spread random walk around `start_price`.

    Features are causal (bar t uses bars <= t): `ret_1m` (1-minute log return x100), `imbalance_1m` (a random
    order-flow signal in [-1, 1]), `sma_5_20` (log(SMA5/SMA20) x100), then noise columns. With `edge` > 0 the
    next minute's return drifts by edge * minute_vol * imbalance_1m, a learnable signal. With `trend` > 0 each day
    drifts all session by +-trend * minute_vol a minute (its sign drawn per day): a market where breakouts run on.
    """
    if n_days < 1 or n_features < 3:
        raise ValueError("random_walk_days needs n_days >= 1 and n_features >= 3")
    rng = np.random.default_rng(seed)
    lengths = np.broadcast_to(np.asarray(n_minutes, dtype=np.int32), (n_days,)).copy()
    t_max = int(lengths.max())
    imbalance = rng.uniform(-1.0, 1.0, size=(n_days, t_max))
    drift = np.zeros((n_days, t_max))
    drift[:, 1:] = edge * minute_vol * imbalance[:, :-1]
    rets = rng.standard_normal((n_days, t_max)) * minute_vol + drift
    if trend:
        rets += trend * minute_vol * rng.choice([-1.0, 1.0], size=(n_days, 1))
    day_open = start_price * np.exp(np.cumsum(rng.standard_normal(n_days) * 0.01))
    close = np.round(day_open[:, None] * np.exp(np.cumsum(rets, axis=1)), 2)
    open_ = np.empty_like(close)
    open_[:, 0] = np.round(day_open, 2)
    open_[:, 1:] = close[:, :-1]
    log_close = np.log(close)
    ret_1m = np.zeros_like(close)
    ret_1m[:, 1:] = np.diff(log_close, axis=1) * 100.0
    csum = np.cumsum(np.pad(close, ((0, 0), (1, 0))), axis=1)
    idx = np.arange(t_max)

    def sma(window: int) -> np.ndarray:
        lo = np.maximum(idx + 1 - window, 0)
        return (csum[:, idx + 1] - csum[:, lo]) / (idx + 1 - lo)

    sma_5_20 = np.log(sma(5) / sma(20)) * 100.0
    feats = np.empty((n_days, t_max, n_features), dtype=np.float32)
    feats[..., 0] = ret_1m
    feats[..., 1] = imbalance
    feats[..., 2] = sma_5_20
    if n_features > 3:
        feats[..., 3:] = rng.standard_normal((n_days, t_max, n_features - 3))
    names = ("ret_1m", "imbalance_1m", "sma_5_20", *(f"noise_{i}" for i in range(n_features - 3)))
    spreads = np.full((n_days, t_max), float(spread))
    dates = np.datetime64("2024-01-02", "D") + np.arange(n_days)
    _pad_tail(open_, close, spreads, feats, lengths)
    return MarketDays(
        np.full(n_days, symbol), dates.astype("datetime64[D]"), feats, open_, close, spreads, lengths, names
    )
