"""Ingest one session: fetch every symbol's raw tape, validate it, then replace the raw partitions at once.

Everything that can fail (the fetch, malformed frames) happens before the first write, and the writes for
raw.ticks, raw.quotes and raw.quarantine share ONE transaction, so a failure leaves the stored day as it was.
The replaced partition is (session_date, the ingested symbols): ingesting one symbol never deletes another's
data.
Quarantine rows carry the symbol whose tape they came in (the received symbol is in the payload).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import duckdb
import polars as pl

from market.calendar import is_session
from market.sources import MarketSource
from market.symbols import get_symbol
from warehouse.db import utc_now
from warehouse.partitions import PartitionWrite, replace_partitions
from warehouse.validate import validate_quotes, validate_trades


@dataclass(frozen=True)
class IngestStats:
    """What one ingest wrote: rows per table, quarantined rows per reason, and where the time went."""

    session_date: date
    source: str
    symbols: tuple[str, ...]
    ticks: int
    quotes: int
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    ticks_by_symbol: dict[str, int] = field(default_factory=dict)
    fetch_s: float = 0.0
    validate_s: float = 0.0
    write_s: float = 0.0


def ingest_day(
    con: duckdb.DuckDBPyConnection, source: MarketSource, symbols: Sequence[str], session_date: date
) -> IngestStats:
    """Fetch + validate all `symbols` for `session_date`, then replace their raw partitions (one transaction).

    ValueError for an unknown symbol or a non-session date (before anything is fetched or written).
    """
    if isinstance(symbols, str):
        symbols = [symbols]
    names = list(dict.fromkeys(symbols))
    if not names:
        raise ValueError("ingest_day needs at least one symbol")
    specs = [get_symbol(s) for s in names]
    if not is_session(session_date):
        raise ValueError(f"{session_date} is not an NYSE session")

    fetch_s = validate_s = 0.0
    ticks, quotes, quarantine = [], [], []
    ticks_by_symbol: dict[str, int] = {}
    for spec in specs:
        t0 = time.perf_counter()
        tape = source.fetch_day(spec.symbol, session_date)
        t1 = time.perf_counter()
        clean_t, bad_t = validate_trades(tape.trades, spec, session_date)
        clean_q, bad_q = validate_quotes(tape.quotes, spec, session_date)
        validate_s += time.perf_counter() - t1
        fetch_s += t1 - t0
        ticks.append(clean_t)
        quotes.append(clean_q)
        ticks_by_symbol[spec.symbol] = clean_t.height
        for bad in (bad_t, bad_q):
            if bad.height:
                quarantine.append(bad.with_columns(pl.lit(spec.symbol).alias("symbol")))

    now = utc_now()
    source_name = getattr(source, "name", type(source).__name__)
    scope = {"symbol": names}
    writes = []
    for spec, clean_t, clean_q in zip(specs, ticks, quotes, strict=True):
        # One insert per symbol with the symbol as a SQL constant (a repeated string column costs more).
        const = {"symbol": spec.symbol}
        writes.append(
            PartitionWrite(
                "raw.ticks", frame=clean_t.drop("symbol", "session_date"), constants=const, extra_where=scope
            )
        )
        writes.append(
            PartitionWrite(
                "raw.quotes", frame=clean_q.drop("symbol", "session_date"), constants=const, extra_where=scope
            )
        )
    bad_all = (
        pl.concat(quarantine).with_columns(
            pl.lit(source_name).alias("source"),
            pl.lit(now, dtype=pl.Datetime("us")).alias("quarantined_at"),
        )
        if quarantine
        else pl.DataFrame(schema={"session_date": pl.Date})
    )
    writes.append(PartitionWrite("raw.quarantine", frame=bad_all, extra_where=scope))
    t0 = time.perf_counter()
    counts = replace_partitions(con, session_date, writes)
    write_s = time.perf_counter() - t0
    reasons = Counter(bad_all["reason"].to_list()) if bad_all.height else Counter()
    return IngestStats(
        session_date=session_date,
        source=source_name,
        symbols=tuple(names),
        ticks=counts.get("raw.ticks", 0),
        quotes=counts.get("raw.quotes", 0),
        quarantined=counts.get("raw.quarantine", 0),
        reasons=dict(sorted(reasons.items())),
        ticks_by_symbol=ticks_by_symbol,
        fetch_s=fetch_s,
        validate_s=validate_s,
        write_s=write_s,
    )
