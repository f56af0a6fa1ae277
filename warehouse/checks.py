"""Data-quality checks over the warehouse, as plain dicts (the Dagster asset checks only wrap them).

Every result has `passed` (bool), the `dates` checked (ISO strings), integer counts at the top level (Dagster
plots numeric metadata across materializations) and a few `examples` rows; everything is JSON-serializable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

import duckdb
import numpy as np
import polars as pl

from market.calendar import is_session
from market.symbols import get_symbol
from market.values import is_int, is_number
from warehouse.db import query_polars, registered
from warehouse.features import FEATURES, KEYS, UNKNOWN_FROM_VENDOR_BARS, WARMUP_MINUTES, compute_features
from warehouse.sessions import minute_grid, symbol_sessions

MAX_EXAMPLES = 5
DEFAULT_TRUNCATION_CUTS = (0, WARMUP_MINUTES - 1, WARMUP_MINUTES, 90, 240)


@dataclass(frozen=True)
class Thresholds:
    """When incomplete or damaged data fails a check (market.yaml `checks:`)."""

    max_filled_share: float = 0.5  # bar_integrity (blocking): a session with more minutes forward-filled fails
    min_traded_share: float = 0.5  # session_coverage: a session with trades in fewer of its minutes is partial
    max_early_end_minutes: int = 30  # session_coverage: ticks ending this long before the close make it partial
    max_quarantine_share: float = 0.01  # quarantine_report (blocking): a partition setting aside more rows fails
    max_bar_return_pct: float = 5.0  # extreme_bar_returns: a one-minute close-to-close move beyond this is flagged

    def __post_init__(self) -> None:
        for name in ("max_filled_share", "min_traded_share", "max_quarantine_share"):
            value = getattr(self, name)
            if not is_number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"checks.{name} must be a share in [0, 1], got {value!r}")
        if not is_int(self.max_early_end_minutes) or self.max_early_end_minutes < 0:
            minutes = self.max_early_end_minutes
            raise ValueError(f"checks.max_early_end_minutes must be an integer >= 0, got {minutes!r}")
        if not is_number(self.max_bar_return_pct) or not self.max_bar_return_pct > 0:
            raise ValueError(f"checks.max_bar_return_pct must be a number > 0, got {self.max_bar_return_pct!r}")

    @classmethod
    def from_dict(cls, raw: Any) -> Thresholds:
        """From the `checks:` mapping; unknown keys are refused, naming the known ones."""
        raw = raw or {}
        if not isinstance(raw, dict):
            raise ValueError(f"checks must be a mapping of thresholds, got {raw!r}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValueError(f"checks: unknown keys {unknown}; known: {known}")
        return cls(**raw)


DEFAULT_THRESHOLDS = Thresholds()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


def _examples(frame: pl.DataFrame, n: int = MAX_EXAMPLES) -> list[dict[str, Any]]:
    return [{k: _jsonable(v) for k, v in row.items()} for row in frame.head(n).iter_rows(named=True)]


def _dates(dates: Sequence[date]) -> list[date]:
    return sorted({d if isinstance(d, date) else date.fromisoformat(str(d)) for d in dates})


def _date_frame(dates: list[date]) -> pl.DataFrame:
    return pl.DataFrame({"session_date": pl.Series(dates, dtype=pl.Date)})


def _stored_pairs(con: duckdb.DuckDBPyConnection, table: str, days: list[date]) -> list[tuple[str, date]]:
    """(symbol, session_date) pairs `table` holds on `days`."""
    if not days:
        return []
    with registered(con, _date_frame(days)) as dv:
        sql = f"SELECT DISTINCT symbol, session_date FROM {table} JOIN {dv} USING (session_date)"
        return con.execute(sql).fetchall()


def _deferred(symbol: str, day: date) -> bool:
    """True for a futures contract that is not its root's calendar front on `day`: it trades thinly until the roll,
    as on a real tape, so a mostly forward-filled session of it is expected, not damage."""
    from market.futures import calendar_front
    from market.symbols import get_symbol

    spec = get_symbol(symbol, day)
    return spec.kind == "future" and spec.expiry is not None and calendar_front(spec.root, day) != symbol


def bar_integrity(
    con: duckdb.DuckDBPyConnection, dates: Sequence[date], thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> dict:
    """Bars must be consistent OHLC (low <= open, close <= high; vwap inside), unique per (symbol, minute),
    non-negative in volume, cover exactly each symbol's calendar minutes, and not be mostly forward-filled (a
    session with trades in only a few minutes is not a session a model should learn from; a deferred futures
    contract, thin before its roll, is counted apart)."""
    days = _dates(dates)
    pairs = _stored_pairs(con, "core.bars_1m", days)
    grid = minute_grid(pairs)
    deferred = pl.DataFrame(
        [p for p in pairs if _deferred(*p)], schema={"symbol": pl.Utf8, "session_date": pl.Date}, orient="row"
    )
    with registered(con, _date_frame(days)) as dv, registered(con, grid) as gv, registered(con, deferred) as fv:
        bars = f"(SELECT b.* FROM core.bars_1m b JOIN {dv} d USING (session_date))"
        n_bars = con.execute(f"SELECT count(*) FROM {bars}").fetchone()[0]
        checks = {
            "ohlc_violations": f"""SELECT symbol, session_date, minute, open, high, low, close FROM {bars}
                WHERE NOT coalesce(low <= least(open, close) AND greatest(open, close) <= high
                                   AND isfinite(open + high + low + close), false)""",
            "vwap_outside_range": f"""SELECT symbol, session_date, minute, low, vwap, high FROM {bars}
                WHERE NOT coalesce(vwap BETWEEN low - 1e-9 * abs(low) AND high + 1e-9 * abs(high), false)
                  AND NOT (vwap IS NULL AND built_from = 'vendor')""",
            "negative_volume": f"""SELECT symbol, session_date, minute, volume, buy_volume, sell_volume
                FROM {bars}
                WHERE NOT coalesce(volume >= 0 AND buy_volume >= 0 AND sell_volume >= 0
                                   AND buy_volume + sell_volume <= volume * (1 + 1e-9), false)
                  AND NOT (built_from = 'vendor' AND buy_volume IS NULL AND sell_volume IS NULL
                           AND coalesce(volume >= 0, false))""",
            "duplicate_minutes": f"""SELECT symbol, session_date, minute, count(*) - 1 AS extra FROM {bars}
                GROUP BY ALL HAVING count(*) > 1""",
            "missing_minutes": f"""SELECT g.symbol, g.session_date, g.minute FROM {gv} g
                ANTI JOIN {bars} b
                ON b.symbol = g.symbol AND b.session_date = g.session_date AND b.minute = g.minute""",
            "extra_minutes": f"""SELECT b.symbol, b.session_date, b.minute FROM {bars} b
                ANTI JOIN {gv} g
                ON g.symbol = b.symbol AND g.session_date = b.session_date AND g.minute = b.minute""",
            "empty_dates": f"SELECT session_date FROM {dv} ANTI JOIN {bars} b USING (session_date)",
            "mostly_filled_sessions": f"""SELECT symbol, session_date, count(*) FILTER (WHERE filled) AS filled,
                    count(*) AS minutes, round(count(*) FILTER (WHERE filled) / count(*), 4) AS filled_share
                FROM {bars} b ANTI JOIN {fv} f USING (symbol, session_date) GROUP BY ALL
                HAVING count(*) FILTER (WHERE filled) > {float(thresholds.max_filled_share)} * count(*)""",
        }
        result: dict[str, Any] = {"dates": [d.isoformat() for d in days], "bars": int(n_bars)}
        result["deferred_contracts_not_judged_for_fill"] = deferred.height
        examples: dict[str, list] = {}
        for name, sql in checks.items():
            rows = query_polars(con, f"SELECT * FROM ({sql}) ORDER BY ALL")
            count = int(rows["extra"].sum()) if name == "duplicate_minutes" and rows.height else rows.height
            result[name] = count
            if count:
                examples[name] = _examples(rows)
    result["max_filled_share"] = float(thresholds.max_filled_share)
    result["violations"] = sum(result[name] for name in checks)
    result["passed"] = result["violations"] == 0
    result["examples"] = examples
    return result


def _warm_filter(pairs: list[tuple[str, date]], warmup: int) -> pl.DataFrame:
    """symbol, session_date and warm_from: each symbol's own open plus the warm-up minutes."""
    sessions = symbol_sessions(pairs)
    return sessions.select("symbol", "session_date", (pl.col("open") + pl.duration(minutes=warmup)).alias("warm_from"))


def features_finite(con: duckdb.DuckDBPyConnection, dates: Sequence[date], warmup: int = WARMUP_MINUTES) -> dict:
    """From `warmup` minutes after the open on, every feature must be finite (not NULL, NaN or inf), and every
    bar must have its feature row."""
    days = _dates(dates)
    names = list(FEATURES)

    def bad(n: str) -> str:  # a feature a vendor-built bar cannot know is unknown there, not broken
        known = " AND coalesce(built_from, 'ticks') <> 'vendor'" if n in UNKNOWN_FROM_VENDOR_BARS else ""
        return f"(NOT coalesce(isfinite({n}), false){known})"

    bad_any = " OR ".join(bad(n) for n in names)
    per_col = ", ".join(f"count(*) FILTER (WHERE {bad(n)}) AS {n}" for n in names)
    with registered(con, _warm_filter(_stored_pairs(con, "core.bars_1m", days), warmup)) as wv:
        warm = f"""(SELECT f.*, b.built_from FROM core.features_1m f JOIN {wv} w USING (symbol, session_date)
                    LEFT JOIN core.bars_1m b USING (symbol, session_date, minute) WHERE f.minute >= w.warm_from)"""
        checked, vendor_rows = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE built_from = 'vendor') FROM {warm}"
        ).fetchone()
        counts = query_polars(con, f"SELECT {per_col} FROM {warm}").row(0, named=True)
        bad_rows = query_polars(
            con,
            f"SELECT symbol, session_date, minute, {', '.join(names)} FROM {warm} "
            f"WHERE {bad_any} ORDER BY ALL LIMIT 50",
        )
        missing = con.execute(
            f"""SELECT count(*) FROM core.bars_1m b JOIN {wv} w USING (symbol, session_date)
                ANTI JOIN core.features_1m f USING (symbol, session_date, minute)"""
        ).fetchone()[0]
    non_finite = {k: int(v or 0) for k, v in counts.items() if v}
    examples = []
    for row in bad_rows.head(MAX_EXAMPLES).iter_rows(named=True):
        bad_cols = {k: _jsonable(v) for k, v in row.items() if k in FEATURES and (v is None or not np.isfinite(v))}
        examples.append({"symbol": row["symbol"], "minute": _jsonable(row["minute"]), "bad": bad_cols})
    total = sum(non_finite.values())
    return {
        "passed": total == 0 and missing == 0 and checked > 0,
        "dates": [d.isoformat() for d in days],
        "warmup_minutes": warmup,
        "rows_checked": int(checked),
        "non_finite_values": total,
        "missing_feature_rows": int(missing),
        "vendor_built_rows": int(vendor_rows),  # their UNKNOWN_FROM_VENDOR_BARS features are NULL by design
        "unknown_from_vendor_bars": list(UNKNOWN_FROM_VENDOR_BARS) if vendor_rows else [],
        "non_finite_by_feature": non_finite,
        "examples": examples,
    }


def quarantine_counts(
    con: duckdb.DuckDBPyConnection, dates: Sequence[date], thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> dict:
    """Quarantined rows per reason, table and symbol, and their share of the rows received per partition; passes
    while no partition sets aside more than `max_quarantine_share` (a few bad ticks are normal; a flood means a
    broken source or a misnamed file, and the day must not reach a model quietly)."""
    days = _dates(dates)
    max_fraction = float(thresholds.max_quarantine_share)
    with registered(con, _date_frame(days)) as dv:
        q = f"(SELECT q.* FROM raw.quarantine q JOIN {dv} d USING (session_date))"
        by_reason = dict(con.execute(f"SELECT reason, count(*) FROM {q} GROUP BY ALL ORDER BY ALL").fetchall())
        by_table = dict(con.execute(f"SELECT table_name, count(*) FROM {q} GROUP BY ALL ORDER BY ALL").fetchall())
        by_symbol = dict(con.execute(f"SELECT symbol, count(*) FROM {q} GROUP BY ALL ORDER BY ALL").fetchall())
        kept = " UNION ALL ".join(
            f"SELECT session_date, count(*) AS n FROM {t} JOIN {dv} USING (session_date) GROUP BY ALL"
            for t in ("raw.ticks", "raw.quotes", "raw.minute_bars")
        )
        per_date = con.execute(
            f"""SELECT d.session_date::DATE, coalesce(k.n, 0) AS kept, coalesce(b.n, 0) AS quarantined
                FROM {dv} d
                LEFT JOIN (SELECT session_date, sum(n) AS n FROM ({kept}) GROUP BY ALL) k USING (session_date)
                LEFT JOIN (SELECT session_date, count(*) AS n FROM {q} GROUP BY ALL) b USING (session_date)
                ORDER BY 1"""
        ).fetchall()
        examples = query_polars(
            con,
            f"SELECT table_name, session_date, symbol, ts, reason, payload FROM {q} ORDER BY ALL LIMIT {MAX_EXAMPLES}",
        )
    shares = {d.isoformat(): (bad / (k + bad) if k + bad else 0.0) for d, k, bad in per_date}
    quarantined = sum(by_reason.values())
    received = sum(int(k) + int(bad) for _, k, bad in per_date)
    over = {d: share for d, share in shares.items() if share > max_fraction}
    return {
        "passed": not over,
        "dates": [d.isoformat() for d in days],
        "quarantined": int(quarantined),
        "received": int(received),
        "fraction": float(quarantined / received if received else 0.0),
        "max_fraction": max_fraction,
        "worst_fraction": float(max(shares.values(), default=0.0)),
        "partitions_over": over,
        "by_reason": {k: int(v) for k, v in by_reason.items()},
        "by_table": {k: int(v) for k, v in by_table.items()},
        "by_symbol": {k: int(v) for k, v in by_symbol.items()},
        "examples": _examples(examples),
    }


def _checked(symbol: str, day: date) -> str:
    """The symbol whose coverage is checked: a futures root stands for its front contract that day (the next one
    trades thinly until the roll, as on a real tape)."""
    from market.futures import calendar_front, is_root

    return calendar_front(symbol, day) if is_root(symbol) else symbol


def session_coverage(
    con: duckdb.DuckDBPyConnection,
    dates: Sequence[date],
    symbols: Sequence[str],
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> dict:
    """Every (symbol, session) asked for must have stored ticks covering its session, and no open vendor gap (a
    futures root: its front contract).

    Listed: sessions without ticks (against each symbol's calendar), with the source's reason where it gave one;
    sessions whose last fetch found nothing while ticks from an earlier fetch are still stored ("kept"); and
    partial sessions: trades in fewer than `min_traded_share` of the session's minutes, or ticks starting or ending
    more than `max_early_end_minutes` inside the session (a recording cut short, a file that stops at 14:51)."""
    days = _dates(dates)
    pairs = [(_checked(s, d), d) for s in dict.fromkeys(symbols) for d in days if _trades_on(s, d)]
    wanted = symbol_sessions(pairs)
    slack = int(thresholds.max_early_end_minutes)
    with registered(con, wanted) as wv:
        gaps = query_polars(
            con,
            f"""SELECT w.symbol, w.session_date, g.source,
                       coalesce(g.reason, 'no ticks stored') AS reason,
                       t.symbol IS NOT NULL AS ticks_kept
                FROM (SELECT symbol, session_date::DATE AS session_date FROM {wv}) w
                LEFT JOIN (SELECT DISTINCT symbol, session_date FROM raw.ticks
                           WHERE session_date IN (SELECT session_date FROM {wv})) t USING (symbol, session_date)
                LEFT JOIN raw.ingest_gaps g USING (symbol, session_date)
                WHERE t.symbol IS NULL OR g.symbol IS NOT NULL
                ORDER BY w.session_date, w.symbol""",
        )
        # traded minutes counted on integer nanoseconds: date_trunc('minute', ts) rounds a TIMESTAMP_NS to us first
        partial = query_polars(
            con,
            f"""SELECT w.symbol, w.session_date, t.traded_minutes, w.minutes,
                       round(t.traded_minutes / w.minutes, 4) AS traded_share, t.first_ts, t.last_ts
                FROM {wv} w
                JOIN (SELECT symbol, session_date, count(DISTINCT epoch_ns(ts) // 60000000000) AS traded_minutes,
                             min(ts) AS first_ts, max(ts) AS last_ts
                      FROM raw.ticks WHERE session_date IN (SELECT session_date FROM {wv}) GROUP BY ALL) t
                USING (symbol, session_date)
                WHERE t.traded_minutes < {float(thresholds.min_traded_share)} * w.minutes
                   OR t.last_ts < w.close - INTERVAL {slack} MINUTE
                   OR t.first_ts >= w.open + INTERVAL {slack} MINUTE
                ORDER BY ALL""",
        )
    missing = int((~gaps["ticks_kept"]).sum())
    return {
        "passed": gaps.height == 0 and partial.height == 0,
        "dates": [d.isoformat() for d in days],
        "expected": int(wanted.height),
        "gaps": int(gaps.height),
        "without_ticks": missing,
        "vendor_gaps_with_ticks_kept": int(gaps.height - missing),
        "partial_sessions": int(partial.height),
        "min_traded_share": float(thresholds.min_traded_share),
        "max_early_end_minutes": slack,
        "gap_list": _examples(gaps, n=50),
        "partial_list": _examples(partial, n=50),
    }


def _trades_on(symbol: str, day: date) -> bool:
    """True when `symbol`'s exchange holds a session on `day` (another calendar's days are not gaps)."""
    return is_session(day, get_symbol(symbol, day).session_rule)


def extreme_bar_returns(
    con: duckdb.DuckDBPyConnection, dates: Sequence[date], thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> dict:
    """One-minute close-to-close moves beyond `max_bar_return_pct` within a session, listed for review: a bad print
    that passed the plausibility band, or a real shock worth knowing about before a model learns from it."""
    days = _dates(dates)
    limit = float(thresholds.max_bar_return_pct)
    with registered(con, _date_frame(days)) as dv:
        moves = query_polars(
            con,
            f"""SELECT * FROM (
                    SELECT symbol, session_date, minute, lag(close) OVER w AS previous_close, close,
                           round(100 * (close / lag(close) OVER w - 1), 4) AS return_pct
                    FROM core.bars_1m JOIN {dv} USING (session_date)
                    WINDOW w AS (PARTITION BY symbol, session_date ORDER BY minute))
                WHERE abs(return_pct) > {limit} ORDER BY abs(return_pct) DESC, symbol, minute""",
        )
    return {
        "passed": moves.height == 0,
        "dates": [d.isoformat() for d in days],
        "max_bar_return_pct": limit,
        "extreme_bars": int(moves.height),
        "examples": _examples(moves),
    }


def quote_coverage(con: duckdb.DuckDBPyConnection, dates: Sequence[date]) -> dict:
    """Tradable symbols whose session had no quote at all: their spread comes from the instrument's spread model
    (e.g. one tick), so costs are assumed, not observed. Indexes are not traded and are left out."""
    days = _dates(dates)
    with registered(con, _date_frame(days)) as dv:
        rows = con.execute(
            f"""SELECT symbol, session_date, any_value(mean_spread) FROM core.bars_1m JOIN {dv} USING (session_date)
                GROUP BY ALL HAVING bool_and(spread_modelled) ORDER BY ALL"""
        ).fetchall()
    modelled = [
        {"symbol": s, "session_date": d.isoformat(), "assumed_spread": float(x), "reason": _spread_reason(s, d)}
        for s, d, x in rows
        if not get_symbol(s, d).is_index
    ]
    return {
        "passed": not modelled,
        "dates": [d.isoformat() for d in days],
        "sessions_without_quotes": len(modelled),
        "modelled": modelled[:50],
    }


def _spread_reason(symbol: str, day: date) -> str:
    spec = get_symbol(symbol, day)
    unit = "ticks" if spec.spread_model == "ticks" else "bps"
    return f"no quotes stored: spread set to {spec.spread:g} {unit} by the instrument's spread model"


def vendor_bar_agreement(
    con: duckdb.DuckDBPyConnection, dates: Sequence[date], max_close_diff: float = 1e-3, max_fraction: float = 0.01
) -> dict:
    """Our tick-built bars against the vendor's own minute bars, where the vendor sent any.

    A vendor bar on a minute where we hold no trade means ticks went missing (a truncated page, issue #72 of the
    Polygon client); a close differing by more than `max_close_diff` (relative) means the two disagree on price.
    Both are counted over the vendor's regular-session bars; it passes while each is at most `max_fraction`."""
    days = _dates(dates)
    sessions = symbol_sessions(_stored_pairs(con, "core.bars_1m", days)).drop("minutes")
    with registered(con, sessions) as sv:
        # v.minute: the bar's start as a TIMESTAMP, exactly (v.ts::TIMESTAMP would round nanoseconds; see bars_1m.sql)
        vendor = f"""(SELECT v.symbol, v.minute, v.close AS vendor_close, b.close, b.trade_count
                      FROM (SELECT *, make_timestamp(epoch_ns(ts) // 60000000000 * 60000000) AS minute
                            FROM raw.minute_bars) v
                      JOIN {sv} s ON s.symbol = v.symbol AND s.session_date = v.session_date
                        AND v.ts >= s.open AND v.ts < s.close
                      LEFT JOIN core.bars_1m b ON b.symbol = v.symbol AND b.minute = v.minute)"""
        bad = "coalesce(trade_count, 0) = 0 OR abs(close - vendor_close) > $tol * vendor_close"
        row = con.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE coalesce(trade_count, 0) = 0),
                       count(*) FILTER (WHERE trade_count > 0 AND abs(close - vendor_close) > $tol * vendor_close)
                FROM {vendor}""",
            {"tol": max_close_diff},
        ).fetchone()
        examples = query_polars(
            con, f"SELECT * FROM {vendor} WHERE {bad} ORDER BY ALL LIMIT {MAX_EXAMPLES}", {"tol": max_close_diff}
        )
    compared, missing, differ = (int(x) for x in row)
    passed = compared == 0 or (missing <= max_fraction * compared and differ <= max_fraction * compared)
    return {
        "passed": bool(passed),
        "dates": [d.isoformat() for d in days],
        "vendor_bars": compared,
        "minutes_without_our_trades": missing,
        "close_mismatches": differ,
        "max_close_diff": float(max_close_diff),
        "max_fraction": float(max_fraction),
        "examples": _examples(examples),
    }


def _same(a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
    """Rows of `a` whose features differ from `b` (joined on the keys; null and NaN count as equal)."""
    a = a.with_columns(pl.lit(True).alias("_in_a"))
    b = b.with_columns(pl.lit(True).alias("_in_b"))
    joined = a.join(b, on=[*KEYS, "minute"], how="full", suffix="_other", coalesce=True)
    diff = pl.col("_in_a").is_null() | pl.col("_in_b").is_null()
    for n in FEATURES:
        x, y = pl.col(n).fill_nan(None), pl.col(f"{n}_other").fill_nan(None)
        diff = diff | (x.is_null() != y.is_null()) | (x != y).fill_null(False)
    return joined.filter(diff).select(*KEYS, "minute")


def truncation_invariance(
    con: duckdb.DuckDBPyConnection, dates: Sequence[date], cuts: Sequence[int] = DEFAULT_TRUNCATION_CUTS
) -> dict:
    """No look-ahead, checked on stored data: features recomputed from each day's bars cut after minute
    index t equal the full-day values at or before t (exactly), and the stored features equal a fresh
    recomputation (so they are not stale)."""
    days = _dates(dates)
    mismatches, stale, examples = 0, 0, []
    for d in days:
        bars = query_polars(con, "SELECT * FROM core.bars_1m WHERE session_date = ? ORDER BY symbol, minute", [d])
        if not bars.height:
            continue
        full = compute_features(bars)
        stored = query_polars(con, "SELECT * FROM core.features_1m WHERE session_date = ? ORDER BY symbol, minute", [d])
        stale_rows = _same(full, stored)
        stale += stale_rows.height
        examples += [{"kind": "stored_differs", **r} for r in _examples(stale_rows, 2)]
        opens = symbol_sessions((s, d) for s in bars["symbol"].unique().to_list()).select(
            "symbol", pl.col("open").alias("_opened")
        )
        bars = bars.join(opens, on="symbol", how="left", maintain_order="left")
        full = full.join(opens, on="symbol", how="left", maintain_order="left")
        for t in cuts:
            limit = pl.col("_opened") + pl.duration(minutes=t)  # each symbol cut t minutes after its own open
            cut = compute_features(bars.filter(pl.col("minute") <= limit).drop("_opened"))
            bad = _same(cut, full.filter(pl.col("minute") <= limit).drop("_opened"))
            mismatches += bad.height
            examples += [{"kind": f"cut_at_{t}", **r} for r in _examples(bad, 2)]
    return {
        "passed": mismatches == 0 and stale == 0,
        "dates": [d.isoformat() for d in days],
        "cuts": list(cuts),
        "mismatched_rows": int(mismatches),
        "stale_rows": int(stale),
        "examples": examples[:MAX_EXAMPLES],
    }
