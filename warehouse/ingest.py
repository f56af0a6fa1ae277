"""Ingest one session: fetch every symbol's raw tape, validate it, then replace the raw partitions at once.

Everything that can fail (the fetch, malformed frames) happens before the first write, and the writes for
raw.ticks, raw.quotes, raw.minute_bars, raw.quarantine and raw.ingest_gaps share ONE transaction, so a failure
leaves the stored day as it was. The replaced partition is (session_date, the ingested symbols): ingesting one
symbol never deletes another's data.
A symbol the source has nothing for (`MissingDataError`) is a gap: its stored rows stay as they were and the gap
is recorded with the source's reason. Pre- and after-hours rows are dropped (and counted) unless
`extended_hours`, in which case the session window widens to 04:00-20:00 New York.
Quarantine rows carry the symbol whose tape they came in (the received symbol is in the payload).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import numpy as np
import polars as pl

from market.calendar import fetch_window, is_session
from market.futures import expand_roots
from market.sources import DayTape, MarketSource, MissingDataError
from market.symbols import SymbolSpec, get_symbol
from warehouse.db import utc_now
from warehouse.partitions import PartitionWrite, replace_partitions
from warehouse.validate import split_extended, validate_bars, validate_quotes, validate_trades


@dataclass(frozen=True)
class IngestStats:
    """What one ingest wrote: rows per table, quarantined rows per reason, and where the time went."""

    session_date: date
    source: str
    symbols: tuple[str, ...]
    ticks: int
    quotes: int
    quarantined: int
    bars: int = 0
    extended_dropped: int = 0
    gaps: dict[str, str] = field(default_factory=dict)  # symbol -> the source's reason
    closed: tuple[str, ...] = ()  # symbols whose exchange has no session that day (another calendar's day)
    reasons: dict[str, int] = field(default_factory=dict)
    ticks_by_symbol: dict[str, int] = field(default_factory=dict)
    fetch_s: float = 0.0
    validate_s: float = 0.0
    write_s: float = 0.0


@dataclass(frozen=True)
class _SymbolWrites:
    """What one symbol's fetched tape becomes: partition writes, its quarantine and what was dropped."""

    parts: list[PartitionWrite]
    quarantine: pl.DataFrame | None  # None when the source fetched no stream at all
    extended_dropped: int
    ticks: int | None  # clean trades kept, None when trades were not fetched


def _symbol_writes(
    tape: DayTape,
    spec: SymbolSpec,
    session_date: date,
    window: tuple[np.datetime64, np.datetime64],
    extended_hours: bool,
    source_name: str,
    now: datetime,
) -> _SymbolWrites:
    """Validate each stream the source fetched; a stream not fetched (None) keeps its stored rows and quarantine."""
    scope = {"symbol": [spec.symbol]}
    streams = [(tape.trades, validate_trades, "ticks"), (tape.quotes, validate_quotes, "quotes")]
    streams.append((tape.bars, validate_bars, "minute_bars"))
    parts: list[PartitionWrite] = []
    replaced, bad_rows = [], []
    dropped, ticks = 0, None
    for frame, validate, name in streams:
        if frame is None:  # not fetched (switched off): the stored rows stay as they are
            continue
        if not extended_hours:
            frame, n = split_extended(frame, session_date, spec.session_rule)
            dropped += n
        clean, bad = validate(frame, spec, session_date, window)
        if name == "ticks":
            ticks = clean.height
        replaced.append(name)
        bad_rows.append(bad)
        # One insert per symbol with the symbol as a SQL constant (a repeated string column costs more).
        rows = clean.drop("symbol", "session_date")
        parts.append(PartitionWrite(f"raw.{name}", frame=rows, constants={"symbol": spec.symbol}, extra_where=scope))
    if not replaced:
        return _SymbolWrites(parts, None, dropped, ticks)
    bad_all = pl.concat(bad_rows).with_columns(
        pl.lit(spec.symbol).alias("symbol"),
        pl.lit(source_name).alias("source"),
        pl.lit(now, dtype=pl.Datetime("us")).alias("quarantined_at"),
    )
    where = {**scope, "table_name": replaced}  # a stream not fetched keeps its quarantined rows too
    parts.append(PartitionWrite("raw.quarantine", frame=bad_all, extra_where=where))
    return _SymbolWrites(parts, bad_all, dropped, ticks)


@dataclass(frozen=True)
class PreparedDay:
    """A session fetched and validated, before anything is stored: what `ingest_day` writes to DuckDB and
    `warehouse.staging.stage_day` commits to a staging store instead."""

    session_date: date
    source: str
    symbols: tuple[str, ...]
    parts: list[PartitionWrite]
    gaps: dict[str, str]
    closed: tuple[str, ...]
    reasons: dict[str, int]
    ticks_by_symbol: dict[str, int]
    extended_dropped: int
    fetch_s: float
    validate_s: float

    def stats(self, counts: dict[str, int], write_s: float) -> IngestStats:
        """The ingest's statistics, given the rows written per table."""
        return IngestStats(
            session_date=self.session_date,
            source=self.source,
            symbols=self.symbols,
            ticks=counts.get("raw.ticks", 0),
            quotes=counts.get("raw.quotes", 0),
            quarantined=counts.get("raw.quarantine", 0),
            bars=counts.get("raw.minute_bars", 0),
            extended_dropped=self.extended_dropped,
            gaps=self.gaps,
            closed=self.closed,
            reasons=self.reasons,
            ticks_by_symbol=self.ticks_by_symbol,
            fetch_s=self.fetch_s,
            validate_s=self.validate_s,
            write_s=write_s,
        )


def prepare_day(
    source: MarketSource,
    symbols: Sequence[str],
    session_date: date,
    *,
    extended_hours: bool = False,
) -> PreparedDay:
    """Fetch + validate all `symbols` for `session_date` into the partition writes that replace their raw rows.

    A futures root (ES) stands for its two nearest listed contracts that day, each stored under its own symbol.
    Each symbol follows its own instrument's calendar: a symbol whose exchange is closed that day is skipped and
    listed in `closed` (its stored rows stay); ValueError when none of them trades that day.
    Per symbol and stream: a stream the source did not fetch (None) keeps its stored rows and quarantine; a symbol
    the source has nothing for (MissingDataError) keeps all of them and is recorded as a gap. ValueError for an
    unknown symbol or a non-session date (before anything is fetched).
    """
    if isinstance(symbols, str):
        symbols = [symbols]
    names = expand_roots(list(dict.fromkeys(symbols)), session_date)
    if not names:
        raise ValueError("ingest_day needs at least one symbol")
    specs = [get_symbol(s, session_date) for s in names]
    closed = [s.symbol for s in specs if not is_session(session_date, s.session_rule)]
    if len(closed) == len(specs):
        rules = ", ".join(sorted({str(s.session_rule) for s in specs}))
        raise ValueError(f"{session_date} is not a session of {', '.join(names)} ({rules})")

    fetch_s = validate_s = 0.0
    gaps: dict[str, str] = {}
    parts: list[PartitionWrite] = []
    quarantine: list[pl.DataFrame] = []
    dropped = 0
    ticks_by_symbol: dict[str, int] = {}
    now = utc_now()
    source_name = getattr(source, "name", type(source).__name__)
    for spec in specs:
        if spec.symbol in closed:  # another calendar's trading day: this instrument's exchange is closed
            continue
        window = fetch_window(session_date, extended_hours, spec.session_rule)
        t0 = time.perf_counter()
        try:
            tape = source.fetch_day(spec.symbol, session_date)
        except MissingDataError as exc:
            gaps[spec.symbol] = str(exc) or "no data"
            fetch_s += time.perf_counter() - t0
            continue
        t1 = time.perf_counter()
        fetch_s += t1 - t0
        written = _symbol_writes(tape, spec, session_date, window, extended_hours, source_name, now)
        parts += written.parts
        dropped += written.extended_dropped
        if written.ticks is not None:
            ticks_by_symbol[spec.symbol] = written.ticks
        if written.quarantine is not None:
            quarantine.append(written.quarantine)
        validate_s += time.perf_counter() - t1

    gap_rows = pl.DataFrame(
        {"symbol": list(gaps), "reason": list(gaps.values())}, schema={"symbol": pl.Utf8, "reason": pl.Utf8}
    ).with_columns(pl.lit(source_name).alias("source"), pl.lit(now, dtype=pl.Datetime("us")).alias("recorded_at"))
    # Gaps are replaced for every symbol asked for: a symbol fetched now is no longer a gap.
    traded = [n for n in names if n not in closed]
    parts.append(PartitionWrite("raw.ingest_gaps", frame=gap_rows, extra_where={"symbol": traded}))
    reasons = Counter(r for bad in quarantine for r in bad["reason"].to_list())
    return PreparedDay(
        session_date=session_date,
        source=source_name,
        symbols=tuple(names),
        parts=parts,
        gaps=gaps,
        closed=tuple(closed),
        reasons=dict(sorted(reasons.items())),
        ticks_by_symbol=ticks_by_symbol,
        extended_dropped=dropped,
        fetch_s=fetch_s,
        validate_s=validate_s,
    )


def ingest_day(
    con: duckdb.DuckDBPyConnection,
    source: MarketSource,
    symbols: Sequence[str],
    session_date: date,
    *,
    extended_hours: bool = False,
) -> IngestStats:
    """`prepare_day`, then replace the raw partitions it names in ONE transaction (nothing written on failure)."""
    prepared = prepare_day(source, symbols, session_date, extended_hours=extended_hours)
    t0 = time.perf_counter()
    counts = replace_partitions(con, session_date, prepared.parts)
    return prepared.stats(counts, time.perf_counter() - t0)
