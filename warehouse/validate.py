"""Validation of raw trades and quotes: clean rows in time order, everything else quarantined with a reason.

Sources hand over raw data (unsorted, possibly duplicated or broken); this is the single place that decides
what enters the warehouse. Each rejected row gets exactly one reason, the first that applies in this order:

  trades: wrong_symbol, null_ts, out_of_session, nan_price (null/NaN/inf), non_positive_price,
          zero_size (equity size null/NaN/inf or <= 0), index_size (index levels must have size 0),
          implausible_price (further than the instrument's price_band_pct from the median price of the minutes
          around it: a 1e9, 10x or $0.01 print),
          duplicate (an exact re-send: the same vendor_id as an earlier row), out_of_order (left out of the
          longest time-ordered run of the kept rows in arrival order: one late print costs one row)
  quotes: wrong_symbol, null_ts, out_of_session, nan_price (bid or ask), non_positive_price, crossed_quote
          (bid >= ask: crossed or locked), zero_size (bid or ask size null/NaN/inf or <= 0),
          implausible_price (the mid beyond the band around the median mid of the minutes around it), duplicate
          (same vendor_id), out_of_order
  vendor minute bars: wrong_symbol, null_ts, out_of_session, misaligned (ts not on a minute), nan_price (any of
          OHLC), non_positive_price, bad_ohlc (high below open/close/low, or low above open/close),
          bad_volume (null/NaN/inf or < 0), duplicate (a second bar for the same minute, whatever its values),
          out_of_order

"Session" is the regular session unless the caller passes a wider window (extended hours kept by
configuration); `split_extended` first removes pre- and after-hours rows a vendor sent when they are not kept.

Repeated identical prints are legal (a millisecond feed has many: one order filled against several resting ones),
so trades and quotes are never de-duplicated by value. A source that knows the vendor's trade id or sequence number
passes it as an optional `vendor_id` column, and only a second row with the same id is a duplicate. Idempotence
comes from replacing a partition, not from dropping rows that look alike. Clean trades sharing a timestamp are then
spaced 1 ns apart in arrival order, within the resolution of that timestamp (`space_ties`), so every print keeps its
own instant and minute.

A frame with a missing column or a column of the wrong type is not data to quarantine but a broken source:
ValueError naming the column.
"""

from __future__ import annotations

import bisect
from datetime import date

import numpy as np
import polars as pl

from market.calendar import NYSE, SessionRule, extended_bounds, session_bounds
from market.symbols import SymbolSpec

TRADE_COLUMNS: dict[str, str] = {"symbol": "string", "ts": "datetime", "price": "numeric", "size": "numeric"}
QUOTE_COLUMNS: dict[str, str] = {
    "symbol": "string",
    "ts": "datetime",
    "bid": "numeric",
    "ask": "numeric",
    "bid_size": "numeric",
    "ask_size": "numeric",
}
TRADE_REASONS = (
    "wrong_symbol",
    "null_ts",
    "out_of_session",
    "nan_price",
    "non_positive_price",
    "zero_size",
    "index_size",
    "implausible_price",
    "duplicate",
    "out_of_order",
)
QUOTE_REASONS = (
    "wrong_symbol",
    "null_ts",
    "out_of_session",
    "nan_price",
    "non_positive_price",
    "crossed_quote",
    "zero_size",
    "implausible_price",
    "duplicate",
    "out_of_order",
)
BAR_COLUMNS: dict[str, str] = {
    "symbol": "string",
    "ts": "datetime",
    "open": "numeric",
    "high": "numeric",
    "low": "numeric",
    "close": "numeric",
    "volume": "numeric",
    "vwap": "numeric",
    "trade_count": "numeric",
}
BAR_REASONS = (
    "wrong_symbol",
    "null_ts",
    "out_of_session",
    "misaligned",
    "nan_price",
    "non_positive_price",
    "bad_ohlc",
    "bad_volume",
    "duplicate",
    "out_of_order",
)
Window = tuple[np.datetime64, np.datetime64]
QUARANTINE_COLUMNS = ("table_name", "session_date", "symbol", "ts", "reason", "payload")
REFERENCE_SAMPLE = 200_000  # prints a day's plausibility reference is computed from, at most about
VENDOR_ID = "vendor_id"  # optional trades/quotes column: the vendor's trade id or sequence number
_PRICE_TOL = 1e-9  # relative; prices closer than this are the same tick


def _coerce(frame: pl.DataFrame, columns: dict[str, str], what: str) -> pl.DataFrame:
    """The contract columns with their canonical types, or ValueError naming the offending column."""
    if not isinstance(frame, pl.DataFrame):
        raise ValueError(f"{what} must be a polars DataFrame, got {type(frame).__name__}")
    exprs = []
    for name, kind in columns.items():
        if name not in frame.columns:
            raise ValueError(f"{what} frame is missing column {name!r} (has {frame.columns})")
        dtype = frame.schema[name]
        col = pl.col(name)
        if kind == "string":
            if dtype not in (pl.Utf8, pl.Categorical, pl.Null) and not isinstance(dtype, pl.Categorical | pl.Enum):
                raise ValueError(f"{what} column {name!r} must be a string, got {dtype}")
            exprs.append(col.cast(pl.Utf8))
        elif kind == "datetime":
            if isinstance(dtype, pl.Datetime):
                if dtype.time_zone is not None:
                    col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
                exprs.append(col.cast(pl.Datetime("ns")))
            elif dtype == pl.Null:
                exprs.append(col.cast(pl.Datetime("ns")))
            else:
                raise ValueError(f"{what} column {name!r} must be a datetime (naive UTC), got {dtype}")
        else:
            if not (dtype.is_numeric() or dtype == pl.Null):
                raise ValueError(f"{what} column {name!r} must be numeric, got {dtype}")
            exprs.append(col.cast(pl.Float64))
    if VENDOR_ID in frame.columns and VENDOR_ID not in columns:
        exprs.append(pl.col(VENDOR_ID).cast(pl.Utf8))
    return frame.select(exprs)


def tick_rule(price: np.ndarray) -> np.ndarray:
    """Tick-rule side per trade (time order): +1 uptick, -1 downtick, zero ticks carry the last
    sign, 0 unknown.

    Vectorised: zero ticks are nulls that a forward fill carries the last sign into."""
    price = np.asarray(price, dtype=np.float64)
    n = price.size
    step = np.zeros(n, dtype=np.int8)
    if n < 2:
        return step
    diff = np.diff(price)
    tol = _PRICE_TOL * np.abs(price[1:])
    step[1:] = (diff > tol).view(np.int8) - (diff < -tol).view(np.int8)
    # carry the last non-zero tick forward (a zero tick keeps it; 0 until the first move)
    return pl.Series(step).replace(0, None).forward_fill().fill_null(0).to_numpy()


def _finite(name: str) -> pl.Expr:
    return pl.col(name).is_not_null() & pl.col(name).is_finite()


def _duplicates(df: pl.DataFrame, keys: list[str]) -> np.ndarray:
    """True for rows equal on `keys` to an earlier row; rows with a null key are never duplicates."""
    if not keys or any(k not in df.columns for k in keys):
        return np.zeros(df.height, dtype=bool)
    known = pl.all_horizontal(pl.col(k).is_not_null() for k in keys)
    return df.select(known & ~pl.struct(keys).is_first_distinct()).to_series().to_numpy()


def space_ties(ts: np.ndarray) -> np.ndarray:
    """Non-decreasing int64 ns stamps with the k-th repeat of a timestamp moved k ns later, in arrival order.

    A repeat is moved only while it stays inside its timestamp's own resolution (a millisecond stamp spaces up to
    999,999 repeats inside that millisecond), so no print crosses into the next stamp, minute or session; repeats
    of a full-nanosecond stamp are left equal (the seq column still orders them)."""
    ts = np.asarray(ts, dtype=np.int64)
    out = ts.copy()
    if ts.size < 2:
        return out
    repeat = np.flatnonzero(ts[1:] == ts[:-1]) + 1  # rows equal to the previous one
    if not repeat.size:
        return out
    # k: position inside the run of equal stamps (1 for the first repeat), from the run's first row
    starts = np.ones(repeat.size, dtype=bool)
    starts[1:] = repeat[1:] != repeat[:-1] + 1
    first = np.maximum.accumulate(np.where(starts, repeat, 0))
    k = repeat - first + 1
    stamp = ts[repeat]
    unit = np.ones(repeat.size, dtype=np.int64)
    for step in (1_000, 1_000_000, 1_000_000_000):
        unit[stamp % step == 0] = step
    out[repeat] = np.where(k < unit, stamp + k, stamp)
    return out


def in_order(ts: np.ndarray) -> np.ndarray:
    """True for the rows of a longest non-decreasing run of `ts` in arrival order, preferring earlier arrivals.

    The rows left out are the fewest that make the rest ordered: one print stamped hours late costs that one row,
    not every row after it (as a running-maximum rule would). Sorted input, the usual case, is one array pass;
    otherwise O(n log n) with a Python loop, which only disordered recordings pay.
    """
    n = len(ts)
    if n < 2 or bool(np.all(ts[1:] >= ts[:-1])):
        return np.ones(n, dtype=bool)
    values = ts.tolist()
    # longest[i]: length of the longest non-decreasing run starting at row i (patience sorting, from the right).
    longest = [0] * n
    tails: list = []  # tails[k]: the largest first value of a run of length k + 1 seen so far, negated
    for i in range(n - 1, -1, -1):
        k = bisect.bisect_right(tails, -values[i])
        if k == len(tails):
            tails.append(-values[i])
        else:
            tails[k] = -values[i]
        longest[i] = k + 1
    keep = np.zeros(n, dtype=bool)
    need, last = len(tails), None
    for i in range(n):  # greedy from the left: the earliest row that still completes a longest run
        if need and longest[i] == need and (last is None or values[i] >= last):
            keep[i], last, need = True, values[i], need - 1
    return keep


def _split(
    df: pl.DataFrame,
    row_reason: pl.Expr,
    dup_keys: list[str],
    table_name: str,
    session_date: date,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-row reasons first, then duplicates (equal on `dup_keys`) and out-of-order rows among the survivors."""
    df = df.with_row_index("_arrival").with_columns(row_reason.alias("reason"))
    ok = df.filter(pl.col("reason").is_null())
    duplicate = _duplicates(ok, dup_keys)
    ordered = np.zeros(ok.height, dtype=bool)
    ordered[~duplicate] = in_order(ok["ts"].to_physical().to_numpy()[~duplicate])
    helpers = [c for c in df.columns if c.startswith("_")]
    if not duplicate.any() and ordered.all():  # the usual day: every row that passed the row rules is kept
        bad = df.filter(pl.col("reason").is_not_null())
        return ok.drop("reason", *helpers), _quarantine_rows(bad, table_name, session_date)
    ok = ok.with_columns(
        pl.when(pl.Series(duplicate))
        .then(pl.lit("duplicate"))
        .when(~pl.Series(ordered))
        .then(pl.lit("out_of_order"))
        .otherwise(None)
        .alias("reason")
    )
    # Order is judged among the rows that are neither bad nor duplicates: the fewest are set aside as out of order.
    clean = ok.filter(pl.col("reason").is_null()).drop("reason", *helpers)
    bad = pl.concat([df.filter(pl.col("reason").is_not_null()), ok.filter(pl.col("reason").is_not_null())])
    return clean, _quarantine_rows(bad, table_name, session_date)


def _quarantine_rows(bad: pl.DataFrame, table_name: str, session_date: date) -> pl.DataFrame:
    """The quarantine rows of `bad` (rows with a reason), in arrival order, each row's fields as its JSON payload."""
    payload_cols = [c for c in bad.columns if c != "reason" and not c.startswith("_")]
    return bad.sort("_arrival").select(
        pl.lit(table_name).alias("table_name"),
        pl.lit(session_date, dtype=pl.Date).alias("session_date"),
        pl.col("symbol"),
        pl.col("ts").cast(pl.Datetime("us")),
        pl.col("reason"),
        pl.struct(payload_cols).struct.json_encode().alias("payload"),
    )


def split_extended(frame: pl.DataFrame, session_date: date, rule: SessionRule = NYSE) -> tuple[pl.DataFrame, int]:
    """`frame` without its pre- and after-hours rows (inside the extended window but outside the regular
    session), and how many were dropped. Rows outside both windows stay, for validation to quarantine."""
    if frame.height == 0 or "ts" not in frame.columns or not isinstance(frame.schema["ts"], pl.Datetime):
        return frame, 0
    open_, close_ = session_bounds(session_date, rule)
    ext_open, ext_close = extended_bounds(session_date, rule)
    ts = pl.col("ts")
    if frame.schema["ts"].time_zone is not None:
        ts = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    ts = ts.cast(pl.Datetime("ns"))
    first, last = frame.select(ts.min().alias("a"), ts.max().alias("b")).row(0)
    if first is not None and np.datetime64(first, "ns") >= open_ and np.datetime64(last, "ns") < close_:
        return frame, 0  # every stamp inside the regular session: nothing to drop, no filter pass
    extended = ((ts >= pl.lit(ext_open)) & (ts < pl.lit(open_))) | ((ts >= pl.lit(close_)) & (ts < pl.lit(ext_close)))
    kept = frame.filter(~extended.fill_null(False))
    return kept, frame.height - kept.height


def _common_reasons(spec: SymbolSpec, session_date: date, window: Window | None = None) -> pl.Expr:
    open_, close_ = window if window is not None else session_bounds(session_date, spec.session_rule)
    return (
        pl.when(pl.col("symbol").is_null() | (pl.col("symbol") != spec.symbol))
        .then(pl.lit("wrong_symbol"))
        .when(pl.col("ts").is_null())
        .then(pl.lit("null_ts"))
        .when((pl.col("ts") < pl.lit(open_)) | (pl.col("ts") >= pl.lit(close_)))
        .then(pl.lit("out_of_session"))
    )


def reference_prices(ts: pl.Series, price: pl.Series, usable: pl.Series, minutes: int = 5) -> np.ndarray:
    """Per row, the recent typical price a print is judged against: the median of the usable prints' minute medians
    over the `minutes` around its minute (NaN where none is near). One bad print cannot move its own reference,
    and neither can a minute holding only bad prints, while the other minutes are sound. A dense day is judged on
    an even sample of its prints (every k-th, up to REFERENCE_SAMPLE of them): a median needs no more."""
    code = ts.to_physical().fill_null(0).to_numpy() // 60_000_000_000
    rows = np.flatnonzero(usable.fill_null(False).to_numpy())
    rows = rows[:: max(1, len(rows) // REFERENCE_SAMPLE)]  # every k-th usable print
    frame = pl.DataFrame({"m": code[rows], "p": price.gather(rows).fill_nan(None)})
    per_minute = frame.group_by("m").agg(pl.col("p").median()).sort("m")
    if not per_minute.height:
        return np.full(len(ts), np.nan)
    ref = per_minute["p"].rolling_median(minutes, center=True, min_samples=1).to_numpy()
    keys = per_minute["m"].to_numpy()
    half = minutes // 2
    low, size = int(keys[0]) - half, int(keys[-1] - keys[0]) + 1 + 2 * half
    if size <= 4 * 1440:  # a day's minutes: the same lookup as below, as one gather from a dense table
        nearest = pl.Series(np.full(size, None), dtype=pl.Int64).scatter(keys - low, np.arange(len(keys)))
        nearest = nearest.backward_fill(limit=half).to_numpy(allow_copy=True)
        nearest = np.where(np.isnan(nearest.astype(np.float64)), -1, nearest).astype(np.int64)
        nearest[int(keys[-1]) - low + 1 :] = len(keys) - 1  # after the last minute: its reference, as below
        pos = code - low
        at = nearest[np.clip(pos, 0, size - 1)]
        return np.where((pos >= 0) & (pos < size) & (at >= 0), ref[np.maximum(at, 0)], np.nan)
    at = np.clip(np.searchsorted(keys, code), 0, len(keys) - 1)
    return np.where(np.abs(keys[at] - code) <= minutes // 2, ref[at], np.nan)


def _with_reference(
    df: pl.DataFrame, value: pl.Expr, valid: pl.Expr, spec: SymbolSpec, session_date: date, window: Window | None
) -> tuple[pl.DataFrame, pl.Expr]:
    """`df` with the `_ref` column (`reference_prices` of `value` over the valid in-session rows), and the
    expression that marks `value` implausible: beyond the instrument's price band around its reference."""
    open_, close_ = window if window is not None else session_bounds(session_date, spec.session_rule)
    usable = df.select(valid & (pl.col("ts") >= pl.lit(open_)) & (pl.col("ts") < pl.lit(close_))).to_series()
    ref = reference_prices(df["ts"], df.select(value).to_series(), usable.fill_null(False))
    band = spec.price_band_pct / 100.0
    return df.with_columns(pl.Series("_ref", ref)), ((value / pl.col("_ref") - 1.0).abs() > band).fill_null(False)


def validate_trades(
    trades: pl.DataFrame, spec: SymbolSpec, session_date: date, window: Window | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split raw trades into clean rows (raw.ticks columns, ts order, seq, tick-rule side) and quarantine.

    Quarantined rows have columns table_name, session_date, symbol, ts, reason, payload (JSON of the row).
    `window` (naive UTC, end exclusive) widens the session, e.g. to extended hours; default the regular session.
    """
    df = _coerce(trades, TRADE_COLUMNS, "trades")
    valid = _finite("price") & (pl.col("price") > 0)
    df, implausible = _with_reference(df, pl.col("price"), valid, spec, session_date, window)
    if spec.is_index:
        size_reason = ~_finite("size") | (pl.col("size") != 0)
        size_label = "index_size"
    else:
        size_reason = ~_finite("size") | (pl.col("size") <= 0)
        size_label = "zero_size"
    reason = (
        _common_reasons(spec, session_date, window)
        .when(~_finite("price"))
        .then(pl.lit("nan_price"))
        .when(pl.col("price") <= 0)
        .then(pl.lit("non_positive_price"))
        .when(size_reason)
        .then(pl.lit(size_label))
        .when(implausible)
        .then(pl.lit("implausible_price"))
        .otherwise(None)
    )
    clean, quarantine = _split(df, reason, [VENDOR_ID], "ticks", session_date)
    side = tick_rule(clean["price"].to_numpy())
    spaced = space_ties(clean["ts"].to_physical().to_numpy())
    clean = clean.select(
        pl.lit(spec.symbol).alias("symbol"),
        pl.lit(session_date, dtype=pl.Date).alias("session_date"),
        pl.Series("ts", spaced).cast(pl.Datetime("ns")),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("seq"),
        pl.col("price"),
        pl.col("size"),
        pl.Series("side", side, dtype=pl.Int8),
    )
    return clean, quarantine


def validate_quotes(
    quotes: pl.DataFrame, spec: SymbolSpec, session_date: date, window: Window | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split raw quotes into clean rows (raw.quotes columns, ts order) and quarantine (as for trades)."""
    df = _coerce(quotes, QUOTE_COLUMNS, "quotes")
    mid = (pl.col("bid") + pl.col("ask")) / 2
    valid = _finite("bid") & _finite("ask") & (pl.col("bid") > 0) & (pl.col("bid") < pl.col("ask"))
    df, implausible = _with_reference(df, mid, valid, spec, session_date, window)
    reason = (
        _common_reasons(spec, session_date, window)
        .when(~_finite("bid") | ~_finite("ask"))
        .then(pl.lit("nan_price"))
        .when((pl.col("bid") <= 0) | (pl.col("ask") <= 0))
        .then(pl.lit("non_positive_price"))
        .when(pl.col("bid") >= pl.col("ask"))
        .then(pl.lit("crossed_quote"))
        .when(~_finite("bid_size") | ~_finite("ask_size") | (pl.col("bid_size") <= 0) | (pl.col("ask_size") <= 0))
        .then(pl.lit("zero_size"))
        .when(implausible)
        .then(pl.lit("implausible_price"))
        .otherwise(None)
    )
    keys = ["ts", "bid", "ask", "bid_size", "ask_size"]
    clean, quarantine = _split(df, reason, [VENDOR_ID], "quotes", session_date)
    clean = clean.select(
        pl.lit(spec.symbol).alias("symbol"),
        pl.lit(session_date, dtype=pl.Date).alias("session_date"),
        *keys,
    )
    return clean, quarantine


def validate_bars(
    bars: pl.DataFrame, spec: SymbolSpec, session_date: date, window: Window | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a vendor's minute bars into clean rows (raw.minute_bars columns, ts order) and quarantine.

    A vendor sends at most one bar per minute, so a second bar for a minute is a duplicate even when its values
    differ (keeping both would double the minute's volume)."""
    df = _coerce(bars, BAR_COLUMNS, "bars")
    ohlc = ["open", "high", "low", "close"]
    reason = (
        _common_reasons(spec, session_date, window)
        .when(pl.col("ts").dt.truncate("1m") != pl.col("ts"))
        .then(pl.lit("misaligned"))
        .when(pl.any_horizontal(~_finite(c) for c in ohlc))
        .then(pl.lit("nan_price"))
        .when(pl.any_horizontal(pl.col(c) <= 0 for c in ohlc))
        .then(pl.lit("non_positive_price"))
        .when(
            (pl.col("high") < pl.max_horizontal("open", "close", "low"))
            | (pl.col("low") > pl.min_horizontal("open", "close"))
        )
        .then(pl.lit("bad_ohlc"))
        .when(~_finite("volume") | (pl.col("volume") < 0))
        .then(pl.lit("bad_volume"))
        .otherwise(None)
    )
    clean, quarantine = _split(df, reason, ["ts"], "minute_bars", session_date)
    clean = clean.select(
        pl.lit(spec.symbol).alias("symbol"),
        pl.lit(session_date, dtype=pl.Date).alias("session_date"),
        "ts",
        *ohlc,
        "volume",
        pl.col("vwap").fill_nan(None),
        pl.col("trade_count").cast(pl.Int64, strict=False),
    )
    return clean, quarantine
