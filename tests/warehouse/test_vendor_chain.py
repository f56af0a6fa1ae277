"""Vendor option quotes into core.options_chain_1m: priced against the stored bars to the embedded chain's own
implied volatility, unquoted minutes kept as NULL rows that OptionDays reads as unquoted, broken rows quarantined
with their reason, a vendor's gap keeping the stored rows, and a rewrite replacing the partition."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from market.option_chain import ChainConfig
from market.polygon_chain import PolygonChainSource
from market.polygon_source import PolygonConfig
from market.sources import MissingDataError, SyntheticSource
from market.synthetic import SyntheticMarketConfig
from tests.fake_polygon import add_option_chain, serve_polygon, synthetic_polygon_data
from tests.option_quotes import vendor_quotes
from warehouse.bars import build_bars
from warehouse.db import migrate, query_polars
from warehouse.ingest import ingest_day
from warehouse.options import build_chain, build_vendor_chain, fetch_vendor_chain

DAY = date(2024, 3, 5)
CONFIG = SyntheticMarketConfig(trades_per_day=2_000, quotes_per_day=500)
KEY = "pk_vendor_chain_test"
KEYS = ["contract", "minute"]


@pytest.fixture(scope="module")
def warehouse() -> tuple[duckdb.DuckDBPyConnection, pl.DataFrame]:
    """A warehouse with SPY's and SPX's bars of DAY, and their embedded chain (3 strikes either side)."""
    con = duckdb.connect()
    migrate(con)
    ingest_day(con, SyntheticSource(CONFIG), ["SPY", "SPX"], DAY)
    build_bars(con, DAY)
    build_chain(con, DAY, ["SPY", "SPX"], ChainConfig(strikes_each_side=3))
    return con, query_polars(con, "SELECT * FROM core.options_chain_1m")


def _stored(con: duckdb.DuckDBPyConnection, underlying: str) -> pl.DataFrame:
    return query_polars(con, "SELECT * FROM core.options_chain_1m WHERE underlying = ?", [underlying])


def test_iv_solved_from_fake_polygon_quotes_matches_the_embedded_chains(warehouse) -> None:
    con, embedded = warehouse
    data = synthetic_polygon_data(["SPY", "SPX"], [DAY], CONFIG, api_key=KEY)
    add_option_chain(data, vendor_quotes(embedded))
    with serve_polygon(data) as url:
        source = PolygonChainSource(PolygonConfig(base_url=url, page_retries=0), KEY, strikes_each_side=3)
        stats = fetch_vendor_chain(con, source, DAY, ["SPY", "SPX", "ES"])  # ES has no option chain here
    assert stats.underlyings == ("SPY", "SPX") and stats.gaps == {} and stats.unquoted == 0
    assert stats.rows + stats.quarantined == embedded.height
    stored = pl.concat([_stored(con, "SPY"), _stored(con, "SPX")])
    both = stored.join(embedded, on=KEYS, suffix="_e")
    assert both.height == stored.height == stats.rows
    assert (both["spot"] == both["spot_e"]).all()  # the stored bar close at the quote's minute
    assert (both["minutes_to_expiry"] == both["minutes_to_expiry_e"]).all()  # to the close, from the bar's close
    assert (both["volume"] >= 0).all() and both["volume"].sum() > 0
    live = both.filter((pl.col("vega_e") > 1e-4) & (pl.col("minutes_to_expiry") > 0))
    assert live.height > 0.8 * both.height
    assert (live["iv"] - live["iv_e"]).abs().max() < 1e-5
    assert (live["delta"] - live["delta_e"]).abs().max() < 1e-4 and (live["vega"] - live["vega_e"]).abs().max() < 1e-5
    expiry = both.filter(pl.col("minutes_to_expiry") == 0)  # the last bar: its close is the expiry
    assert expiry.height == 2 * 14 and expiry["iv"].is_null().all() and expiry["bid"].is_not_null().all()
    # a deep in-the-money premium equal to its floor to the last bit finds no volatility: quarantined, with reason
    assert set(stats.reasons) <= {"iv_out_of_bounds"} and stats.quarantined < 0.005 * embedded.height


def test_unquoted_minutes_stay_as_null_rows_and_load_as_the_familys_unquoted_cells(warehouse) -> None:
    from rl.families.zerodte.data import OptionDays
    from warehouse.datasets import load_training_frame
    from warehouse.features import build_features
    from warehouse.options import load_chain_frame

    con, embedded = warehouse
    raw = vendor_quotes(embedded.filter(pl.col("underlying") == "SPY"))
    gap = (pl.col("contract") == raw["contract"][0]) & (pl.int_range(pl.len()).over("contract") < 4)
    raw = raw.with_columns(
        pl.when(gap).then(None).otherwise(pl.col("bid")).alias("bid"),
        pl.when(pl.col("contract") == raw["contract"][-1]).then(None).otherwise(pl.col("ask")).alias("ask"),
    )  # four minutes without a bid, and a contract never offered all day
    stats = build_vendor_chain(con, DAY, raw, ["SPY"], "test")
    assert stats.unquoted == 4 + 390 and stats.rows + stats.quarantined == raw.height
    stored = _stored(con, "SPY")
    unquoted = stored.filter(pl.col("bid").is_null() | pl.col("ask").is_null())
    assert unquoted.height == 394 and unquoted.select("mid", "iv", "delta", "vega").null_count().row(0) == (394,) * 4
    build_features(con, DAY)
    days = OptionDays.from_frames(
        load_training_frame(con, ["SPY"], DAY, DAY), load_chain_frame(con, ["SPY"], DAY, DAY), ("ret_1m",)
    )
    assert days.n_contracts == 14 and days.missing_quotes() == stats.unquoted + stats.quarantined


def test_broken_rows_are_quarantined_with_their_reason_and_a_rewrite_replaces_the_partition(warehouse) -> None:
    con, embedded = warehouse
    raw = vendor_quotes(embedded.filter(pl.col("underlying") == "SPY"))
    first = raw.slice(0, 1)
    crossed = pl.int_range(pl.len()) == 100
    planted = pl.concat(
        [
            raw.with_columns(pl.when(crossed).then(pl.col("bid") + 1.0).otherwise(pl.col("ask")).alias("ask"),
                             pl.when(crossed).then(pl.col("bid") + 2.0).otherwise(pl.col("bid")).alias("bid")),
            first.with_columns(pl.col("bid") + 0.01),  # the same contract-minute again
            raw.slice(1, 1).with_columns(pl.lit("X").alias("right")),  # not a call or a put
            first.with_columns((pl.col("minute") + pl.duration(hours=7)).cast(pl.Datetime("ns"))),  # after the close
        ]
    )  # fmt: skip
    counts = "SELECT count(*) FROM core.options_chain_1m WHERE underlying = 'SPY'"
    held = "SELECT reason, count(*) FROM raw.quarantine WHERE symbol = 'SPY' GROUP BY ALL ORDER BY ALL"
    seen = []
    for _ in range(2):
        stats = build_vendor_chain(con, DAY, planted, ["SPY"], "test")
        seen.append((con.execute(counts).fetchone(), con.execute(held).fetchall(), stats.reasons))
    assert seen[0] == seen[1]  # one copy however often it is rebuilt
    reasons = dict(seen[0][1])
    assert {"duplicate": 1, "malformed": 1, "no_underlying_bar": 1, "crossed": 1}.items() <= reasons.items()
    rules = {"put_call_parity", "monotonicity", "iv_out_of_bounds"}  # the crossed row may break these too
    assert set(reasons) - {"duplicate", "malformed", "no_underlying_bar", "crossed"} <= rules
    assert con.execute(f"{counts} AND bid > ask").fetchone() == (0,) and seen[0][0][0] < raw.height
    kept = query_polars(con, "SELECT bid FROM core.options_chain_1m WHERE contract = ? AND minute = ?",
                        [first["contract"][0], first["minute"][0]])  # fmt: skip
    assert kept["bid"].to_list() == first["bid"].to_list()  # the first of a repeated contract-minute is kept
    with pytest.raises(ValueError, match="outside \\['SPY'\\]"):
        build_vendor_chain(con, DAY, raw.with_columns(pl.lit("QQQ").alias("underlying")), ["SPY"], "test")


def test_an_underlying_the_vendor_has_no_chain_for_is_a_gap_that_keeps_its_stored_rows(warehouse) -> None:
    con, embedded = warehouse
    build_chain(con, DAY, ["SPX"], ChainConfig(strikes_each_side=3))
    before = _stored(con, "SPX").sort(KEYS)
    raw = vendor_quotes(embedded.filter(pl.col("underlying") == "SPY"))

    class Partial:
        name = "partial"

        def fetch_chain(self, underlying: str, session_date: date) -> pl.DataFrame:
            if underlying == "SPX":
                raise MissingDataError("the vendor lists no SPXW option expiring that day")
            return raw

        def skipped(self, underlying: str, session_date: date) -> tuple[str, ...]:
            return ("O:SPY240305C00999000",) if underlying == "SPY" else ()

    stats = fetch_vendor_chain(con, Partial(), DAY, ["SPY", "SPX"])
    assert stats.underlyings == ("SPY",) and stats.gaps == {"SPX": "the vendor lists no SPXW option expiring that day"}
    assert stats.skipped == ("O:SPY240305C00999000",) and stats.rows > 0
    assert _stored(con, "SPX").sort(KEYS).equals(before)
    with pytest.raises(ValueError, match="QQQ has no bars on 2024-03-05"):
        fetch_vendor_chain(con, Partial(), DAY, ["QQQ"])  # refused before any request
