"""Option chains into the warehouse: one copy per session however often it is rebuilt, broken rows quarantined with
their reason, and nothing on a CME-only day."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from market.option_chain import ChainConfig
from market.sources import SyntheticSource
from market.synthetic import SyntheticMarketConfig
from warehouse.bars import build_bars
from warehouse.db import migrate
from warehouse.ingest import ingest_day
from warehouse.options import build_chain

DAY = date(2024, 3, 5)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    migrate(con)
    source = SyntheticSource(SyntheticMarketConfig(trades_per_day=3_000, quotes_per_day=1_000))
    for d in (DAY, date(2024, 1, 15)):
        ingest_day(con, source, ["SPY", "QQQ", "SPX", "ES"], d)
        build_bars(con, d)
    return con


def test_a_session_chain_is_stored_once_with_its_greeks(con) -> None:
    cfg = ChainConfig(strikes_each_side=5)
    first = build_chain(con, DAY, ["SPY", "QQQ", "SPX", "ES"], cfg)
    again = build_chain(con, DAY, ["SPY", "QQQ", "SPX"], cfg)
    assert first.underlyings == ("SPY", "QQQ", "SPX") and first.quarantined == 0  # ES has no chain here
    assert first.rows == again.rows == 3 * 390 * 2 * 11 and first.contracts == 3 * 22
    stored = con.execute("SELECT count(*), count(DISTINCT contract) FROM core.options_chain_1m").fetchone()
    assert stored == (first.rows, 66)
    row = con.execute(
        "SELECT bid, ask, mid, iv, delta FROM core.options_chain_1m WHERE \"right\" = 'C' AND minutes_to_expiry > 60 "
        "ORDER BY abs(strike - spot) LIMIT 1"
    ).fetchone()
    assert row[0] < row[2] < row[1] and 0.05 < row[3] < 1.0 and 0.3 < row[4] < 0.7  # an at-the-money call


def test_broken_quotes_go_to_quarantine_with_their_reason(con, monkeypatch: pytest.MonkeyPatch) -> None:
    import warehouse.options as options

    real = options.chain_day

    def crossing(*args, **kwargs) -> pl.DataFrame:
        chain = real(*args, **kwargs)
        return chain.with_columns(
            pl.when(pl.int_range(pl.len()) < 3).then(pl.col("ask") + 1.0).otherwise(pl.col("bid")).alias("bid")
        )

    monkeypatch.setattr(options, "chain_day", crossing)
    stats = build_chain(con, DAY, ["SPY"], ChainConfig(strikes_each_side=5))
    assert stats.quarantined >= 3 and stats.reasons.get("crossed") == 3
    held = con.execute(
        "SELECT count(*) FROM raw.quarantine WHERE table_name = 'options_chain_1m' AND reason = 'crossed'"
    ).fetchone()[0]
    assert held == 3
    assert con.execute("SELECT count(*) FROM core.options_chain_1m WHERE bid > ask").fetchone()[0] == 0
    spy = "SELECT count(*) FROM raw.quarantine WHERE table_name = 'options_chain_1m' AND symbol = 'SPY'"
    assert con.execute(spy).fetchone()[0] == stats.quarantined  # crossed rows also break parity and monotonicity
    monkeypatch.setattr(options, "chain_day", real)
    build_chain(con, DAY, ["QQQ"], ChainConfig(strikes_each_side=5))  # rebuilding QQQ keeps SPY's quarantine
    assert con.execute(spy).fetchone()[0] == stats.quarantined


def test_a_cme_only_day_has_no_chain(con) -> None:
    stats = build_chain(con, date(2024, 1, 15), ["SPY", "QQQ", "SPX"])  # MLK Day: NYSE shut, futures trade
    assert stats.rows == 0 and stats.underlyings == ()


def test_stored_chains_load_back_as_the_zerodte_familys_arrays(con) -> None:
    from rl.families.zerodte.data import OptionDays
    from warehouse.datasets import load_training_frame
    from warehouse.features import build_features
    from warehouse.options import load_chain_frame

    build_chain(con, DAY, ["SPY", "SPX"], ChainConfig(strikes_each_side=5))
    build_features(con, DAY)
    chain = load_chain_frame(con, ["SPY", "SPX"], DAY, DAY)
    bars = load_training_frame(con, ["SPY", "SPX"], DAY, DAY)
    days = OptionDays.from_frames(bars, chain, ("ret_1m", "range_pos_30"))
    assert days.symbols.tolist() == ["SPX", "SPY"] and days.n_contracts == 22
    assert days.missing_quotes() == 0 and int(days.bars.length.min()) == 390
    with pytest.raises(ValueError, match="no option chain stored for \\['ES'\\]"):
        load_chain_frame(con, ["SPY", "ES"], DAY, DAY)


def test_a_range_over_several_months_loads_every_row_in_order(con) -> None:
    from warehouse.options import _months, load_chain_frame

    assert _months(date(2023, 12, 15), date(2024, 2, 3)) == [
        (date(2023, 12, 15), date(2023, 12, 31)),
        (date(2024, 1, 1), date(2024, 1, 31)),
        (date(2024, 2, 1), date(2024, 2, 3)),
    ]
    feb = date(2024, 2, 29)
    ingest_day(
        con, SyntheticSource(SyntheticMarketConfig(trades_per_day=3_000, quotes_per_day=1_000)), ["SPY", "QQQ"], feb
    )
    build_bars(con, feb)
    cfg = ChainConfig(strikes_each_side=2)
    for d in (feb, DAY):
        build_chain(con, d, ["SPY", "QQQ"], cfg)
    chain = load_chain_frame(con, ["SPY", "QQQ"], date(2024, 2, 1), DAY)
    columns = ", ".join(f'"{c}"' for c in chain.columns)
    direct = con.execute(
        f"SELECT {columns} FROM core.options_chain_1m WHERE underlying IN ('SPY', 'QQQ') AND session_date "
        "BETWEEN DATE '2024-02-01' AND ? ORDER BY underlying, session_date, minute, \"right\", strike",
        [DAY],
    ).fetchall()
    assert chain.rows() == direct and chain["session_date"].unique().sort().to_list() == [feb, DAY]
