"""Funding-rate warehouse: validation + quarantine, idempotent daily ingest, opportunities SQL, checks, CSV import.

Partitions are UTC days (`day`). Every write goes through `warehouse.partitions.replace_partitions` (every
DELETE then every INSERT in ONE transaction, rollback + re-raise on error): writing a day 3x leaves one copy, and
a failed fetch or insert leaves the stored day as it was. An imported CSV is its own partition (its `source`).
Rejected rows go to raw.quarantine (session_date = the UTC day) with table_name 'funding_rates', 'mark_prices'
or 'opportunities_csv'. Each rejected row gets exactly one reason, the first that applies in this order:

  funding_rates: missing_key (exchange/symbol null), out_of_day (funding_time null or not in [day, day+1)),
                 nan_rate, rate_out_of_bounds (|rate| > 0.03 per interval), bad_interval (not in {1, 2, 4, 8}),
                 duplicate (same exchange, symbol, funding_time as an earlier kept row; the first one wins)
  mark_prices:   missing_key, out_of_day, nan_price (mark/bid/ask null/NaN/inf), non_positive_price,
                 crossed_quote (bid > ask; a locked book is allowed), bad_volume (negative or NaN/inf volume_24h),
                 duplicate (same exchange, symbol, ts)
  opportunities_csv: bad_timestamp, missing_key, same_exchange, nan_rate, rate_out_of_bounds, bad_interval
                 (when interval columns exist), nan_price, non_positive_price, duplicate (entry_time, symbol, legs)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from market.funding import FundingSource, read_opportunities_csv
from warehouse.checks import _examples
from warehouse.db import query_polars, utc_now
from warehouse.partitions import PartitionWrite, replace_partitions
from warehouse.validate import _coerce

MAX_RATE = 0.03  # |rate| per interval above this is not a plausible funding rate
INTERVALS_H = (1, 2, 4, 8)
BUILD_SOURCE = "warehouse"
RATE_COLUMNS = {"exchange": "string", "symbol": "string", "funding_time": "datetime", "rate": "numeric"}
MARK_COLUMNS = {
    "exchange": "string",
    "symbol": "string",
    "ts": "datetime",
    "mark": "numeric",
    "bid": "numeric",
    "ask": "numeric",
    "volume_24h": "numeric",
}


@dataclass(frozen=True)
class FundingIngestStats:
    """What one funding ingest wrote: rows per table and quarantined rows per reason."""

    day: date
    source: str
    funding_rates: int
    mark_prices: int
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    gaps: int = 0  # (exchange, symbol) pairs the source asked for and did not fully get


@dataclass(frozen=True)
class CsvImportStats:
    """What one opportunities-CSV import wrote (rows replace that file's previous import)."""

    source: str
    rows: int
    imported: int
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    days: tuple[date, ...] = ()


def _finite(name: str) -> pl.Expr:
    return pl.col(name).is_not_null() & pl.col(name).is_finite()


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day)
    return start, start + timedelta(days=1)


def _key_reason(ts: str, day: date) -> pl.Expr:
    start, end = _day_bounds(day)
    return (
        pl.when(pl.col("exchange").is_null() | pl.col("symbol").is_null())
        .then(pl.lit("missing_key"))
        .when(pl.col(ts).is_null() | (pl.col(ts) < pl.lit(start)) | (pl.col(ts) >= pl.lit(end)))
        .then(pl.lit("out_of_day"))
    )


def _rate_reason(chain: Any, *rates: str) -> Any:
    """Append nan_rate then rate_out_of_bounds for the given rate columns to a when/then chain."""
    finite = pl.all_horizontal([_finite(c) for c in rates])
    bounded = pl.all_horizontal([pl.col(c).abs() <= MAX_RATE for c in rates])
    return chain.when(~finite).then(pl.lit("nan_rate")).when(~bounded).then(pl.lit("rate_out_of_bounds"))


def _interval_reason(chain: Any, *intervals: str) -> Any:
    ok = pl.all_horizontal([pl.col(c).is_in([float(v) for v in INTERVALS_H]).fill_null(False) for c in intervals])
    return chain.when(~ok).then(pl.lit("bad_interval"))


def _price_reason(chain: Any, *prices: str) -> Any:
    finite = pl.all_horizontal([_finite(c) for c in prices])
    positive = pl.all_horizontal([pl.col(c) > 0 for c in prices])
    return chain.when(~finite).then(pl.lit("nan_price")).when(~positive).then(pl.lit("non_positive_price"))


def _split(
    df: pl.DataFrame, reason: pl.Expr, keys: list[str], table_name: str, day: date, ts: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Row reasons first, then duplicates among the survivors (arrival order); quarantine in arrival order."""
    df = df.with_row_index("_arrival").with_columns(reason.alias("reason"))
    ok = df.filter(pl.col("reason").is_null())
    ok = ok.with_columns(
        pl.when(~pl.struct(keys).is_first_distinct()).then(pl.lit("duplicate")).otherwise(None).alias("reason")
    )
    clean = ok.filter(pl.col("reason").is_null()).drop("reason", "_arrival")
    bad = pl.concat([df.filter(pl.col("reason").is_not_null()), ok.filter(pl.col("reason").is_not_null())])
    payload_cols = [c for c in bad.columns if c not in ("_arrival", "reason")]
    quarantine = bad.sort("_arrival").select(
        pl.lit(table_name).alias("table_name"),
        pl.lit(day, dtype=pl.Date).alias("session_date"),
        pl.col("symbol"),
        pl.col(ts).cast(pl.Datetime("us")).alias("ts"),
        pl.col("reason"),
        pl.struct(payload_cols).struct.json_encode().alias("payload"),
    )
    return clean, quarantine


def validate_funding_rates(frame: pl.DataFrame, day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(clean rows sorted by exchange, symbol, funding_time with `day`, quarantined rows with a reason).

    Malformed frames (a missing column, a wrong type) raise ValueError naming the column.
    """
    df = _coerce(frame, RATE_COLUMNS, "funding_rates")
    if "interval_hours" not in frame.columns:
        raise ValueError(f"funding_rates frame is missing column 'interval_hours' (has {frame.columns})")
    ivl = frame["interval_hours"]
    if not (ivl.dtype.is_numeric() or ivl.dtype == pl.Null):
        raise ValueError(f"funding_rates column 'interval_hours' must be numeric, got {ivl.dtype}")
    df = df.with_columns(ivl.cast(pl.Float64).alias("interval_hours"))
    reason = _interval_reason(_rate_reason(_key_reason("funding_time", day), "rate"), "interval_hours")
    clean, bad = _split(df, reason, ["exchange", "symbol", "funding_time"], "funding_rates", day, "funding_time")
    clean = clean.with_columns(pl.col("interval_hours").cast(pl.Int32), pl.lit(day, dtype=pl.Date).alias("day")).sort(
        "exchange", "symbol", "funding_time"
    )
    return clean.select("exchange", "symbol", "day", "funding_time", "rate", "interval_hours"), bad


def validate_mark_prices(frame: pl.DataFrame, day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(clean rows sorted by exchange, symbol, ts with `day`, quarantined rows with a reason)."""
    df = _coerce(frame, MARK_COLUMNS, "mark_prices")
    reason = (
        _price_reason(_key_reason("ts", day), "mark", "bid", "ask")
        .when(pl.col("bid") > pl.col("ask"))
        .then(pl.lit("crossed_quote"))
        .when(pl.col("volume_24h").is_not_null() & (~pl.col("volume_24h").is_finite() | (pl.col("volume_24h") < 0)))
        .then(pl.lit("bad_volume"))
    )
    clean, bad = _split(df, reason, ["exchange", "symbol", "ts"], "mark_prices", day, "ts")
    clean = clean.with_columns(pl.lit(day, dtype=pl.Date).alias("day")).sort("exchange", "symbol", "ts")
    return clean.select("exchange", "symbol", "day", "ts", "mark", "bid", "ask", "volume_24h"), bad


def _quarantine_rows(bad: pl.DataFrame, source: str) -> pl.DataFrame:
    return bad.with_columns(
        pl.lit(source).alias("source"), pl.lit(utc_now(), dtype=pl.Datetime("us")).alias("quarantined_at")
    )


def ingest_funding_day(con: duckdb.DuckDBPyConnection, source: FundingSource, day: date) -> FundingIngestStats:
    """Fetch + validate one UTC day, then replace raw.funding_rates, raw.mark_prices and their quarantine rows
    for that day in ONE transaction (a fetch error leaves the stored day untouched; 3 writes -> one copy)."""
    if not isinstance(day, date) or isinstance(day, datetime):
        raise ValueError(f"day must be a datetime.date, got {day!r}")
    tape = source.fetch_day(day)
    rates, bad_r = validate_funding_rates(tape.funding_rates, day)
    marks, bad_m = validate_mark_prices(tape.mark_prices, day)
    source_name = getattr(source, "name", type(source).__name__)
    bad = _quarantine_rows(pl.concat([bad_r, bad_m]), source_name)
    gaps = pl.DataFrame(
        list(getattr(tape, "gaps", ())),
        schema={"exchange": pl.Utf8, "symbol": pl.Utf8, "reason": pl.Utf8},
        orient="row",
    ).with_columns(pl.lit(source_name).alias("source"), pl.lit(utc_now(), dtype=pl.Datetime("us")).alias("recorded_at"))
    writes = [
        PartitionWrite("raw.funding_gaps", frame=gaps),
        PartitionWrite("raw.funding_rates", frame=rates),
        PartitionWrite("raw.mark_prices", frame=marks),
        PartitionWrite(
            "raw.quarantine",
            frame=bad,
            extra_where={"table_name": ["funding_rates", "mark_prices"]},
            partition_column="session_date",
        ),
    ]
    counts = replace_partitions(con, day, writes, partition_column="day")
    return FundingIngestStats(
        day=day,
        source=source_name,
        funding_rates=counts.get("raw.funding_rates", 0),
        mark_prices=counts.get("raw.mark_prices", 0),
        quarantined=counts.get("raw.quarantine", 0),
        reasons=dict(sorted(Counter(bad["reason"].to_list()).items())),
        gaps=counts.get("raw.funding_gaps", 0),
    )


OPPORTUNITIES_SQL = """
WITH marks AS (
    SELECT exchange, symbol, ts, bid, ask, volume_24h FROM raw.mark_prices WHERE day = $day
),
rates AS (  -- a leg's rate is usable for one day after it was published
    SELECT exchange, symbol, funding_time, rate, interval_hours
    FROM raw.funding_rates WHERE day BETWEEN CAST($day AS DATE) - 1 AND CAST($day AS DATE)
),
legs AS (  -- the latest rate published at or before the snapshot: no look-ahead
    SELECT m.*, r.funding_time, r.rate, r.interval_hours, r.rate * (24.0 / r.interval_hours) * 365 AS leg_apr
    FROM marks m ASOF JOIN rates r
      ON m.exchange = r.exchange AND m.symbol = r.symbol AND m.ts >= r.funding_time
    WHERE m.ts - r.funding_time < INTERVAL 1 DAY
)
SELECT CAST($day AS DATE) AS day, l.ts, l.symbol,
       l.exchange AS long_exchange, s.exchange AS short_exchange,
       l.rate AS long_rate, s.rate AS short_rate,
       l.interval_hours AS long_interval_h, s.interval_hours AS short_interval_h,
       s.leg_apr - l.leg_apr AS apr,
       ((l.ask - l.bid) / ((l.ask + l.bid) / 2) + (s.ask - s.bid) / ((s.ask + s.bid) / 2)) * 1e4 AS spread_bps,
       least(l.volume_24h, s.volume_24h) AS volume_24h,
       $source AS source
FROM legs l JOIN legs s
  ON l.symbol = s.symbol AND l.ts = s.ts AND l.exchange <> s.exchange
 AND (l.leg_apr < s.leg_apr OR (l.leg_apr = s.leg_apr AND l.exchange < s.exchange))
"""


def build_opportunities(con: duckdb.DuckDBPyConnection, day: date) -> int:
    """Rebuild core.funding_opportunities for `day` from raw.* (rows of source 'warehouse'); returns rows written.

    For each mark snapshot ts and symbol, every exchange pair once, long on the lower-APR leg and short on the
    higher; each leg's rate is the latest published at or before ts (within a day); APR uses each leg's own
    interval; spread_bps = both legs' full bid-ask spread (a round trip at half-spread per crossing).
    """
    write = PartitionWrite(
        "core.funding_opportunities",
        select_sql=OPPORTUNITIES_SQL,
        params={"day": day, "source": BUILD_SOURCE},
        extra_where={"source": BUILD_SOURCE},
    )
    return replace_partitions(con, day, [write], partition_column="day")["core.funding_opportunities"]


def opportunities_summary(con: duckdb.DuckDBPyConnection, days: Sequence[date]) -> dict[str, Any]:
    """What the built opportunities of `days` hold, as plain numbers for the asset's metadata (plotted per run).

    `pairs` counts each symbol's exchange pairs regardless of which leg is long (the orientation follows the
    rates and can flip between snapshots); APRs are fractions (1.0 = 100%) of the rows' short-minus-long APR.
    """
    row = con.execute(
        """SELECT count(*), count(DISTINCT (symbol, least(long_exchange, short_exchange),
                                            greatest(long_exchange, short_exchange))),
                  count(DISTINCT symbol), count(DISTINCT ts), median(apr), max(apr)
           FROM core.funding_opportunities WHERE list_contains(?, day) AND source = ?""",
        [_day_list(days), BUILD_SOURCE],
    ).fetchone()
    rows, pairs, symbols, snapshots, median_apr, max_apr = row
    return {
        "rows": int(rows),
        "pairs": int(pairs),
        "symbols": int(symbols),
        "snapshots": int(snapshots),
        "median_apr": float(median_apr) if median_apr is not None else 0.0,
        "max_apr": float(max_apr) if max_apr is not None else 0.0,
    }


def import_opportunities_csv(con: duckdb.DuckDBPyConnection, path: str | Path) -> CsvImportStats:
    """Import seed 001's opportunity CSV into core.funding_opportunities (source 'csv:<file name>').

    Same validation path as the raw tables; rejects go to raw.quarantine (table_name 'opportunities_csv',
    session_date = the row's UTC day, or the file's first day when its entry_time is unreadable). Re-importing
    a file replaces its previous import in ONE transaction. `fund_apr` is in percent (seed 004: APR 329 =
    329%) and is stored as a fraction; optional columns long_interval_hours / short_interval_hours / spread_bps
    are used when present, else NULL.
    """
    p = Path(path)
    df = read_opportunities_csv(p)
    source = f"csv:{p.name}"
    for c in ("long_interval_hours", "short_interval_hours"):
        if c in df.columns:
            df = df.with_columns(pl.col(c).cast(pl.Float64, strict=False))
    has_ivl = "long_interval_hours" in df.columns and "short_interval_hours" in df.columns
    chain = (
        pl.when(pl.col("entry_time").is_null())
        .then(pl.lit("bad_timestamp"))
        .when(pl.any_horizontal([pl.col(c).is_null() for c in ("symbol", "long_exchange", "short_exchange")]))
        .then(pl.lit("missing_key"))
        .when(pl.col("long_exchange") == pl.col("short_exchange"))
        .then(pl.lit("same_exchange"))
    )
    chain = _rate_reason(chain, "long_funding_rate", "short_funding_rate")
    if has_ivl:
        chain = _interval_reason(chain, "long_interval_hours", "short_interval_hours")
    chain = _price_reason(chain, "entry_long_price", "entry_short_price")
    valid_days = df["entry_time"].drop_nulls().dt.date()
    fallback = valid_days.min() if valid_days.len() else utc_now().date()
    df = df.with_row_index("_arrival").with_columns(chain.alias("reason"))
    ok = df.filter(pl.col("reason").is_null())
    keys = ["entry_time", "symbol", "long_exchange", "short_exchange"]
    ok = ok.with_columns(
        pl.when(~pl.struct(keys).is_first_distinct()).then(pl.lit("duplicate")).otherwise(None).alias("reason")
    )
    clean = ok.filter(pl.col("reason").is_null())
    rejected = pl.concat([df.filter(pl.col("reason").is_not_null()), ok.filter(pl.col("reason").is_not_null())])
    payload_cols = [c for c in rejected.columns if c not in ("_arrival", "reason")]
    bad = _quarantine_rows(
        rejected.sort("_arrival").select(
            pl.lit("opportunities_csv").alias("table_name"),
            pl.col("entry_time").dt.date().fill_null(fallback).alias("session_date"),
            pl.col("symbol"),
            pl.col("entry_time").cast(pl.Datetime("us")).alias("ts"),
            pl.col("reason"),
            pl.struct(payload_cols).struct.json_encode().alias("payload"),
        ),
        source,
    )
    null_int = pl.lit(None, dtype=pl.Int32)
    rows = clean.select(
        pl.col("entry_time").dt.date().alias("day"),
        pl.col("entry_time").alias("ts"),
        "symbol",
        "long_exchange",
        "short_exchange",
        pl.col("long_funding_rate").alias("long_rate"),
        pl.col("short_funding_rate").alias("short_rate"),
        (pl.col("long_interval_hours").cast(pl.Int32) if has_ivl else null_int).alias("long_interval_h"),
        (pl.col("short_interval_hours").cast(pl.Int32) if has_ivl else null_int).alias("short_interval_h"),
        (pl.col("fund_apr") / 100.0).alias("apr"),
        (
            pl.col("spread_bps").cast(pl.Float64, strict=False)
            if "spread_bps" in clean.columns
            else pl.lit(None, dtype=pl.Float64)
        ).alias("spread_bps"),
        "volume_24h",
        pl.lit(source).alias("source"),
    )
    writes = [
        PartitionWrite("core.funding_opportunities", frame=rows),
        PartitionWrite("raw.quarantine", frame=bad, extra_where={"table_name": "opportunities_csv"}),
    ]
    counts = replace_partitions(con, source, writes, partition_column="source")
    return CsvImportStats(
        source=source,
        rows=df.height,
        imported=counts.get("core.funding_opportunities", 0),
        quarantined=counts.get("raw.quarantine", 0),
        reasons=dict(sorted(Counter(bad["reason"].to_list()).items())),
        days=tuple(sorted(set(rows["day"].to_list()))),
    )


def _day_list(days: Sequence[date]) -> list[date]:
    return sorted({d if isinstance(d, date) else date.fromisoformat(str(d)) for d in days})


def funding_checks(con: duckdb.DuckDBPyConnection, days: Sequence[date]) -> dict:
    """Funding-rate data quality over `days` as a plain dict: duplicate funding timestamps, gaps against the
    expected interval (consecutive funding times of a series must differ by the later row's interval_hours;
    the previous day is consulted for each day's first row) and rates outside plausible bounds (|rate| > 0.03
    or interval not in {1, 2, 4, 8}). `passed` + counts + a few examples per check."""
    ds = _day_list(days)
    if not ds:
        empty = {"duplicate_funding_times": 0, "interval_gaps": 0, "recorded_gaps": 0, "out_of_bounds": 0}
        return {"passed": True, "dates": [], **empty}
    params = {"days": ds, "lo": ds[0] - timedelta(days=1), "hi": ds[-1]}
    dups = query_polars(
        con,
        """SELECT exchange, symbol, funding_time, count(*) AS copies FROM raw.funding_rates
           WHERE list_contains($days, day) GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL""",
        {"days": ds},
    )
    gaps = query_polars(
        con,
        """WITH s AS (
             SELECT DISTINCT exchange, symbol, day, funding_time, interval_hours FROM raw.funding_rates
             WHERE day BETWEEN $lo AND $hi
           ), g AS (
             SELECT *, lag(funding_time) OVER (PARTITION BY exchange, symbol ORDER BY funding_time) AS prev_time
             FROM s
           )
           SELECT exchange, symbol, prev_time, funding_time, interval_hours,
                  CAST(epoch(funding_time) - epoch(prev_time) AS DOUBLE) / 3600 AS gap_hours
           FROM g WHERE list_contains($days, day) AND prev_time IS NOT NULL
             AND epoch(funding_time) - epoch(prev_time) <> interval_hours * 3600
           ORDER BY exchange, symbol, funding_time""",
        params,
    )
    bounds = query_polars(
        con,
        """SELECT exchange, symbol, funding_time, rate, interval_hours FROM raw.funding_rates
           WHERE list_contains($days, day)
             AND (NOT isfinite(rate) OR abs(rate) > $max_rate OR interval_hours NOT IN (1, 2, 4, 8))
           ORDER BY exchange, symbol, funding_time""",
        {"days": ds, "max_rate": MAX_RATE},
    )
    recorded = query_polars(
        con,
        "SELECT exchange, symbol, day, reason FROM raw.funding_gaps WHERE list_contains($days, day) ORDER BY ALL",
        {"days": ds},
    )
    rows = con.execute("SELECT count(*) FROM raw.funding_rates WHERE list_contains(?, day)", [ds]).fetchone()[0]
    return {
        "passed": dups.height == 0 and gaps.height == 0 and bounds.height == 0 and recorded.height == 0,
        "dates": [d.isoformat() for d in ds],
        "rows": int(rows),
        "duplicate_funding_times": dups.height,
        "interval_gaps": gaps.height,
        "recorded_gaps": recorded.height,
        "out_of_bounds": bounds.height,
        "examples": {
            "duplicate_funding_times": _examples(dups),
            "interval_gaps": _examples(gaps),
            "recorded_gaps": _examples(recorded, 50),
            "out_of_bounds": _examples(bounds),
        },
    }


RATE_LOOKBACK_DAYS = 2  # rates published this many days before a range's first day give its first hours a rate


def load_funding_frames(
    con: duckdb.DuckDBPyConnection, start: date, end: date, symbols: Sequence[str] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rates, marks) for the UTC days [start, end] in the frame schemas `rl.families.funding.data.FundingDays` reads.

    Rates start RATE_LOOKBACK_DAYS earlier, so the latest rate published before the first hour is known. A day
    without rows in either table raises a ValueError naming it: a gap would silently become hours without data.
    """
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    first = start - timedelta(days=RATE_LOOKBACK_DAYS)
    wanted = list(symbols or [])
    where = {"hi": end, "symbols": wanted, "all": not wanted}
    rates = query_polars(
        con,
        """SELECT exchange, symbol, day, funding_time, rate, interval_hours FROM raw.funding_rates
           WHERE day BETWEEN $lo AND $hi AND ($all OR list_contains($symbols, symbol))
           ORDER BY exchange, symbol, funding_time""",
        {**where, "lo": first},
    )
    marks = query_polars(
        con,
        """SELECT exchange, symbol, day, ts, mark, bid, ask, volume_24h FROM raw.mark_prices
           WHERE day BETWEEN $lo AND $hi AND ($all OR list_contains($symbols, symbol))
           ORDER BY exchange, symbol, ts""",
        {**where, "lo": start},
    )
    if wanted:
        absent = sorted(set(wanted) - set(marks["symbol"].to_list()))
        if absent:
            raise ValueError(f"no mark prices for symbol(s) {absent} between {start} and {end}")
    for frame, lo, table in ((rates, first, "raw_funding_rates"), (marks, start, "raw_mark_prices")):
        have = set(frame["day"].to_list())
        missing = [lo + timedelta(days=i) for i in range((end - lo).days + 1) if lo + timedelta(days=i) not in have]
        if missing:
            shown = ", ".join(d.isoformat() for d in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ValueError(f"{len(missing)} UTC day(s) lack rows: materialize {table} for {shown}")
    return rates.drop("day"), marks.drop("day")
