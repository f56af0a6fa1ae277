"""Vendor-style option quotes derived from the embedded chain, for the fake Polygon and the fake TWS.

`embedded_chain` prices the embedded chain of some sessions the way the pipeline does (synthetic ticks -> bars ->
`warehouse.options.build_chain`) in an in-memory warehouse. `vendor_quotes` turns its rows into what a vendor sends:
each contract-minute's bid and ask straddle the embedded MODEL mid exactly (half the embedded spread either side,
narrowed where the mid is smaller, so no bid is negative), so a correct pricing of the vendor quotes recovers the
embedded implied volatility; and a deterministic volume (0: no trades, so Polygon sends no aggregate that minute).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import duckdb
import polars as pl

from market.option_chain import ChainConfig
from market.sources import SyntheticSource
from market.synthetic import SyntheticMarketConfig
from warehouse.bars import build_bars
from warehouse.db import migrate, query_polars
from warehouse.ingest import ingest_day
from warehouse.options import build_chain


def embedded_chain(
    config: SyntheticMarketConfig, symbols: Iterable[str], days: Iterable[date], strikes_each_side: int
) -> pl.DataFrame:
    """The stored embedded chain (core.options_chain_1m rows) of `symbols` on `days`, from the synthetic market."""
    symbols = list(symbols)
    con = duckdb.connect()
    try:
        migrate(con)
        for day in days:
            ingest_day(con, SyntheticSource(config), symbols, day)
            build_bars(con, day)
            build_chain(con, day, symbols, ChainConfig(strikes_each_side=strikes_each_side))
        return query_polars(con, "SELECT * FROM core.options_chain_1m ORDER BY contract, minute")
    finally:
        con.close()


def vendor_quotes(chain: pl.DataFrame) -> pl.DataFrame:
    """Rows (contract, underlying, right, strike, minute, bid, ask, volume) a vendor would send for `chain`."""
    half = pl.min_horizontal((pl.col("ask") - pl.col("bid")) / 2, pl.col("mid"))
    return chain.sort("contract", "minute").select(
        "contract",
        "underlying",
        "right",
        "strike",
        "minute",
        (pl.col("mid") - half).alias("bid"),
        (pl.col("mid") + half).alias("ask"),
        ((pl.int_range(pl.len()).over("contract") * 7 + pl.col("strike").cast(pl.Int64)) % 4).cast(pl.Float64)
        .alias("volume"),
    )  # fmt: skip
