"""A millisecond E-mini tape on CME trading days goes in without losing a row and matches an independent resample.

The tape (tests/futures_tape.py) has many legal repeated prints, evening opens at 17:00 CT, the daily break and
Martin Luther King Day, when CME closes early at 12:00 CT and the NYSE is shut. The expected minute bars come
from pandas alone: its own timestamp parsing, time-zone conversion and resample, none of the warehouse's code.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from market.calendar import CME_EQUITY, session_bounds, session_minutes
from market.file_source import FileImportConfig, FileSource
from market.symbols import get_symbol
from tests.futures_tape import CHICAGO, outside_ticks, session_ticks, write_local_csv
from warehouse.bars import build_bars
from warehouse.db import migrate
from warehouse.ingest import ingest_day

CONTRACT = "ESH24"
DAYS = (date(2024, 1, 12), date(2024, 1, 15), date(2024, 1, 16))  # Friday, MLK Day (early close), Tuesday


@pytest.fixture(scope="module")
def tape(tmp_path_factory) -> tuple[FileSource, pd.DataFrame, duckdb.DuckDBPyConnection]:
    root = tmp_path_factory.mktemp("futures")
    inside = [session_ticks(CONTRACT, d, 20_000, seed=i) for i, d in enumerate(DAYS)]
    frame = pd.concat([*inside, *(outside_ticks(CONTRACT, d) for d in DAYS)]).sort_values("ts", kind="stable")
    (root / "ticks").mkdir()
    write_local_csv(frame, str(root / "ticks" / f"{CONTRACT}.csv"))
    source = FileSource(FileImportConfig.from_dict({"trades": "ticks/{symbol}.csv", "timezone": CHICAGO}), root)
    con = duckdb.connect()
    migrate(con)
    for d in DAYS:
        ingest_day(con, source, [CONTRACT], d)
        build_bars(con, d)
    return source, pd.read_csv(root / "ticks" / f"{CONTRACT}.csv"), con


def _expected_bars(raw: pd.DataFrame, day: date) -> pd.DataFrame:
    """Minute OHLCV and trade counts of `day`'s session straight from the CSV text, with pandas only."""
    ts = pd.to_datetime(raw["ts"], format="%d.%m.%Y %H:%M:%S.%f").dt.tz_localize(CHICAGO).dt.tz_convert(None)
    open_, close_ = (pd.Timestamp(b) for b in session_bounds(day, CME_EQUITY))
    rows = raw.assign(ts=ts)[(ts >= open_) & (ts < close_)].set_index("ts")
    grouped = rows.resample("1min")
    bars = pd.DataFrame(
        {
            "open": grouped["price"].first(),
            "high": grouped["price"].max(),
            "low": grouped["price"].min(),
            "close": grouped["price"].last(),
            "volume": grouped["size"].sum(),
            "trade_count": grouped["price"].count(),
        }
    )
    return bars[bars["trade_count"] > 0]


def test_the_contract_resolves_to_the_es_root_with_its_multiplier_and_expiry() -> None:
    spec = get_symbol(CONTRACT)
    assert (spec.root, spec.kind, spec.point_value, spec.tick, spec.expiry) == (
        "ES",
        "future",
        50.0,
        0.25,
        date(2024, 3, 15),
    )
    assert [len(session_minutes(d, CME_EQUITY)) for d in DAYS] == [1380, 1140, 1380]


@pytest.mark.parametrize("day", DAYS)
def test_no_print_is_lost_and_every_minute_matches_the_independent_resample(tape, day: date) -> None:
    _, raw, con = tape
    expected = _expected_bars(raw, day)
    stored = con.execute("SELECT count(*) FROM raw.ticks WHERE session_date = ?", [day]).fetchone()[0]
    quarantined = con.execute("SELECT count(*) FROM raw.quarantine WHERE session_date = ?", [day]).fetchone()[0]
    assert stored == int(expected["trade_count"].sum()) and quarantined == 0  # 0 rows lost, none set aside
    repeats = raw.duplicated().sum()
    assert repeats > 0.2 * len(raw)  # the tape really is full of legal repeats
    sql = "SELECT * FROM core.bars_1m WHERE session_date = ? AND symbol = ? ORDER BY minute"
    bars = con.execute(sql, [day, CONTRACT]).df()
    assert len(bars) == len(session_minutes(day, CME_EQUITY))  # the Globex day's own minutes, evening open first
    assert bars["minute"].iloc[0] == pd.Timestamp(session_bounds(day, CME_EQUITY)[0])
    traded = bars[bars["trade_count"] > 0].set_index("minute")
    assert list(traded.index) == list(expected.index)
    for column in ("open", "high", "low", "close", "volume", "trade_count"):
        assert np.array_equal(traded[column].to_numpy(), expected[column].to_numpy()), column
    assert bars["spread_modelled"].all() and np.allclose(bars["mean_spread"], 0.25)  # no quotes: one tick, flagged


def test_prints_in_the_daily_break_belong_to_no_session(tape) -> None:
    _, raw, con = tape
    total = con.execute("SELECT count(*) FROM raw.ticks").fetchone()[0]
    in_sessions = sum(int(_expected_bars(raw, d)["trade_count"].sum()) for d in DAYS)
    assert total == in_sessions == len(raw) - 3 * len(DAYS)


def test_a_day_the_nyse_is_shut_skips_the_equity_and_keeps_the_future(tape) -> None:
    source, _, _ = tape
    con = duckdb.connect()
    migrate(con)
    stats = ingest_day(con, source, ["SPY", CONTRACT], date(2024, 1, 15))
    assert stats.closed == ("SPY",) and stats.ticks_by_symbol[CONTRACT] > 0
    with pytest.raises(ValueError, match="not a session of SPY"):
        ingest_day(con, source, ["SPY"], date(2024, 1, 15))
