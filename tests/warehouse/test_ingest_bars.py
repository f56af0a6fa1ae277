"""Ingest (fetch -> validate -> one-transaction write) and session-aware 1-minute bars in DuckDB SQL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from market.calendar import session_bounds, session_minutes
from market.sources import DayTape, empty_quotes
from market.synthetic import SyntheticMarketConfig, SyntheticSource
from warehouse.bars import build_bars
from warehouse.db import connect, query_polars
from warehouse.ingest import ingest_day

DAY, DAY2 = date(2024, 1, 3), date(2024, 1, 4)
EARLY_CLOSE = date(2024, 11, 29)
SYMBOLS = ["SPY", "QQQ", "SPX"]
CFG = SyntheticMarketConfig(seed=11, trades_per_day=3_000, quotes_per_day=3_000)


@dataclass
class PlantedSource:
    """The synthetic market with extra raw rows appended to chosen symbols' tapes (a misbehaving feed)."""

    inner: SyntheticSource
    extra_trades: dict[str, pl.DataFrame] = field(default_factory=dict)
    extra_quotes: dict[str, pl.DataFrame] = field(default_factory=dict)
    fail_on: str | None = None
    name: str = "planted"

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        if symbol == self.fail_on:
            raise ConnectionError(f"feed down for {symbol}")
        tape = self.inner.fetch_day(symbol, session_date)
        trades = pl.concat([tape.trades, self.extra_trades[symbol]]) if symbol in self.extra_trades else tape.trades
        quotes = pl.concat([tape.quotes, self.extra_quotes[symbol]]) if symbol in self.extra_quotes else tape.quotes
        return DayTape(trades, quotes)


@dataclass
class FrameSource:
    """Hand-built tapes: {symbol: (trades, quotes)}."""

    tapes: dict[str, tuple[pl.DataFrame, pl.DataFrame]]
    name: str = "frames"

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        trades, quotes = self.tapes[symbol]
        return DayTape(trades, quotes)


def _open(d: date) -> datetime:
    return session_bounds(d)[0].astype("datetime64[us]").item()


def _trades(symbol: str, rows: list[tuple[datetime, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(symbol, *r) for r in rows],
        schema={"symbol": pl.Utf8, "ts": pl.Datetime("ns"), "price": pl.Float64, "size": pl.Float64},
        orient="row",
    )


def _quotes(symbol: str, rows: list[tuple[datetime, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(symbol, ts, bid, ask, 100.0, 100.0) for ts, bid, ask in rows],
        schema={
            "symbol": pl.Utf8,
            "ts": pl.Datetime("ns"),
            "bid": pl.Float64,
            "ask": pl.Float64,
            "bid_size": pl.Float64,
            "ask_size": pl.Float64,
        },
        orient="row",
    )


def _counts(con, d: date) -> tuple[int, int, int]:
    return tuple(
        con.execute(f"SELECT count(*) FROM {t} WHERE session_date = ?", [d]).fetchone()[0]
        for t in ("raw.ticks", "raw.quotes", "raw.quarantine")
    )


@pytest.fixture
def con(tmp_path: Path):
    c = connect(tmp_path / "warehouse.duckdb")
    yield c
    c.close()


def _planted(open_: datetime) -> PlantedSource:
    bad_trades = _trades(
        "SPY",
        [
            (open_ + timedelta(minutes=5), float("nan"), 100.0),
            (open_ + timedelta(minutes=6), -5.0, 100.0),
            (open_ + timedelta(minutes=7), 470.0, 0.0),
            (open_ - timedelta(hours=6), 470.0, 100.0),  # 03:30 New York: outside even the extended hours
            (open_ - timedelta(minutes=1), 470.0, 100.0),  # pre-market: dropped (and counted), not quarantined
        ],
    )
    wrong = _trades("QQQ", [(open_ + timedelta(minutes=8), 400.0, 10.0)]).with_columns(pl.lit("SPY").alias("symbol"))
    crossed = _quotes("SPY", [(open_ + timedelta(minutes=9), 470.05, 470.00)])
    return PlantedSource(
        SyntheticSource(CFG), extra_trades={"SPY": bad_trades, "QQQ": wrong}, extra_quotes={"SPY": crossed}
    )


def test_ingest_writes_validated_ticks_and_quarantines_bad_rows_with_reasons(con) -> None:
    source = _planted(_open(DAY))
    stats = ingest_day(con, source, SYMBOLS, DAY)
    assert stats.reasons == {
        "crossed_quote": 1,
        "nan_price": 1,
        "non_positive_price": 1,
        "out_of_session": 1,
        "wrong_symbol": 1,
        "zero_size": 1,
    }
    assert stats.quarantined == 6 and stats.ticks == sum(stats.ticks_by_symbol.values())
    assert stats.extended_dropped == 1
    assert (stats.ticks, stats.quotes, stats.quarantined) == _counts(con, DAY)
    raw = {s: source.inner.fetch_day(s, DAY) for s in SYMBOLS}
    assert stats.ticks == sum(t.trades.height for t in raw.values())  # the clean synthetic rows all survive
    assert stats.quotes == sum(t.quotes.height for t in raw.values())
    q = query_polars(con, "SELECT * FROM raw.quarantine WHERE session_date = ? ORDER BY reason", [DAY])
    assert set(q["source"]) == {"planted"} and q["quarantined_at"].null_count() == 0
    wrong = q.filter(pl.col("reason") == "wrong_symbol").row(0, named=True)
    assert wrong["symbol"] == "QQQ" and json.loads(wrong["payload"])["symbol"] == "SPY"  # came in QQQ's tape
    ticks = query_polars(con, "SELECT symbol, ts, seq, side FROM raw.ticks WHERE session_date = ?", [DAY])
    per = (
        ticks.sort("symbol", "seq")
        .group_by("symbol", maintain_order=True)
        .agg(
            pl.col("ts").is_sorted().alias("sorted"),
            (pl.col("seq") == pl.int_range(pl.len())).all().alias("dense"),
            pl.col("side").is_in([-1, 0, 1]).all().alias("sides"),
        )
    )
    assert per["sorted"].all() and per["dense"].all() and per["sides"].all()


def test_reingesting_three_times_keeps_one_copy_including_quarantine(con) -> None:
    source = _planted(_open(DAY))
    ingest_day(con, source, SYMBOLS, DAY2)
    other = _counts(con, DAY2)
    seen = [(ingest_day(con, source, SYMBOLS, DAY), _counts(con, DAY))[1] for _ in range(3)]
    assert seen[0] == seen[1] == seen[2] and seen[0][2] == 6
    assert _counts(con, DAY2) == other
    dup = con.execute(
        "SELECT count(*) FROM (SELECT symbol, seq FROM raw.ticks WHERE session_date = ? "
        "GROUP BY ALL HAVING count(*) > 1)",
        [DAY],
    ).fetchone()[0]
    assert dup == 0


def test_a_failed_fetch_leaves_the_stored_day_untouched(con) -> None:
    ingest_day(con, _planted(_open(DAY)), SYMBOLS, DAY)
    before = _counts(con, DAY)
    broken = PlantedSource(SyntheticSource(SyntheticMarketConfig(seed=99, trades_per_day=500)), fail_on="SPX")
    with pytest.raises(ConnectionError):
        ingest_day(con, broken, SYMBOLS, DAY)
    assert _counts(con, DAY) == before
    with pytest.raises(ValueError, match="unknown symbol"):
        ingest_day(con, broken, ["SPY", "XYZ"], DAY)
    with pytest.raises(ValueError, match="not a session of SPY"):
        ingest_day(con, broken, ["SPY"], date(2024, 1, 6))
    assert _counts(con, DAY) == before


def test_ingesting_one_symbol_replaces_only_that_symbol(con) -> None:
    ingest_day(con, SyntheticSource(CFG), SYMBOLS, DAY)
    qqq = con.execute("SELECT count(*) FROM raw.ticks WHERE symbol = 'QQQ'").fetchone()[0]
    stats = ingest_day(con, SyntheticSource(SyntheticMarketConfig(seed=5, trades_per_day=700)), ["SPY"], DAY)
    assert con.execute("SELECT count(*) FROM raw.ticks WHERE symbol = 'QQQ'").fetchone()[0] == qqq
    assert con.execute("SELECT count(*) FROM raw.ticks WHERE symbol = 'SPY'").fetchone()[0] == stats.ticks


def _reference_bars(con, d: date) -> pl.DataFrame:
    """Bars recomputed independently in polars from the stored ticks and quotes (traded minutes only)."""
    ticks = query_polars(con, "SELECT * FROM raw.ticks WHERE session_date = ?", [d])
    quotes = query_polars(con, "SELECT * FROM raw.quotes WHERE session_date = ?", [d])
    t = (
        ticks.with_columns(pl.col("ts").dt.truncate("1m").cast(pl.Datetime("us")).alias("minute"))
        .sort("symbol", "seq")
        .group_by("symbol", "minute")
        .agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("size").sum().alias("volume"),
            pl.when(pl.col("size").sum() > 0)
            .then((pl.col("price") * pl.col("size")).sum() / pl.col("size").sum())
            .otherwise(pl.col("price").mean())
            .alias("vwap"),
            pl.len().alias("trade_count"),
            pl.col("size").filter(pl.col("side") == 1).sum().alias("buy_volume"),
            pl.col("size").filter(pl.col("side") == -1).sum().alias("sell_volume"),
        )
    )
    q = (
        quotes.with_columns(pl.col("ts").dt.truncate("1m").cast(pl.Datetime("us")).alias("minute"))
        .group_by("symbol", "minute")
        .agg(
            (pl.col("ask") - pl.col("bid")).mean().alias("q_spread"),
            ((pl.col("ask") + pl.col("bid")) / 2).mean().alias("q_mid"),
        )
    )
    return t.join(q, on=["symbol", "minute"], how="left")


def test_bars_match_an_independent_polars_aggregation_on_every_calendar_minute(con) -> None:
    ingest_day(con, SyntheticSource(CFG), SYMBOLS, DAY)
    stats = build_bars(con, DAY)
    assert stats.bars == 390 * 3 and set(stats.symbols) == set(SYMBOLS)
    bars = query_polars(con, "SELECT * FROM core.bars_1m WHERE session_date = ? ORDER BY symbol, minute", [DAY])
    assert stats.ticks == con.execute("SELECT count(*) FROM raw.ticks").fetchone()[0]
    minutes = session_minutes(DAY).astype("datetime64[us]")
    for sym in SYMBOLS:
        assert np.array_equal(bars.filter(pl.col("symbol") == sym)["minute"].to_numpy(), minutes)
    ref = _reference_bars(con, DAY)
    joined = bars.join(ref, on=["symbol", "minute"], how="inner", suffix="_ref")
    assert joined.height == ref.height == bars.filter(~pl.col("filled")).height
    for col in ("open", "high", "low", "close", "volume", "vwap", "buy_volume", "sell_volume"):
        np.testing.assert_allclose(joined[col].to_numpy(), joined[f"{col}_ref"].to_numpy(), rtol=1e-12, err_msg=col)
    assert (joined["trade_count"] == joined["trade_count_ref"]).all()
    quoted = joined.filter(pl.col("q_spread").is_not_null())
    assert quoted.height > 0
    np.testing.assert_allclose(quoted["mean_spread"].to_numpy(), quoted["q_spread"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(quoted["mean_mid"].to_numpy(), quoted["q_mid"].to_numpy(), rtol=1e-12)
    spx = bars.filter(pl.col("symbol") == "SPX")  # index: no volume, TWAP, no quotes
    assert (spx["volume"] == 0).all() and (spx["mean_spread"] == 0).all() and spx["mean_mid"].null_count() == 390
    assert ((spx["vwap"] >= spx["low"]) & (spx["vwap"] <= spx["high"])).all()
    equity = bars.filter(pl.col("symbol") != "SPX")
    assert equity["mean_mid"].null_count() == 0 and (equity["mean_spread"] > 0).all()
    filled = bars.filter(pl.col("filled"))
    assert (filled["volume"] == 0).all() and (filled["trade_count"] == 0).all()


def test_empty_minutes_are_forward_filled_and_nothing_lies_outside_the_session(con) -> None:
    o = _open(DAY)
    trades = _trades(
        "SPY",
        [
            (o + timedelta(minutes=2, seconds=5), 100.0, 10.0),  # minutes 0-1 empty: take the first price
            (o + timedelta(minutes=2, seconds=30), 100.5, 30.0),
            (o + timedelta(minutes=5, seconds=1), 99.0, 20.0),  # minutes 3-4 empty: previous close 100.5
            (o + timedelta(minutes=389, seconds=59), 98.0, 5.0),  # last minute of the session
        ],
    )
    quotes = _quotes(
        "SPY", [(o + timedelta(minutes=2, seconds=1), 99.99, 100.01), (o + timedelta(minutes=5), 98.9, 99.1)]
    )
    spx = _trades("SPX", [(o + timedelta(minutes=1), 4700.0, 0.0), (o + timedelta(minutes=1, seconds=30), 4702.0, 0.0)])
    source = FrameSource({"SPY": (trades, quotes), "SPX": (spx, empty_quotes())})
    ingest_day(con, source, ["SPY", "SPX"], DAY)
    stats = build_bars(con, DAY)
    assert stats.bars == 780 and stats.filled == 780 - 3 - 1  # SPY traded in 3 minutes, SPX in 1
    bars = query_polars(con, "SELECT * FROM core.bars_1m WHERE symbol = 'SPY' ORDER BY minute")
    row = {i: bars.row(i, named=True) for i in (0, 1, 2, 3, 4, 5, 6, 388, 389)}
    assert row[0]["filled"] and row[0]["close"] == row[0]["open"] == 100.0 and row[0]["volume"] == 0
    assert not row[2]["filled"] and (row[2]["open"], row[2]["high"], row[2]["low"], row[2]["close"]) == (
        100.0,
        100.5,
        100.0,
        100.5,
    )
    assert row[2]["vwap"] == pytest.approx((100.0 * 10 + 100.5 * 30) / 40)
    assert row[2]["buy_volume"] == 30.0 and row[2]["sell_volume"] == 0.0  # first trade: side unknown
    for i in (3, 4):
        assert row[i]["filled"] and row[i]["high"] == row[i]["low"] == row[i]["vwap"] == 100.5
        assert row[i]["mean_spread"] == pytest.approx(0.02)  # carried from the last quoted minute
    assert row[5]["close"] == 99.0 and row[5]["sell_volume"] == 20.0 and row[5]["mean_spread"] == pytest.approx(0.2)
    assert row[6]["filled"] and row[6]["close"] == 99.0 and row[388]["close"] == 99.0
    assert not row[389]["filled"] and row[389]["close"] == 98.0
    assert row[0]["mean_spread"] == pytest.approx(0.02)  # before the first quote: the first quoted minute's
    spx_bars = query_polars(con, "SELECT * FROM core.bars_1m WHERE symbol = 'SPX' ORDER BY minute")
    assert spx_bars["vwap"][1] == 4701.0 and spx_bars["volume"].sum() == 0  # TWAP of the levels


def test_early_close_sessions_get_210_bars_and_rebuilding_keeps_one_copy(con) -> None:
    ingest_day(con, SyntheticSource(CFG), SYMBOLS, EARLY_CLOSE)
    for _ in range(3):
        stats = build_bars(con, EARLY_CLOSE)
        assert stats.bars == 210 * 3
    bounds = con.execute(
        "SELECT min(minute), max(minute), count(*), count(DISTINCT (symbol, minute)) FROM core.bars_1m"
    ).fetchone()
    open_, close_ = (b.astype("datetime64[us]").item() for b in session_bounds(EARLY_CLOSE))
    assert bounds == (open_, close_ - timedelta(minutes=1), 630, 630)


def test_bars_for_a_day_without_ticks_are_empty_and_non_sessions_are_refused(con) -> None:
    assert build_bars(con, DAY).bars == 0
    with pytest.raises(ValueError, match="not a session of any instrument's calendar"):
        build_bars(con, date(2024, 12, 25))


def test_a_session_with_only_vendor_bars_is_built_from_them_with_unknowns_left_null(con) -> None:
    from warehouse.datasets import load_training_frame
    from warehouse.features import build_features

    inner = SyntheticSource(SyntheticMarketConfig(trades_per_day=2_000, quotes_per_day=2_000))

    class BarsOnly:
        name = "bars-only"

        def fetch_day(self, symbol: str, session_date: date) -> DayTape:
            bars = inner.fetch_day(symbol, session_date).bars
            return DayTape(None, None, bars.with_columns(pl.lit(None, dtype=pl.Float64).alias("vwap")))

    ingest_day(con, BarsOnly(), ["SPY"], DAY)
    stats = build_bars(con, DAY)
    assert stats.vendor_built == ("SPY",) and stats.spread_modelled == ("SPY",) and stats.bars == 390
    row = con.execute(
        "SELECT count(buy_volume), count(vwap) FILTER (WHERE NOT filled), bool_and(built_from = 'vendor'), "
        "sum(volume) FROM core.bars_1m WHERE session_date = ?",
        [DAY],
    ).fetchone()
    vendor_volume = con.execute("SELECT sum(volume) FROM raw.minute_bars WHERE session_date = ?", [DAY]).fetchone()[0]
    assert row == (0, 0, True, vendor_volume)
    build_features(con, DAY)
    with pytest.raises(ValueError, match="built from vendor minute bars .*imbalance_1m.* are unknown"):
        load_training_frame(con, ["SPY"], DAY, DAY)
    ingest_day(con, inner, ["SPY"], DAY)  # the ticks arrive later: the session is rebuilt from them
    rebuilt = build_bars(con, DAY)
    assert rebuilt.vendor_built == () and rebuilt.spread_modelled == ()
