"""Data-quality checks over the warehouse, as plain dicts (the Dagster asset checks only wrap them).

Every result has `passed` (bool), the `dates` checked (ISO strings), integer counts at the top level (Dagster
plots numeric metadata across materializations) and a few `examples` rows; everything is JSON-serializable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import duckdb
import numpy as np
import polars as pl

from warehouse.db import query_polars, registered
from warehouse.features import FEATURES, KEYS, WARMUP_MINUTES, compute_features
from warehouse.sessions import minute_grid, symbol_sessions

MAX_EXAMPLES = 5
DEFAULT_TRUNCATION_CUTS = (0, WARMUP_MINUTES - 1, WARMUP_MINUTES, 90, 240)


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


def bar_integrity(con: duckdb.DuckDBPyConnection, dates: Sequence[date]) -> dict:
    """Bars must be consistent OHLC (low <= open, close <= high; vwap inside), unique per (symbol, minute),
    non-negative in volume, and cover exactly the calendar's minutes for every symbol present that day."""
    days = _dates(dates)
    grid = minute_grid(_stored_pairs(con, "core.bars_1m", days))
    with registered(con, _date_frame(days)) as dv, registered(con, grid) as gv:
        bars = f"(SELECT b.* FROM core.bars_1m b JOIN {dv} d USING (session_date))"
        n_bars = con.execute(f"SELECT count(*) FROM {bars}").fetchone()[0]
        checks = {
            "ohlc_violations": f"""SELECT symbol, session_date, minute, open, high, low, close FROM {bars}
                WHERE NOT coalesce(low <= least(open, close) AND greatest(open, close) <= high
                                   AND isfinite(open + high + low + close), false)""",
            "vwap_outside_range": f"""SELECT symbol, session_date, minute, low, vwap, high FROM {bars}
                WHERE NOT coalesce(vwap BETWEEN low - 1e-9 * abs(low) AND high + 1e-9 * abs(high), false)""",
            "negative_volume": f"""SELECT symbol, session_date, minute, volume, buy_volume, sell_volume
                FROM {bars}
                WHERE NOT coalesce(volume >= 0 AND buy_volume >= 0 AND sell_volume >= 0
                                   AND buy_volume + sell_volume <= volume * (1 + 1e-9), false)""",
            "duplicate_minutes": f"""SELECT symbol, session_date, minute, count(*) - 1 AS extra FROM {bars}
                GROUP BY ALL HAVING count(*) > 1""",
            "missing_minutes": f"""SELECT g.symbol, g.session_date, g.minute FROM {gv} g
                ANTI JOIN {bars} b
                ON b.symbol = g.symbol AND b.session_date = g.session_date AND b.minute = g.minute""",
            "extra_minutes": f"""SELECT b.symbol, b.session_date, b.minute FROM {bars} b
                ANTI JOIN {gv} g
                ON g.symbol = b.symbol AND g.session_date = b.session_date AND g.minute = b.minute""",
            "empty_dates": f"SELECT session_date FROM {dv} ANTI JOIN {bars} b USING (session_date)",
        }
        result: dict[str, Any] = {"dates": [d.isoformat() for d in days], "bars": int(n_bars)}
        examples: dict[str, list] = {}
        for name, sql in checks.items():
            rows = query_polars(con, f"SELECT * FROM ({sql}) ORDER BY ALL")
            count = int(rows["extra"].sum()) if name == "duplicate_minutes" and rows.height else rows.height
            result[name] = count
            if count:
                examples[name] = _examples(rows)
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
    bad_any = " OR ".join(f"NOT coalesce(isfinite({n}), false)" for n in names)
    per_col = ", ".join(f"count(*) FILTER (WHERE NOT coalesce(isfinite({n}), false)) AS {n}" for n in names)
    with registered(con, _warm_filter(_stored_pairs(con, "core.bars_1m", days), warmup)) as wv:
        warm = f"""(SELECT f.* FROM core.features_1m f JOIN {wv} w USING (symbol, session_date)
                    WHERE f.minute >= w.warm_from)"""
        checked = con.execute(f"SELECT count(*) FROM {warm}").fetchone()[0]
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
        "non_finite_by_feature": non_finite,
        "examples": examples,
    }


def quarantine_counts(con: duckdb.DuckDBPyConnection, dates: Sequence[date], max_fraction: float = 0.01) -> dict:
    """Quarantined rows per reason, table and symbol; passes while they are at most `max_fraction` of all rows
    received (a few bad ticks are normal; a flood means a broken source)."""
    days = _dates(dates)
    with registered(con, _date_frame(days)) as dv:
        q = f"(SELECT q.* FROM raw.quarantine q JOIN {dv} d USING (session_date))"
        by_reason = dict(con.execute(f"SELECT reason, count(*) FROM {q} GROUP BY ALL ORDER BY ALL").fetchall())
        by_table = dict(con.execute(f"SELECT table_name, count(*) FROM {q} GROUP BY ALL ORDER BY ALL").fetchall())
        by_symbol = dict(con.execute(f"SELECT symbol, count(*) FROM {q} GROUP BY ALL ORDER BY ALL").fetchall())
        kept = con.execute(
            f"""SELECT (SELECT count(*) FROM raw.ticks JOIN {dv} USING (session_date))
                     + (SELECT count(*) FROM raw.quotes JOIN {dv} USING (session_date))
                     + (SELECT count(*) FROM raw.minute_bars JOIN {dv} USING (session_date))"""
        ).fetchone()[0]
        examples = query_polars(
            con,
            f"SELECT table_name, session_date, symbol, ts, reason, payload FROM {q} ORDER BY ALL LIMIT {MAX_EXAMPLES}",
        )
    quarantined = sum(by_reason.values())
    received = kept + quarantined
    fraction = quarantined / received if received else 0.0
    return {
        "passed": fraction <= max_fraction,
        "dates": [d.isoformat() for d in days],
        "quarantined": int(quarantined),
        "received": int(received),
        "fraction": float(fraction),
        "max_fraction": float(max_fraction),
        "by_reason": {k: int(v) for k, v in by_reason.items()},
        "by_table": {k: int(v) for k, v in by_table.items()},
        "by_symbol": {k: int(v) for k, v in by_symbol.items()},
        "examples": _examples(examples),
    }


def session_coverage(con: duckdb.DuckDBPyConnection, dates: Sequence[date], symbols: Sequence[str]) -> dict:
    """Every (symbol, session) asked for must have stored ticks and no open vendor gap.

    Listed: sessions without ticks (against the calendar), with the source's reason where it gave one, and sessions
    whose last fetch found nothing (a vendor's missing day, an explicit "no data", a missing file) while ticks from
    an earlier fetch are still stored ("kept")."""
    days = _dates(dates)
    wanted = pl.DataFrame({"symbol": list(dict.fromkeys(symbols))}).join(_date_frame(days), how="cross")
    with registered(con, wanted) as wv:
        gaps = query_polars(
            con,
            f"""SELECT w.symbol, w.session_date, g.source,
                       coalesce(g.reason, 'no ticks stored') AS reason,
                       t.symbol IS NOT NULL AS ticks_kept
                FROM (SELECT symbol, session_date::DATE AS session_date FROM {wv}) w
                LEFT JOIN (SELECT DISTINCT symbol, session_date FROM raw.ticks) t USING (symbol, session_date)
                LEFT JOIN raw.ingest_gaps g USING (symbol, session_date)
                WHERE t.symbol IS NULL OR g.symbol IS NOT NULL
                ORDER BY w.session_date, w.symbol""",
        )
    missing = int((~gaps["ticks_kept"]).sum())
    return {
        "passed": gaps.height == 0,
        "dates": [d.isoformat() for d in days],
        "expected": int(wanted.height),
        "gaps": int(gaps.height),
        "without_ticks": missing,
        "vendor_gaps_with_ticks_kept": int(gaps.height - missing),
        "gap_list": _examples(gaps, n=50),
    }


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
        vendor = f"""(SELECT v.symbol, v.ts::TIMESTAMP AS minute, v.close AS vendor_close, b.close, b.trade_count
                      FROM raw.minute_bars v
                      JOIN {sv} s ON s.symbol = v.symbol AND s.session_date = v.session_date
                        AND v.ts >= s.open AND v.ts < s.close
                      LEFT JOIN core.bars_1m b ON b.symbol = v.symbol AND b.minute = v.ts::TIMESTAMP)"""
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
