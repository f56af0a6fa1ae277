"""Training frames: bars joined to their features over a date range, laid out for rl.core.data.MarketDays."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
import polars as pl

from market.values import as_date
from warehouse.db import query_polars
from warehouse.features import FEATURES, UNKNOWN_FROM_VENDOR_BARS

FRAME_COLUMNS = ("symbol", "session_date", "minute", "open", "close", "mean_spread", *FEATURES)


def load_training_frame(con: duckdb.DuckDBPyConnection, symbols: Sequence[str], start: date, end: date) -> pl.DataFrame:
    """symbol, session_date, minute, open, close, mean_spread (dollars) and every FEATURES column, for
    `symbols` and sessions in [start, end], sorted by symbol, session_date, minute.

    ValueError when nothing is stored for the request, or when some bars lack their features (not built yet,
    or built from older bars): training on a silently partial frame is worse than failing.
    """
    return load_training_frame_with(con, symbols, start, end).select(FRAME_COLUMNS)


def load_training_frame_with(
    con: duckdb.DuckDBPyConnection, symbols: Sequence[str], start: date, end: date, extra: Sequence[str] = ()
) -> pl.DataFrame:
    """`load_training_frame` with `extra` bar columns (high, low) after mean_spread."""
    names = [symbols] if isinstance(symbols, str) else list(dict.fromkeys(symbols))
    if not names:
        raise ValueError("load_training_frame needs at least one symbol")
    start, end = as_date(start), as_date(end)
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    marks = ", ".join("?" * len(names))
    where = f"b.symbol IN ({marks}) AND b.session_date BETWEEN ? AND ?"
    params = [*names, start, end]
    feature_cols = ", ".join(f"f.{n}" for n in FEATURES)
    frame = query_polars(
        con,
        f"""SELECT b.symbol, b.session_date, b.minute, b.open, b.close, b.mean_spread,
                   {"".join(f"b.{c}, " for c in extra)}{feature_cols}
            FROM core.bars_1m b JOIN core.features_1m f USING (symbol, session_date, minute)
            WHERE {where}
            ORDER BY b.symbol, b.session_date, b.minute""",
        params,
    )
    n_bars = con.execute(f"SELECT count(*) FROM core.bars_1m b WHERE {where}", params).fetchone()[0]
    if not n_bars:
        raise ValueError(f"no bars for {names} between {start} and {end}; ingest and build bars and features first")
    vendor = con.execute(
        f"SELECT DISTINCT b.symbol, b.session_date FROM core.bars_1m b WHERE {where} AND b.built_from = 'vendor' "
        "ORDER BY ALL",
        params,
    ).fetchall()
    if vendor:
        listed = ", ".join(f"{s} {d}" for s, d in vendor[:5])
        raise ValueError(
            f"{len(vendor)} sessions between {start} and {end} were built from vendor minute bars ({listed}); "
            f"their {', '.join(UNKNOWN_FROM_VENDOR_BARS)} are unknown (no trade-level data), so they cannot feed "
            "this frame: import their ticks, or leave those sessions out"
        )
    if frame.height != n_bars:
        raise ValueError(
            f"{n_bars - frame.height} of {n_bars} bars for {names} between {start} and {end} "
            "have no features; "
            "rebuild features for those sessions"
        )
    return frame


FUTURES_COLUMNS = ("root", "symbol", "session_date", "minute", "open", "high", "low", "close", "mean_spread", *FEATURES)


def load_futures_frame(
    con: duckdb.DuckDBPyConnection, roots: Sequence[str], start: date, end: date, rule: str = "calendar"
) -> pl.DataFrame:
    """root, symbol (the front contract that day), session_date, minute, open, high, low, close, mean_spread and
    every FEATURES column, for each futures root's trading days in [start, end].

    The front contract of each day follows `rule` (market.futures.front_months: calendar, or volume from the
    stored bars); each day's rows are that contract's own bars, never back-adjusted and never mixed. ValueError
    (from load_training_frame) when a front contract's bars or features are missing.
    """
    from market.calendar import CME_EQUITY, sessions
    from market.futures import front_months
    from warehouse.continuous import contract_volumes

    start, end = as_date(start), as_date(end)
    frames = []
    for root in dict.fromkeys([roots] if isinstance(roots, str) else roots):
        days = sessions(start, end, CME_EQUITY)
        volumes = contract_volumes(con, root, days) if rule == "volume" else None
        fronts, _ = front_months(root, days, rule, volumes)
        wanted = pl.DataFrame({"symbol": list(fronts.values()), "session_date": list(fronts)})
        contracts = sorted(set(fronts.values()))
        frame = load_training_frame_with(con, contracts, start, end, ("high", "low"))
        frame = frame.join(wanted, on=["symbol", "session_date"], how="semi")
        frames.append(frame.with_columns(pl.lit(root).alias("root")))
    return pl.concat(frames).select(FUTURES_COLUMNS).sort("root", "session_date", "minute")
