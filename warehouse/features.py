"""Per-minute features from 1-minute bars, in polars: microstructure, momentum and time of day.

Every window runs over one (symbol, session_date) only and looks backwards: the value at minute t uses bars at
or before t (tests recompute on bars cut at t and demand identical values). Units keep features O(1): returns,
ranges and volatilities in percent (bps/100), spreads in bps, z-scores and bounded ratios as they are.
Before WARMUP_MINUTES a feature may be null (its window is not full yet); from then on every one is finite.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from warehouse.db import query_polars
from warehouse.partitions import replace_partition
from warehouse.sessions import symbol_sessions

MICROSTRUCTURE: dict[str, str] = {
    "spread_bps": "mean quoted spread / mid in bps (0 for a symbol without quotes)",
    "spread_z_30": "z-score of spread_bps vs its trailing 30 minutes (0 when flat)",
    "imbalance_1m": "order-flow imbalance (buy - sell) / volume this minute, in [-1, 1] (0: no volume)",
    "imbalance_3m": "(buy - sell) / volume summed over the last 3 minutes, in [-1, 1]",
    "imbalance_5m": "(buy - sell) / volume summed over the last 5 minutes, in [-1, 1]",
    "imbalance_day": "(buy - sell) / volume summed since the open, in [-1, 1]",
    "volume_z_30": "z-score of log(1 + volume) vs the trailing 30 minutes (0 when flat)",
    "trade_count_z_30": "z-score of log(1 + trade_count) vs the trailing 30 minutes (0 when flat)",
    "vwap_dev": "(close - vwap) / vwap in percent",
    "range_pct": "(high - low) / close in percent",
    "close_location": "close within the bar's range: -1 at the low, +1 at the high (0 for a flat bar)",
    "realized_vol_5": "root mean square of 1-minute log returns over 5 minutes, percent",
    "realized_vol_15": "root mean square of 1-minute log returns over 15 minutes, percent",
    "vol_ratio_5_30": "log of realized vol over 5 vs 30 minutes (volatility regime change)",
    "filled_frac_5": "share of the last 5 minutes without trades (forward-filled bars), in [0, 1]",
}
MOMENTUM: dict[str, str] = {
    "ret_1m": "log return of close over 1 minute, percent",
    "ret_3m": "log return of close over 3 minutes, percent",
    "ret_5m": "log return of close over 5 minutes, percent",
    "ret_10m": "log return of close over 10 minutes, percent",
    "ret_15m": "log return of close over 15 minutes, percent",
    "ret_30m": "log return of close over 30 minutes, percent",
    "ret_open": "log return of close since the session's first open, percent",
    "sma_5_20": "log(SMA5 / SMA20) of close, percent (> 0: short-term trend above long-term)",
    "rsi_14": "RSI-like (gains - losses) / (gains + losses) of close changes over 14 minutes, in [-1, 1]",
    "zscore_20": "z-score of log close vs its trailing 20 minutes (0 when flat)",
    "efficiency_10": "net change / summed absolute changes over 10 minutes, in [-1, 1] (trend efficiency)",
    "range_pos_30": "close within the trailing 30-minute high-low range: -1 at the low, +1 at the high",
}
TIME_OF_DAY: dict[str, str] = {
    "tod_frac": "fraction of the symbol's own session elapsed at the bar's start, in [0, 1)",
    "tod_sin": "sin(2 pi tod_frac)",
    "tod_cos": "cos(2 pi tod_frac)",
    "to_close": "minutes from the bar's start to the close / 390 (early closes end lower; a CME day starts near 3.5)",
}
FEATURE_GROUPS: dict[str, dict[str, str]] = {
    "microstructure": MICROSTRUCTURE,
    "momentum": MOMENTUM,
    "time_of_day": TIME_OF_DAY,
}
FEATURES: dict[str, str] = {**MICROSTRUCTURE, **MOMENTUM, **TIME_OF_DAY}
# What a bar built from a vendor's minute bars cannot know (the buy/sell split, often VWAP and the trade count):
# these features stay NULL on such bars, never a made-up zero.
UNKNOWN_FROM_VENDOR_BARS = (
    "imbalance_1m",
    "imbalance_3m",
    "imbalance_5m",
    "imbalance_day",
    "vwap_dev",
    "trade_count_z_30",
)
WARMUP_MINUTES = 30  # longest lookback (ret_30m, 30-minute windows): every feature is finite from this index on
FULL_SESSION_MINUTES = 390
KEYS = ["symbol", "session_date"]
BAR_COLUMNS = (
    "symbol",
    "session_date",
    "minute",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trade_count",
    "buy_volume",
    "sell_volume",
    "mean_spread",
    "mean_mid",
    "filled",
)
FEATURES_MD = Path(__file__).parent / "FEATURES.md"
_FLAT = 1e-9  # a standard deviation below this is a flat window: z-score 0
_VOL_FLOOR = 1e-4  # percent; keeps the volatility log-ratio finite on flat windows


def _g(e: pl.Expr) -> pl.Expr:
    """Evaluate `e` per symbol-day (`_gid`, an integer id: ~4x faster than over two key columns)."""
    return e.over("_gid")


def _roll(kind: str, name: str, w: int) -> pl.Expr:
    """Trailing full-window rolling statistic of a column, per symbol-day (null until the window is full)."""
    col = pl.col(name)
    expr = {
        "sum": col.rolling_sum(w, min_samples=w),
        "mean": col.rolling_mean(w, min_samples=w),
        "std": col.rolling_std(w, min_samples=w),
        "max": col.rolling_max(w, min_samples=w),
        "min": col.rolling_min(w, min_samples=w),
    }[kind]
    return _g(expr).alias(f"_{kind}_{name}_{w}")


def _ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """num / den for ratios whose numerator is 0 whenever the denominator is (0/0 -> 0; null stays null)."""
    return (num / den).fill_nan(0.0)


def _zscore(name: str, w: int) -> pl.Expr:
    """z-score from the `_mean_` / `_std_` columns of `name`; 0 for a flat window."""
    x, mean, std = pl.col(name), pl.col(f"_mean_{name}_{w}"), pl.col(f"_std_{name}_{w}")
    # `mean * 0.0` is 0, or null while the window is not full.
    return pl.when(std > _FLAT).then((x - mean) / std).otherwise(mean * 0.0)


def _is_sorted(df: pl.DataFrame) -> bool:
    """True when rows are already ordered by symbol, session_date, minute (bars from SQL usually are)."""
    c = pl.col
    prev = [c(k).shift(1) for k in (*KEYS, "minute")]
    later = (c("symbol") > prev[0]) | (
        (c("symbol") == prev[0])
        & ((c("session_date") > prev[1]) | ((c("session_date") == prev[1]) & (c("minute") > prev[2])))
    )
    return bool(df.select(later.fill_null(True).all()).item())


def _session_frame(pairs: list[tuple[str, date]]) -> pl.DataFrame:
    """Open and length of each symbol's session from its calendar (never from the bars: those may be cut short)."""
    sessions = symbol_sessions(pairs)
    return sessions.select(
        "symbol",
        "session_date",
        pl.col("open").alias("_open"),
        pl.col("minutes").cast(pl.Float64).alias("_n"),
        # polars may hold a join result that is constant as a scalar column and then divide by it as a
        # multiplication by the reciprocal; multiplying by a reciprocal made here gives the same bits
        # whatever the frame holds.
        pl.Series("_inv_n", [1.0 / n for n in sessions["minutes"].to_list()], dtype=pl.Float64),
    )


def compute_features(bars: pl.DataFrame) -> pl.DataFrame:
    """Features per (symbol, session_date, minute) from bars with core.bars_1m columns (any days and symbols).

    Returns symbol, session_date, minute and every FEATURES column in order, sorted by symbol, date, minute.
    """
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars frame is missing columns {missing}")
    if not bars.height:
        return pl.DataFrame(
            schema={
                "symbol": pl.Utf8,
                "session_date": pl.Date,
                "minute": pl.Datetime("us"),
                **dict.fromkeys(FEATURES, pl.Float64),
            }
        )
    vendor = _vendor_rows(bars)
    df = _positions(_prepared(bars))
    df = _windowed(_returns(df))
    out = _features(df).select("symbol", "session_date", "minute", *FEATURES)
    if vendor is None:
        return out
    out = out.join(vendor, on=[*KEYS, "minute"], how="left", maintain_order="left")
    unknown = pl.col("_vendor").fill_null(False)
    return out.with_columns(pl.when(~unknown).then(pl.col(n)).alias(n) for n in UNKNOWN_FROM_VENDOR_BARS).drop(
        "_vendor"
    )


def _vendor_rows(bars: pl.DataFrame) -> pl.DataFrame | None:
    """Keys of the bars built from vendor minute bars (None when there are none)."""
    if "built_from" not in bars.columns or not (bars["built_from"] == "vendor").any():
        return None
    return bars.filter(pl.col("built_from") == "vendor").select(
        *KEYS, pl.col("minute").cast(pl.Datetime("us")), pl.lit(True).alias("_vendor")
    )


c = pl.col


def _lag(name: str, k: int) -> pl.Expr:
    """`name` k rows back within the same symbol-day (null where that reaches into the previous one)."""
    return pl.when(c("_pos") >= k).then(c(name).shift(k))


def _window_sum(name: str, w: int) -> pl.Expr:
    """Sum of `name` over the last `w` rows of the symbol-day, from its cumulative sum (null before w rows)."""
    cs = c(f"_cs{name}")
    return (cs - pl.when(c("_pos") >= w).then(cs.shift(w)).when(c("_pos") == w - 1).then(0.0)).alias(f"_sum_{name}_{w}")


def _prepared(bars: pl.DataFrame) -> pl.DataFrame:
    """The bar columns in float form, sorted by symbol, date and minute, with each session's open and length."""
    df = bars.select(BAR_COLUMNS).with_columns(
        pl.col("minute").cast(pl.Datetime("us")),
        pl.col("trade_count").cast(pl.Float64),
        pl.col("filled").cast(pl.Float64),
    )
    if not _is_sorted(df):
        df = df.sort(KEYS + ["minute"])
    sessions = _session_frame(df.select("symbol", "session_date").unique().rows())
    df = df.join(sessions, on=KEYS, how="left", maintain_order="left")

    return df


def _positions(df: pl.DataFrame) -> pl.DataFrame:
    """Each row's position inside its symbol-day (`_pos`) and the symbol-day's number (`_gid`)."""
    # Position inside the symbol-day (rows are sorted): a shift by k is exact across the whole column, so lags
    # are taken globally and masked where they would reach into the previous symbol-day.
    new_group = (c("symbol") != c("symbol").shift(1)) | (c("session_date") != c("session_date").shift(1))
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    new_group = new_group.fill_null(True)
    df = df.with_columns(
        (row - pl.when(new_group).then(row).forward_fill()).alias("_pos"),
        new_group.cast(pl.Int64).cum_sum().alias("_gid"),
    )

    return df


def _returns(df: pl.DataFrame) -> pl.DataFrame:
    """Log prices, spreads, lagged closes and the returns over 1 to 30 minutes and since the open."""
    df = df.with_columns(
        (c("close").log() * 100.0).alias("_lc"),
        (c("mean_spread") / c("mean_mid").fill_null(c("close")) * 1e4).alias("spread_bps"),
        (c("buy_volume") - c("sell_volume")).alias("_signed"),
        (c("volume") + 1.0).log().alias("_lv"),
        (c("trade_count") + 1.0).log().alias("_ltc"),
        ((c("minute") - c("_open")).dt.total_minutes().cast(pl.Float64)).alias("_idx"),
        pl.when(c("_pos") == 0).then(c("open").log() * 100.0).forward_fill().alias("_lopen"),
        _lag("close", 1).alias("_close_1"),
        _lag("close", 10).alias("_close_10"),
        _lag("close", 14).alias("_close_14"),
    )
    lags = (1, 3, 5, 10, 15, 30)
    df = df.with_columns(
        *[(c("_lc") - _lag("_lc", k)).alias(f"ret_{k}m") for k in lags],
        (c("_lc") - c("_lopen")).alias("ret_open"),
        # The first minute has no previous close; 0 keeps the windowed inputs null-free (polars' rolling
        # kernels are much faster without nulls). Those windows only reach full, finite values before warm-up.
        (c("close") - c("_close_1")).fill_null(0.0).alias("_d1"),
    )
    df = df.with_columns(
        (c("ret_1m").fill_null(0.0) ** 2).alias("_r1sq"),
        c("_d1").abs().alias("_absd"),
    )
    return df


def _windowed(df: pl.DataFrame) -> pl.DataFrame:
    """Per-symbol-day cumulative sums, rolling moments and extremes, and the windowed sums built on them."""
    # Windowed sums come from one per-symbol-day cumulative sum per column: window(t) = cs(t) - cs(t - w),
    # with the lag taken globally and masked by _pos (exact data movement). Each value depends only on its own
    # symbol-day's rows up to t, so features are identical whatever else is in the frame or after t.
    cum_cols = ("_signed", "volume", "_r1sq", "close", "_absd", "filled")
    df = df.with_columns(
        *[_g(c(name).cum_sum()).alias(f"_cs{name}") for name in cum_cols],
        # z-score inputs use polars' rolling kernels (a centred variance is better conditioned than cumsums).
        _roll("mean", "spread_bps", 30),
        _roll("std", "spread_bps", 30),
        _roll("mean", "_lv", 30),
        _roll("std", "_lv", 30),
        _roll("mean", "_ltc", 30),
        _roll("std", "_ltc", 30),
        _roll("mean", "ret_open", 20),
        _roll("std", "ret_open", 20),
        # max/min carry no rounding, so a global rolling window masked to full in-day windows is exact.
        pl.when(c("_pos") >= 29).then(c("high").rolling_max(30)).alias("_max_high_30"),
        pl.when(c("_pos") >= 29).then(c("low").rolling_min(30)).alias("_min_low_30"),
    )

    df = df.with_columns(
        _window_sum("_signed", 3),
        _window_sum("volume", 3),
        _window_sum("_signed", 5),
        _window_sum("volume", 5),
        (_window_sum("_r1sq", 5) / 5.0).alias("_mean__r1sq_5"),
        (_window_sum("_r1sq", 15) / 15.0).alias("_mean__r1sq_15"),
        (_window_sum("_r1sq", 30) / 30.0).alias("_mean__r1sq_30"),
        (_window_sum("filled", 5) / 5.0).alias("_mean_filled_5"),
        (_window_sum("close", 5) / 5.0).alias("_mean_close_5"),
        (_window_sum("close", 20) / 20.0).alias("_mean_close_20"),
        _window_sum("_absd", 14),
        _window_sum("_absd", 10),
    )
    return df


def _features(df: pl.DataFrame) -> pl.DataFrame:
    """Every FEATURES column from the intermediate columns (each uses only rows up to its own minute)."""
    rv5, rv15, rv30 = (c(f"_mean__r1sq_{w}").sqrt() for w in (5, 15, 30))
    hh, ll = c("_max_high_30"), c("_min_low_30")
    frac = c("_idx") * c("_inv_n")
    df = df.with_columns(
        _zscore("spread_bps", 30).alias("spread_z_30"),
        _ratio(c("_signed"), c("volume")).alias("imbalance_1m"),
        _ratio(c("_sum__signed_3"), c("_sum_volume_3")).alias("imbalance_3m"),
        _ratio(c("_sum__signed_5"), c("_sum_volume_5")).alias("imbalance_5m"),
        _ratio(c("_cs_signed"), c("_csvolume")).alias("imbalance_day"),
        _zscore("_lv", 30).alias("volume_z_30"),
        _zscore("_ltc", 30).alias("trade_count_z_30"),
        ((c("close") - c("vwap")) / c("vwap") * 100.0).alias("vwap_dev"),
        ((c("high") - c("low")) / c("close") * 100.0).alias("range_pct"),
        _ratio(2.0 * c("close") - c("high") - c("low"), c("high") - c("low")).alias("close_location"),
        rv5.alias("realized_vol_5"),
        rv15.alias("realized_vol_15"),
        ((rv5 + _VOL_FLOOR) / (rv30 + _VOL_FLOOR)).log().alias("vol_ratio_5_30"),
        c("_mean_filled_5").alias("filled_frac_5"),
        ((c("_mean_close_5") / c("_mean_close_20")).log() * 100.0).alias("sma_5_20"),
        # gains - losses over 14 minutes telescopes to close - close 14 minutes ago;
        # gains + losses = sum |change|.
        _ratio(c("close") - c("_close_14"), c("_sum__absd_14")).clip(-1.0, 1.0).alias("rsi_14"),
        _zscore("ret_open", 20).alias("zscore_20"),
        _ratio(c("close") - c("_close_10"), c("_sum__absd_10")).clip(-1.0, 1.0).alias("efficiency_10"),
        _ratio(2.0 * c("close") - hh - ll, hh - ll).alias("range_pos_30"),
        frac.alias("tod_frac"),
        (2.0 * math.pi * frac).sin().alias("tod_sin"),
        (2.0 * math.pi * frac).cos().alias("tod_cos"),
        ((c("_n") - c("_idx")) / FULL_SESSION_MINUTES).alias("to_close"),
    )
    return df


def build_features(con: duckdb.DuckDBPyConnection, session_date: date) -> int:
    """Recompute core.features_1m for `session_date` from core.bars_1m (partition replaced); rows written."""
    bars = query_polars(
        con, "SELECT * FROM core.bars_1m WHERE session_date = ? ORDER BY symbol, minute", [session_date]
    )
    return replace_partition(con, "core.features_1m", session_date, compute_features(bars))


def features_markdown() -> str:
    """The text of warehouse/FEATURES.md: one line per feature, grouped, in FEATURES order."""
    lines = [
        "# Features (core.features_1m)",
        "",
        "Generated from `warehouse.features.FEATURES` (a test checks they agree).",
        "One row per (symbol, session_date, minute); every window stays inside one symbol's session and",
        "looks only backwards (the value at minute t uses bars <= t). Every feature is finite from minute",
        f"index {WARMUP_MINUTES} (`WARMUP_MINUTES`) on; before that a feature whose window is not full yet",
        "is NULL.",
        "",
    ]
    for group, feats in FEATURE_GROUPS.items():
        lines.append(f"## {group} ({len(feats)})")
        lines.append("")
        lines.extend(f"- `{name}`: {doc}" for name, doc in feats.items())
        lines.append("")
    return "\n".join(lines)
