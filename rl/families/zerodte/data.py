"""The 0DTE family's arrays: one row per (underlying, session) holding its minute bars and its same-day chain.

`OptionDays` wraps a `MarketDays` of the underlying (features, open, close) and adds the day's listed contracts,
sorted calls then puts by strike and padded to a common count K, with each minute's quote and greeks as dense
[D, T, K] arrays. A cell is NaN where the contract had no quote that minute (not quoted, or quarantined by the
chain's quote rules): the env cannot buy or sell into it, and `missing_quotes()` counts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from rl.core.data import MarketDays, OnBars, row_indices

QUOTE_FIELDS = ("bid", "ask", "iv", "delta", "gamma", "theta", "vega")
CHAIN_COLUMNS = ("underlying", "session_date", "minute", "right", "strike", "minutes_to_expiry", *QUOTE_FIELDS)
CHUNK_ROWS = 1_000_000  # chain rows joined to their day, minute and contract at once
_DAY_KEYS = ["symbol", "session_date"]


@dataclass(frozen=True, eq=False)
class OptionDays(OnBars):
    """D (underlying, session) rows padded to T minutes and K contracts."""

    bars: MarketDays  # the underlying: symbols, dates, features, open, close, spread, length
    strike: np.ndarray  # [D, K] float64 (NaN: padding, no contract)
    is_call: np.ndarray  # [D, K] bool
    to_close: np.ndarray  # [D, T] float32: calendar minutes from each bar's close to the expiry
    quotes: Mapping[str, np.ndarray]  # QUOTE_FIELDS -> [D, T, K] float32, NaN where not quoted
    volume: np.ndarray | None = None  # [D, T, K] float32 contracts traded in the minute; NaN where not reported

    def __post_init__(self) -> None:
        d, t = self.bars.open.shape
        k = self.strike.shape[1] if self.strike.ndim == 2 else -1
        if self.strike.shape != (d, k) or self.is_call.shape != (d, k) or k < 1:
            raise ValueError(f"strike and is_call must be [D={d}, K>=1], got {self.strike.shape}, {self.is_call.shape}")
        if self.to_close.shape != (d, t):
            raise ValueError(f"to_close must be [D={d}, T={t}], got {self.to_close.shape}")
        if set(self.quotes) != set(QUOTE_FIELDS):
            raise ValueError(f"quotes must hold exactly {QUOTE_FIELDS}, got {sorted(self.quotes)}")
        for name, values in self.quotes.items():
            if values.shape != (d, t, k):
                raise ValueError(f"quotes[{name}] must be [D={d}, T={t}, K={k}], got {values.shape}")
        if self.volume is None:  # the embedded chain, and an older dataset file, report no volume
            object.__setattr__(self, "volume", np.full((d, t, k), np.nan, dtype=np.float32))
        if self.volume.shape != (d, t, k) or np.any(self.volume < 0):
            raise ValueError(f"volume must be [D={d}, T={t}, K={k}] and >= 0 where reported")
        bid, ask = self.quotes["bid"], self.quotes["ask"]
        both = np.isfinite(bid) & np.isfinite(ask)
        if np.any(both & ((bid < 0) | (bid > ask))):
            raise ValueError("a quote has a negative bid or a bid above its ask")

    @property
    def n_contracts(self) -> int:
        return int(self.strike.shape[1])

    def quoted(self) -> np.ndarray:
        """[D, T, K] bool: the contract has a bid and an ask that minute."""
        return np.isfinite(self.quotes["bid"]) & np.isfinite(self.quotes["ask"])

    def missing_quotes(self) -> int:
        """Listed contract-minutes inside the session without a quote (kept as gaps, never filled in)."""
        valid = np.arange(self.bars.max_minutes)[None, :, None] < self.bars.length[:, None, None]
        listed = np.isfinite(self.strike)[:, None, :]
        return int(np.sum(valid & listed & ~self.quoted()))

    def subset(self, indices: Iterable[int] | np.ndarray) -> OptionDays:
        """The rows at `indices` (ints or a boolean mask), in that order."""
        idx = row_indices(indices)
        return OptionDays(
            self.bars.subset(idx),
            self.strike[idx],
            self.is_call[idx],
            self.to_close[idx],
            {k: v[idx] for k, v in self.quotes.items()},
            self.volume[idx],
        )

    def _arrays(self) -> dict[str, np.ndarray]:
        out = {f"bars_{k}": v for k, v in self.bars._arrays().items()}
        out |= {"strike": self.strike, "is_call": self.is_call, "to_close": self.to_close}
        out |= {f"q_{k}": self.quotes[k] for k in QUOTE_FIELDS}
        out["volume"] = self.volume
        return out

    @classmethod
    def _from_arrays(cls, z: Mapping[str, np.ndarray]) -> OptionDays:
        bars = MarketDays._from_arrays({k[5:]: z[k] for k in z if k.startswith("bars_")})
        quotes = {k: z[f"q_{k}"] for k in QUOTE_FIELDS}
        return cls(bars, z["strike"], z["is_call"].astype(bool), z["to_close"], quotes, z.get("volume"))

    @classmethod
    def from_frames(
        cls, bars: pl.DataFrame, chain: pl.DataFrame, feature_names: Sequence[str], chunk_rows: int = CHUNK_ROWS
    ) -> OptionDays:
        """From the underlyings' feature frame (`warehouse.datasets.load_training_frame`) and their chains
        (core.options_chain_1m rows, with their `volume` where the source reports it). Every chain row must fall on
        one of its underlying's bars; a bar without chain rows is kept, with every contract unquoted that minute.

        The chain rows are placed `chunk_rows` at a time, joining only their keys: a year of chains is tens of
        millions of rows, and joining them whole copied every quote column at each join."""
        missing = [c for c in CHAIN_COLUMNS if c not in chain.columns]
        if missing:
            raise ValueError(f"chain frame is missing column(s) {missing}")
        market = MarketDays.from_frame(bars, feature_names)
        day_index = (
            pl.DataFrame({"symbol": market.symbols.astype(str), "session_date": market.dates.astype("datetime64[D]")})
            .with_row_index("d")
            .with_columns(pl.col("session_date").cast(pl.Date))
        )
        minutes = (
            bars.select(*_DAY_KEYS, "minute")
            .sort(*_DAY_KEYS, "minute")
            .with_columns(pl.int_range(pl.len()).over(_DAY_KEYS).alias("t"))
        )
        contracts = chain.select(pl.col("underlying").alias("symbol"), "session_date", "right", "strike").unique()
        listed = (
            contracts.join(day_index, on=_DAY_KEYS, how="inner").select("d", "right", "strike")
            .sort("d", "right", "strike").with_columns(pl.int_range(pl.len()).over("d").alias("k"))
        )  # fmt: skip
        n_days, t_max = market.open.shape
        n_k = int(listed["k"].max()) + 1 if listed.height else 1
        strike = np.full((n_days, n_k), np.nan)
        is_call = np.zeros((n_days, n_k), dtype=bool)
        ld, lk = listed["d"].to_numpy(), listed["k"].to_numpy()
        strike[ld, lk] = listed["strike"].to_numpy()
        is_call[ld, lk] = listed["right"].to_numpy() == "C"
        quotes = {name: np.full((n_days, t_max, n_k), np.nan, dtype=np.float32) for name in QUOTE_FIELDS}
        volume = np.full((n_days, t_max, n_k), np.nan, dtype=np.float32)
        steps = np.arange(t_max)[None, :]  # minutes to the expiry counted back from the day's last bar, one a bar
        to_close = np.maximum(market.length[:, None] - 1 - steps, 0).astype(np.float32)
        step = max(1, chunk_rows)
        for offset in range(0, chain.height, step):
            rows = chain.slice(offset, step)
            d, t, k = _cells(rows, day_index, minutes, listed)
            for name in QUOTE_FIELDS:
                quotes[name][d, t, k] = rows[name].to_numpy()
            if "volume" in rows.columns:  # a vendor's minute volume; NULL (not reported) stays NaN
                volume[d, t, k] = rows["volume"].cast(pl.Float32).fill_null(np.nan).to_numpy()
            to_close[d, t] = rows["minutes_to_expiry"].to_numpy()  # the chain's own, where it quotes
        return cls(market, strike, is_call, to_close, quotes, volume)


def _cells(
    rows: pl.DataFrame, day_index: pl.DataFrame, minutes: pl.DataFrame, listed: pl.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each chain row's day `d`, minute `t` and contract `k`, in row order (only the keys are joined, so the quote
    columns are never copied); ValueError for a row on no bar of its underlying."""
    keys = rows.select(
        pl.col("underlying").alias("symbol"), "session_date", pl.col("minute").cast(minutes["minute"].dtype),
        "right", "strike",
    )  # fmt: skip
    keys = keys.join(day_index, on=_DAY_KEYS, how="left", maintain_order="left")
    keys = keys.join(minutes, on=[*_DAY_KEYS, "minute"], how="left", maintain_order="left")
    stray = keys.filter(pl.col("d").is_null() | pl.col("t").is_null())
    if stray.height:
        first = stray.row(0, named=True)
        raise ValueError(
            f"chain rows fall on no bar of their underlying (first: {first['symbol']} {first['session_date']} "
            f"{first['minute']}): load the chain and the bars of the same sessions"
        )
    # Every right side is unique on its keys (MarketDays.from_frame refuses a repeated minute), so the rows stay 1:1.
    keys = keys.join(listed, on=["d", "right", "strike"], how="left", maintain_order="left")
    return keys["d"].to_numpy(), keys["t"].to_numpy(), keys["k"].to_numpy()


def synthetic_option_days(
    n_days: int = 4,
    n_minutes: int = 120,
    seed: int = 0,
    edge: float = 1.0,
    symbol: str = "SPY",
    n_features: int = 5,
    strikes_each_side: int = 8,
    trend: float = 0.0,
) -> OptionDays:
    """Short synthetic sessions for tests and benchmarks: a random walk with a learnable order-flow signal and
    its embedded same-day chain (`market.option_chain.chain_day`), expiring one minute after the last bar; `trend`
    makes each day drift one way all session (`random_walk_days`), so breakouts pay."""
    from market.option_chain import ChainConfig, chain_day
    from rl.core.data import random_walk_days

    base = random_walk_days(
        n_days, n_minutes, n_features, seed, minute_vol=0.0008, edge=edge, symbol=symbol, trend=trend
    )
    start = np.datetime64("2024-03-04T14:30", "ns")
    minute = start + np.arange(n_minutes).astype("timedelta64[m]")
    close_ns = int((minute[-1] + np.timedelta64(1, "m")).astype(np.int64))
    cfg = ChainConfig(strikes_each_side=strikes_each_side)
    names = (*base.feature_names, "range_pos_30")
    features = np.concatenate([base.features, _range_pos(base.close, 30)[..., None]], axis=2)
    bars, chains = [], []
    for i in range(n_days):
        day = base.dates[i].astype(date)
        chains.append(chain_day(symbol, day, minute, base.close[i], close_ns, cfg))
        frame = {"symbol": symbol, "session_date": day, "minute": minute, "open": base.open[i],
                 "close": base.close[i], "mean_spread": base.spread[i]}  # fmt: skip
        frame |= {name: features[i, :, j] for j, name in enumerate(names)}
        bars.append(pl.DataFrame(frame, schema_overrides={"session_date": pl.Date}))
    return OptionDays.from_frames(pl.concat(bars), pl.concat(chains), names)


def _range_pos(close: np.ndarray, window: int) -> np.ndarray:
    """[D, T] float32: the close within its trailing `window`-minute range of closes, -1 at the low, +1 at the
    high (0 for a flat range), as the warehouse's `range_pos_30` (from closes here: the synthetic bars have no
    highs and lows)."""
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.pad(close, ((0, 0), (window - 1, 0)), mode="edge")
    win = sliding_window_view(padded, window, axis=1)
    hi, lo = win.max(axis=2), win.min(axis=2)
    span = hi - lo
    return np.where(span > 0, 2 * (close - lo) / np.where(span > 0, span, 1.0) - 1, 0.0).astype(np.float32)
