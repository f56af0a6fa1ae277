"""Funding warehouse: migration 005, validation + quarantine, idempotent ingest, opportunities SQL, checks, CSV."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from market.funding import (
    FUNDING_RATE_SCHEMA,
    MARK_PRICE_SCHEMA,
    FundingMarketConfig,
    FundingTape,
    SyntheticFundingSource,
    funding_symbols,
)
from warehouse.db import connect, query_polars
from warehouse.funding import (
    build_opportunities,
    funding_checks,
    import_opportunities_csv,
    ingest_funding_day,
    load_funding_frames,
    opportunities_summary,
    validate_funding_rates,
    validate_mark_prices,
)

DAY = date(2024, 5, 7)
T0 = datetime(2024, 5, 7)
CFG = FundingMarketConfig(symbols=6, anomalous=("COAIUSDT",))


@pytest.fixture
def con(tmp_path: Path):
    c = connect(tmp_path / "wh.duckdb")
    yield c
    c.close()


def _rates(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=FUNDING_RATE_SCHEMA, orient="row")


def _marks(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=MARK_PRICE_SCHEMA, orient="row")


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> int:
    return con.execute(sql, params or []).fetchone()[0]


class _Broken:
    """A source whose data carries planted bad rows, and which can be told to fail."""

    name = "broken"

    def __init__(self) -> None:
        self.inner = SyntheticFundingSource(CFG)
        self.fail = False

    def fetch_day(self, day: date) -> FundingTape:
        if self.fail:
            raise ConnectionError("exchange down")
        tape = self.inner.fetch_day(day)
        t = datetime(day.year, day.month, day.day)
        bad_rates = _rates(
            [
                ("binance", "BTCUSDT", t + timedelta(hours=3), float("nan"), 8),
                ("binance", "BTCUSDT", t + timedelta(hours=2), 0.5, 8),
            ]
        )
        bad_marks = _marks([("okx", "ETHUSDT", t + timedelta(days=1), 1.0, 0.9, 1.1, 1e6)])
        return FundingTape(
            pl.concat([tape.funding_rates, bad_rates, tape.funding_rates.head(2)]),
            pl.concat([tape.mark_prices, bad_marks]),
        )


def test_migration_005_creates_the_funding_tables(con: duckdb.DuckDBPyConnection) -> None:
    cols = {
        (t, c)
        for t, c in con.execute(
            "SELECT table_schema || '.' || table_name, column_name FROM information_schema.columns"
        ).fetchall()
    }
    for c in ("exchange", "symbol", "day", "funding_time", "rate", "interval_hours"):
        assert ("raw.funding_rates", c) in cols
    for c in ("exchange", "symbol", "day", "ts", "mark", "bid", "ask", "volume_24h"):
        assert ("raw.mark_prices", c) in cols
    for c in ("day", "ts", "symbol", "long_exchange", "short_exchange", "long_rate", "short_rate", "long_interval_h"):
        assert ("core.funding_opportunities", c) in cols
    for c in ("short_interval_h", "apr", "spread_bps", "volume_24h"):
        assert ("core.funding_opportunities", c) in cols
    assert _count(con, "SELECT count(*) FROM core.schema_migrations WHERE version = 5") == 1


def test_validate_funding_rates_reasons_and_malformed_frames() -> None:
    frame = _rates(
        [
            ("binance", "BTCUSDT", T0, 0.0001, 8),
            ("binance", "BTCUSDT", T0 + timedelta(hours=8), float("nan"), 8),
            ("binance", "BTCUSDT", T0 + timedelta(hours=16), 0.05, 8),
            ("okx", "BTCUSDT", T0 + timedelta(hours=4), 0.0001, 3),
            ("okx", "BTCUSDT", T0 - timedelta(hours=4), 0.0001, 4),
            ("binance", "BTCUSDT", T0, 0.0002, 8),
            ("bybit", None, T0, 0.0001, 8),
            ("bybit", "ETHUSDT", T0 + timedelta(hours=1), -0.001, 1),
        ]
    )
    clean, bad = validate_funding_rates(frame, DAY)
    assert bad["reason"].to_list() == [
        "nan_rate",
        "rate_out_of_bounds",
        "bad_interval",
        "out_of_day",
        "duplicate",
        "missing_key",
    ]  # arrival order
    assert clean.columns == ["exchange", "symbol", "day", "funding_time", "rate", "interval_hours"]
    assert clean.height == 2 and clean["rate"].to_list() == [0.0001, -0.001]  # the first copy wins
    assert clean.schema["interval_hours"] == pl.Int32 and (clean["day"] == DAY).all()
    assert json.loads(bad["payload"][0])["exchange"] == "binance"
    with pytest.raises(ValueError, match="interval_hours"):
        validate_funding_rates(frame.drop("interval_hours"), DAY)
    with pytest.raises(ValueError, match="'rate'"):
        validate_funding_rates(frame.with_columns(pl.col("rate").cast(pl.Utf8)), DAY)


def test_validate_mark_prices_reasons() -> None:
    frame = _marks(
        [
            ("binance", "BTCUSDT", T0, 100.0, 99.9, 100.1, 1e9),
            ("binance", "BTCUSDT", T0 + timedelta(minutes=15), float("nan"), 99.9, 100.1, 1e9),
            ("binance", "BTCUSDT", T0 + timedelta(minutes=30), 100.0, -1.0, 100.1, 1e9),
            ("binance", "BTCUSDT", T0 + timedelta(minutes=45), 100.0, 100.2, 100.1, 1e9),
            ("binance", "BTCUSDT", T0 + timedelta(minutes=60), 100.0, 99.9, 100.1, -5.0),
            ("binance", "BTCUSDT", T0, 100.0, 99.9, 100.1, 1e9),
            ("binance", "BTCUSDT", T0 + timedelta(days=1), 100.0, 99.9, 100.1, 1e9),
            ("okx", "BTCUSDT", T0, 100.0, 100.0, 100.0, None),  # locked book, unknown volume: kept
        ]
    )
    clean, bad = validate_mark_prices(frame, DAY)
    assert bad["reason"].to_list() == [
        "nan_price",
        "non_positive_price",
        "crossed_quote",
        "bad_volume",
        "duplicate",
        "out_of_day",
    ]  # arrival order
    assert clean.height == 2
    with pytest.raises(ValueError, match="volume_24h"):
        validate_mark_prices(frame.drop("volume_24h"), DAY)


def test_ingest_is_idempotent_quarantines_and_survives_a_failed_fetch(con: duckdb.DuckDBPyConnection) -> None:
    src = _Broken()
    stats = [ingest_funding_day(con, src, DAY) for _ in range(3)]
    assert stats[0] == stats[2]
    assert stats[0].reasons == {"duplicate": 2, "nan_rate": 1, "out_of_day": 1, "rate_out_of_bounds": 1}
    n_rates = _count(con, "SELECT count(*) FROM raw.funding_rates WHERE day = ?", [DAY])
    n_marks = _count(con, "SELECT count(*) FROM raw.mark_prices WHERE day = ?", [DAY])
    tape = SyntheticFundingSource(CFG).fetch_day(DAY)
    assert n_rates == stats[0].funding_rates == tape.funding_rates.height  # one copy, planted rows rejected
    assert n_marks == tape.mark_prices.height
    assert _count(con, "SELECT count(*) FROM raw.quarantine WHERE session_date = ?", [DAY]) == 5
    assert (
        _count(
            con,
            "SELECT count(DISTINCT (exchange, symbol, funding_time)) FROM raw.funding_rates WHERE day = ?",
            [DAY],
        )
        == n_rates
    )
    n_next = ingest_funding_day(con, src, DAY + timedelta(days=1)).funding_rates
    src.fail = True
    with pytest.raises(ConnectionError):
        ingest_funding_day(con, src, DAY)
    assert _count(con, "SELECT count(*) FROM raw.funding_rates WHERE day = ?", [DAY]) == n_rates
    assert _count(con, "SELECT count(*) FROM raw.funding_rates") == n_rates + n_next
    assert _count(con, "SELECT count(*) FROM raw.quarantine WHERE session_date = ?", [DAY]) == 5


def _tiny_day(con: duckdb.DuckDBPyConnection) -> None:
    """Two venues, one symbol: A on 1h intervals, B on 8h; a rate change at 08:00."""
    rates = _rates(
        [("A", "XUSDT", T0 + timedelta(hours=h), 0.0001, 1) for h in range(24)]
        + [
            ("B", "XUSDT", T0, 0.0004, 8),
            ("B", "XUSDT", T0 + timedelta(hours=8), 0.0016, 8),
            ("B", "XUSDT", T0 + timedelta(hours=16), 0.0016, 8),
        ]
    )
    marks = _marks(
        [
            (x, "XUSDT", T0 + timedelta(minutes=15 * k), 100.0, 99.99, 100.01, vol)
            for k in range(96)
            for x, vol in (("A", 5e8), ("B", 2e8))
        ]
    )

    class Src:
        name = "tiny"

        def fetch_day(self, day: date) -> FundingTape:
            return FundingTape(rates, marks)

    ingest_funding_day(con, Src(), DAY)


def test_opportunities_orient_legs_use_own_intervals_and_do_not_look_ahead(con: duckdb.DuckDBPyConnection) -> None:
    _tiny_day(con)
    assert build_opportunities(con, DAY) == 96
    opp = query_polars(con, "SELECT * FROM core.funding_opportunities ORDER BY ts")
    before = opp.filter(pl.col("ts") == T0 + timedelta(hours=7, minutes=45)).row(0, named=True)
    after = opp.filter(pl.col("ts") == T0 + timedelta(hours=8)).row(0, named=True)
    # 07:45: A 0.0001/1h = 87.6% APR beats B 0.0004/8h = 43.8%: long B, short A; B's 08:00 rate is not yet known.
    assert (before["long_exchange"], before["short_exchange"]) == ("B", "A")
    assert before["apr"] == pytest.approx(0.876 - 0.438)
    assert (before["long_interval_h"], before["short_interval_h"]) == (8, 1)
    # 08:00: B's new 0.0016/8h = 175.2% is published: the pair flips.
    assert (after["long_exchange"], after["short_exchange"], after["short_rate"]) == ("A", "B", 0.0016)
    assert after["apr"] == pytest.approx(1.752 - 0.876)
    assert before["spread_bps"] == pytest.approx(4.0, rel=1e-3) and before["volume_24h"] == 2e8
    assert (opp["apr"] >= 0).all()
    summary = opportunities_summary(con, [DAY])
    # 32 snapshots before 08:00 at 43.8% APR, 64 after at 87.6%: the flipped orientation is still one pair.
    assert {k: summary[k] for k in ("rows", "pairs", "symbols", "snapshots")} == {
        "rows": 96,
        "pairs": 1,
        "symbols": 1,
        "snapshots": 96,
    }
    assert summary["median_apr"] == pytest.approx(0.876) and summary["max_apr"] == pytest.approx(0.876)
    assert opportunities_summary(con, [DAY + timedelta(days=1)])["rows"] == 0


def test_opportunities_match_a_build_from_data_truncated_at_each_snapshot(con: duckdb.DuckDBPyConnection) -> None:
    src = SyntheticFundingSource(CFG)
    ingest_funding_day(con, src, DAY - timedelta(days=1))
    ingest_funding_day(con, src, DAY)
    n = build_opportunities(con, DAY)
    pairs = len(CFG.exchanges) * (len(CFG.exchanges) - 1) // 2
    assert n == 96 * len(funding_symbols(CFG)) * pairs
    full = query_polars(con, "SELECT * FROM core.funding_opportunities WHERE day = ?", [DAY])
    assert build_opportunities(con, DAY) == n and build_opportunities(con, DAY) == n  # idempotent
    assert _count(con, "SELECT count(*) FROM core.funding_opportunities") == n
    cut = T0 + timedelta(hours=13, minutes=30)
    con.execute("DELETE FROM raw.funding_rates WHERE funding_time > ?", [cut])
    con.execute("UPDATE raw.mark_prices SET bid = bid * 0.5 WHERE ts > ?", [cut])
    build_opportunities(con, DAY)
    truncated = query_polars(con, "SELECT * FROM core.funding_opportunities WHERE day = ?", [DAY])
    keys = ["ts", "symbol", "long_exchange", "short_exchange"]
    a = full.filter(pl.col("ts") <= cut).sort(keys)
    b = truncated.filter(pl.col("ts") <= cut).sort(keys)
    assert a.height > 0 and a.equals(b)  # nothing after a snapshot changes it
    assert not full.filter(pl.col("ts") > cut).sort(keys).equals(truncated.filter(pl.col("ts") > cut).sort(keys))


def test_funding_checks_pass_clean_data_and_catch_each_planted_violation(con: duckdb.DuckDBPyConnection) -> None:
    src = SyntheticFundingSource(CFG)
    for d in (DAY - timedelta(days=1), DAY):
        ingest_funding_day(con, src, d)
    clean = funding_checks(con, [DAY - timedelta(days=1), DAY])
    assert clean["passed"] and clean["rows"] > 0
    json.dumps(clean)
    pick = "SELECT * FROM raw.funding_rates WHERE day = ? AND symbol = 'BTCUSDT' ORDER BY exchange, funding_time"
    row = query_polars(con, pick, [DAY]).row(1, named=True)

    con.execute("INSERT INTO raw.funding_rates SELECT * FROM raw.funding_rates WHERE day = ? LIMIT 1", [DAY])
    r = funding_checks(con, [DAY])
    assert not r["passed"] and r["duplicate_funding_times"] == 1 and r["out_of_bounds"] == 0
    con.execute("DELETE FROM raw.funding_rates")
    for d in (DAY - timedelta(days=1), DAY):
        ingest_funding_day(con, src, d)

    con.execute(
        "DELETE FROM raw.funding_rates WHERE exchange = ? AND symbol = ? AND funding_time = ?",
        [row["exchange"], row["symbol"], row["funding_time"]],
    )
    r = funding_checks(con, [DAY])
    assert not r["passed"] and r["interval_gaps"] == 1 and r["duplicate_funding_times"] == 0
    assert r["examples"]["interval_gaps"][0]["gap_hours"] == 2 * row["interval_hours"]
    ingest_funding_day(con, src, DAY)

    con.execute("UPDATE raw.funding_rates SET rate = 0.2 WHERE day = ? AND symbol = 'ETHUSDT'", [DAY])
    r = funding_checks(con, [DAY])
    n_eth = _count(con, "SELECT count(*) FROM raw.funding_rates WHERE day = ? AND symbol = 'ETHUSDT'", [DAY])
    assert not r["passed"] and r["out_of_bounds"] == n_eth and r["interval_gaps"] == 0
    assert funding_checks(con, [DAY - timedelta(days=1)])["passed"]


CSV_HEADER = (
    "entry_time,symbol,long_exchange,short_exchange,entry_long_price,entry_short_price,"
    "long_funding_rate,short_funding_rate,fund_apr,volume_24h,spread_bps\n"
)


def test_import_opportunities_csv_quarantines_and_is_idempotent(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "rl_test.csv"
    good = [
        "2025-10-22 00:00:00,BTCUSDT,binance,bybit,67000,67010,0.0001,0.0003,21.9,1e9,2.5",
        "2025-10-23T08:00:00Z,COAIUSDT,gate,okx,1.2,1.21,-0.001,0.002,329,2e6,80",
    ]
    bad = [
        "garbage,ETHUSDT,okx,gate,3000,3001,0.0001,0.0002,10,1e8,1",  # bad_timestamp
        "2025-10-22 01:00:00,ETHUSDT,okx,okx,3000,3001,0.0001,0.0002,10,1e8,1",  # same_exchange
        "2025-10-22 01:00:00,ETHUSDT,okx,gate,3000,3001,,0.0002,10,1e8,1",  # nan_rate
        "2025-10-22 01:00:00,ETHUSDT,okx,gate,3000,3001,0.0001,0.5,10,1e8,1",  # rate_out_of_bounds
        "2025-10-22 01:00:00,ETHUSDT,okx,gate,0,3001,0.0001,0.0002,10,1e8,1",  # non_positive_price
        "2025-10-22 00:00:00,BTCUSDT,binance,bybit,67000,67010,0.0001,0.0003,21.9,1e9,2.5",  # duplicate
    ]
    path.write_text(CSV_HEADER + "\n".join(good + bad) + "\n")
    stats = [import_opportunities_csv(con, path) for _ in range(3)]
    assert stats[0] == stats[2]
    s = stats[0]
    assert (s.rows, s.imported, s.quarantined) == (8, 2, 6)
    assert s.reasons == {
        "bad_timestamp": 1,
        "duplicate": 1,
        "nan_rate": 1,
        "non_positive_price": 1,
        "rate_out_of_bounds": 1,
        "same_exchange": 1,
    }
    assert s.days == (date(2025, 10, 22), date(2025, 10, 23))
    stored = query_polars(con, "SELECT * FROM core.funding_opportunities ORDER BY ts")
    assert stored.height == 2 and stored["source"].unique().to_list() == ["csv:rl_test.csv"]
    assert stored["apr"].to_list() == pytest.approx([0.219, 3.29])
    assert stored["spread_bps"].to_list() == [2.5, 80.0]
    q = query_polars(con, "SELECT * FROM raw.quarantine WHERE table_name = 'opportunities_csv'")
    assert q.height == 6 and (q["session_date"] == date(2025, 10, 22)).all()
    missing = tmp_path / "bad.csv"
    missing.write_text(CSV_HEADER.replace("short_exchange,", "") + "x\n")
    with pytest.raises(ValueError, match="short_exchange"):
        import_opportunities_csv(con, missing)
    assert _count(con, "SELECT count(*) FROM core.funding_opportunities") == 2


def test_load_funding_frames_reads_rates_with_look_back_and_whole_days_of_marks(con: duckdb.DuckDBPyConnection) -> None:
    from rl.families.funding.data import FundingDays

    src = SyntheticFundingSource(CFG)
    for offset in range(-3, 3):  # DAY-3 .. DAY+2: one extra day stored on each side, which must not be read
        ingest_funding_day(con, src, DAY + timedelta(days=offset))
    rates, marks = load_funding_frames(con, DAY, DAY + timedelta(days=1))
    assert rates.columns == ["exchange", "symbol", "funding_time", "rate", "interval_hours"]
    assert marks.columns == ["exchange", "symbol", "ts", "mark", "bid", "ask", "volume_24h"]
    tapes = [src.fetch_day(DAY + timedelta(days=k)) for k in range(-2, 2)]
    assert rates.height == sum(t.funding_rates.height for t in tapes)
    assert rates["funding_time"].min() == T0 - timedelta(days=2)
    assert rates["funding_time"].max() < T0 + timedelta(days=2)
    assert marks.height == sum(t.mark_prices.height for t in tapes[2:])
    assert marks["ts"].min() == T0 and marks["ts"].max() == T0 + timedelta(days=1, hours=23, minutes=45)
    days = FundingDays.from_frames(rates, marks)
    assert days.n_hours == 48 and np.isfinite(days.rate_now[0]).all()  # the first hour knows every leg's rate

    btc_rates, btc_marks = load_funding_frames(con, DAY, DAY, symbols=["BTCUSDT"])
    assert btc_rates["symbol"].unique().to_list() == ["BTCUSDT"] == btc_marks["symbol"].unique().to_list()
    assert (
        btc_marks.height
        == marks.filter((pl.col("symbol") == "BTCUSDT") & (pl.col("ts") < T0 + timedelta(days=1))).height
    )
    with pytest.raises(ValueError, match="NOPEUSDT"):
        load_funding_frames(con, DAY, DAY, symbols=["BTCUSDT", "NOPEUSDT"])
    with pytest.raises(ValueError, match="before start"):
        load_funding_frames(con, DAY, DAY - timedelta(days=1))


def test_load_funding_frames_names_the_days_to_materialize(con: duckdb.DuckDBPyConnection) -> None:
    src = SyntheticFundingSource(CFG)
    for offset in (-2, -1, 0, 2):  # DAY+1 is missing
        ingest_funding_day(con, src, DAY + timedelta(days=offset))
    load_funding_frames(con, DAY, DAY)
    with pytest.raises(ValueError, match="materialize raw_funding_rates for 2024-05-08") as err:
        load_funding_frames(con, DAY, DAY + timedelta(days=2))
    assert "2024-05-09" not in str(err.value)
    with pytest.raises(ValueError, match="materialize raw_funding_rates for 2024-05-04"):
        load_funding_frames(con, DAY - timedelta(days=1), DAY)  # its look-back day was never ingested
    con.execute("DELETE FROM raw.mark_prices WHERE day = ?", [DAY])
    with pytest.raises(ValueError, match="materialize raw_mark_prices for 2024-05-07"):
        load_funding_frames(con, DAY, DAY)


def test_gaps_a_source_records_are_stored_per_day_and_fail_the_gap_check(con: duckdb.DuckDBPyConnection) -> None:
    inner = SyntheticFundingSource(CFG)

    class Gappy:
        name = "gappy"

        def __init__(self, gaps: tuple) -> None:
            self.gaps = gaps

        def fetch_day(self, day: date) -> FundingTape:
            tape = inner.fetch_day(day)
            return FundingTape(tape.funding_rates, tape.mark_prices, self.gaps)

    stats = ingest_funding_day(
        con, Gappy((("binance", "DOGEUSDT", "no funding rows on 2024-05-07 from binance"),)), DAY
    )
    assert stats.gaps == 1
    checked = funding_checks(con, [DAY])
    assert not checked["passed"] and checked["recorded_gaps"] == 1
    assert checked["examples"]["recorded_gaps"][0]["reason"] == "no funding rows on 2024-05-07 from binance"
    assert ingest_funding_day(con, Gappy(()), DAY).gaps == 0  # fetched again without the gap: replaced
    assert funding_checks(con, [DAY])["recorded_gaps"] == 0
