"""Front months, rolls and the continuous series derived from each contract's own stored bars."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from market.calendar import CME_EQUITY, sessions
from market.futures import calendar_front, front_months, next_contract
from market.sources import DayTape
from tests.futures_tape import session_ticks
from warehouse.bars import build_bars
from warehouse.continuous import build_continuous, continuous_bars
from warehouse.db import migrate
from warehouse.ingest import ingest_day

DAYS = sessions(date(2024, 3, 4), date(2024, 3, 8), CME_EQUITY)
CONTANGO = 40.0  # June trades 40 points over March


class _Tapes:
    name = "tapes"

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        base = 4800.0 + (CONTANGO if symbol == "ESM24" else 0.0)
        frame = session_ticks(symbol, session_date, 3_000, seed=session_date.day, base=base)
        return DayTape(pl.from_dict({c: frame[c].to_numpy() for c in ("symbol", "ts", "price", "size")}), None)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    migrate(con)
    for d in DAYS:
        ingest_day(con, _Tapes(), ["ESH24", "ESM24"], d)
        build_bars(con, d)
    return con


def test_the_calendar_rule_rolls_eight_days_before_the_third_friday() -> None:
    assert calendar_front("ES", date(2024, 3, 6)) == "ESH24" and calendar_front("ES", date(2024, 3, 7)) == "ESM24"
    assert calendar_front("ES", date(2013, 6, 3)) == "ESM13" and next_contract("ES", "ESZ24") == "ESH25"
    fronts, rolls = front_months("ES", DAYS)
    assert [fronts[d] for d in DAYS] == ["ESH24", "ESH24", "ESH24", "ESM24", "ESM24"]
    assert [(r.day, r.from_contract, r.to_contract) for r in rolls] == [(date(2024, 3, 7), "ESH24", "ESM24")]


def test_the_volume_rule_rolls_the_session_after_the_crossover_and_never_looks_ahead() -> None:
    volumes = {("ESH24", d): 100.0 for d in DAYS} | {("ESM24", d): 50.0 + 40.0 * i for i, d in enumerate(DAYS)}
    fronts, rolls = front_months("ES", DAYS, "volume", volumes)
    assert volumes[("ESM24", DAYS[2])] > 100 > volumes[("ESM24", DAYS[1])]  # the crossover is on the 6th
    assert [(r.day, r.rule) for r in rolls] == [(DAYS[3], "volume")] and fronts[DAYS[2]] == "ESH24"
    with pytest.raises(ValueError, match="volume roll rule needs"):
        front_months("ES", DAYS, "volume")
    with pytest.raises(ValueError, match="is not a futures root"):
        front_months("SPY", DAYS)


def test_the_series_takes_each_sessions_front_contract_and_names_it(con) -> None:
    stats = build_continuous(con, "ES", DAYS)
    bars = continuous_bars(con, "ES", DAYS[0], DAYS[-1])
    assert stats.bars == bars.height == 5 * 1380 and not bars["back_adjusted"].any()
    per_day = bars.group_by("session_date").agg(pl.col("contract").unique()).sort("session_date")
    assert per_day["contract"].to_list() == [["ESH24"]] * 3 + [["ESM24"]] * 2
    own = con.execute(
        "SELECT close FROM core.bars_1m WHERE symbol = 'ESM24' AND session_date = ? ORDER BY minute", [DAYS[4]]
    ).fetchall()
    assert bars.filter(pl.col("session_date") == DAYS[4])["close"].to_list() == [r[0] for r in own]
    rolls = con.execute("SELECT roll_date, from_contract, to_contract, rule FROM core.futures_rolls").fetchall()
    assert rolls == [(date(2024, 3, 7), "ESH24", "ESM24", "calendar")]
    build_continuous(con, "ES", DAYS)  # rebuilt, not appended
    assert continuous_bars(con, "ES", DAYS[0], DAYS[-1]).height == 5 * 1380
    assert con.execute("SELECT count(*) FROM core.futures_rolls").fetchone()[0] == 1


def test_back_adjustment_removes_the_contract_gap_at_the_roll(con) -> None:
    stats = build_continuous(con, "ES", DAYS, back_adjusted=True)
    gap = stats.gaps["2024-03-07"]
    h, m = (
        con.execute(
            "SELECT arg_max(close, minute) FROM core.bars_1m WHERE symbol = ? AND session_date = ? AND NOT filled",
            [c, DAYS[2]],
        ).fetchone()[0]
        for c in ("ESH24", "ESM24")
    )
    assert gap == pytest.approx(m - h) and 20 < gap < 60
    bars = continuous_bars(con, "ES", DAYS[0], DAYS[-1])
    before = bars.filter(pl.col("session_date") < DAYS[3])
    assert (before["adjustment"] == gap).all() and (
        bars.filter(pl.col("session_date") >= DAYS[3])["adjustment"] == 0
    ).all()
    raw_h = con.execute(
        "SELECT close FROM core.bars_1m WHERE symbol = 'ESH24' AND session_date = ? ORDER BY minute", [DAYS[0]]
    ).fetchall()
    assert before.filter(pl.col("session_date") == DAYS[0])["close"].to_list() == pytest.approx(
        [r[0] + gap for r in raw_h]
    )


def test_a_missing_front_contract_is_an_error_not_a_substitute() -> None:
    con = duckdb.connect()
    migrate(con)
    for d in DAYS:
        ingest_day(con, _Tapes(), ["ESH24"], d)
        build_bars(con, d)
    with pytest.raises(ValueError, match="no bars for the front contract ESM24 on 2024-03-07"):
        build_continuous(con, "ES", DAYS)
    for d in DAYS[3:]:  # June's ticks only from the roll on: unadjusted works, adjusting needs the 6th
        ingest_day(con, _Tapes(), ["ESM24"], d)
        build_bars(con, d)
    assert build_continuous(con, "ES", DAYS).bars == 5 * 1380
    with pytest.raises(ValueError, match="no traded bar of ESM24 on 2024-03-06"):
        build_continuous(con, "ES", DAYS, back_adjusted=True)
