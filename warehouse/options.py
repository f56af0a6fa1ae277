"""Same-day option chains into the warehouse: each session's chain from the underlyings' stored bars, its quote rules
applied, sound rows to core.options_chain_1m and broken ones quarantined with their reason, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import polars as pl

from market.calendar import is_session, session_bounds
from market.option_chain import STRIKE_STEP, ChainConfig, chain_day, chain_violations
from warehouse.db import query_polars, utc_now
from warehouse.partitions import PartitionWrite, replace_partitions

TABLE = "options_chain_1m"


@dataclass(frozen=True)
class ChainStats:
    """What one session's build wrote."""

    session_date: date
    underlyings: tuple[str, ...]
    rows: int
    contracts: int
    quarantined: int
    reasons: dict[str, int]


def build_chain(
    con: duckdb.DuckDBPyConnection,
    session_date: date,
    underlyings: Sequence[str],
    cfg: ChainConfig = ChainConfig(),  # noqa: B008 - frozen, validated defaults
    source: str = "embedded",
) -> ChainStats:
    """Price `session_date`'s chains of the `underlyings` with option chains (SPY, QQQ, SPX) from core.bars_1m and
    replace the partition; an NYSE holiday (a CME-only partition) writes nothing. ValueError when an underlying has
    no bars that session."""
    names = [s for s in dict.fromkeys(underlyings) if s in STRIKE_STEP]
    if not names or not is_session(session_date):
        return ChainStats(session_date, (), 0, 0, 0, {})
    _, close = session_bounds(session_date)
    close_ns = int(close.astype("datetime64[ns]").astype(np.int64))
    bars = query_polars(
        con,
        "SELECT symbol, minute, close FROM core.bars_1m WHERE session_date = ? AND symbol IN "
        f"({', '.join('?' * len(names))}) ORDER BY symbol, minute",
        [session_date, *names],
    )
    chains = []
    for name in names:
        own = bars.filter(pl.col("symbol") == name)
        if own.is_empty():
            raise ValueError(f"{name} has no bars on {session_date}: materialize bars_1m before its option chain")
        minute = own["minute"].cast(pl.Datetime("ns")).to_numpy()
        chains.append(chain_day(name, session_date, minute, own["close"].to_numpy(), close_ns, cfg))
    chain = pl.concat(chains)
    bad = chain_violations(chain, cfg.rate)
    keys = ["contract", "minute"]
    clean = chain.join(bad.select(keys).unique(), on=keys, how="anti")
    quarantine = bad.select(
        pl.lit(source).alias("source"),
        pl.lit(TABLE).alias("table_name"),
        pl.col("session_date"),
        pl.col("underlying").alias("symbol"),  # the contract is in the payload
        pl.col("minute").cast(pl.Datetime("us")).alias("ts"),
        pl.col("reason"),
        pl.struct(pl.exclude("reason")).struct.json_encode().alias("payload"),
        pl.lit(utc_now(), dtype=pl.Datetime("us")).alias("quarantined_at"),
    )
    writes = [
        PartitionWrite(f"core.{TABLE}", frame=clean, extra_where={"underlying": names}),
        PartitionWrite("raw.quarantine", frame=quarantine, extra_where={"table_name": [TABLE], "symbol": names}),
    ]
    counts = replace_partitions(con, session_date, writes)
    reasons = dict(bad.group_by("reason").len().iter_rows()) if bad.height else {}
    return ChainStats(
        session_date, tuple(names), counts.get(f"core.{TABLE}", 0), int(chain["contract"].n_unique()),
        int(bad.height), reasons,
    )  # fmt: skip


def load_chain_frame(
    con: duckdb.DuckDBPyConnection, underlyings: Sequence[str], start: date, end: date
) -> pl.DataFrame:
    """The stored chains of `underlyings` for sessions in [start, end], sorted by underlying, session, minute,
    right and strike; ValueError when an underlying has no chain stored in the range."""
    names = list(dict.fromkeys(underlyings))
    marks = ", ".join("?" * len(names))
    frame = query_polars(
        con,
        f"""SELECT underlying, session_date, minute, "right", strike, minutes_to_expiry, bid, ask, iv, delta,
                   gamma, theta, vega
            FROM core.{TABLE} WHERE underlying IN ({marks}) AND session_date BETWEEN ? AND ?
            ORDER BY underlying, session_date, minute, "right", strike""",
        [*names, start, end],
    )
    missing = sorted(set(names) - set(frame["underlying"].unique().to_list())) if frame.height else names
    if missing:
        raise ValueError(f"no option chain stored for {missing} between {start} and {end}: materialize "
                         "options_chain_1m for these sessions")  # fmt: skip
    return frame
