"""A new user's real-data setup through the real asset graph: a declared equity, an E-mini contract and a bar file.

market.yaml declares AAPL (not built in) and imports its 2013 ticks (New York wall clock, a third of them legal
repeats), an ES contract's millisecond tape on its own Globex day (Chicago time with offsets), and for the next
session only AAPL's vendor minute bars (dd.mm.yyyy stamps, no VWAP or trade count).
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from market.calendar import CME_EQUITY, session_minutes
from market.symbols import declare
from pipelines.definitions import build_definitions
from tests.futures_tape import CHICAGO, session_ticks

TICKS_DAY, BARS_DAY = date(2013, 6, 3), date(2013, 6, 4)
CONTRACT = "ESM13"


def _aapl_ticks(day: date) -> pd.DataFrame:
    """AAPL prints through the NYSE session in New York time, a third of them repeating the one before."""
    rng = np.random.default_rng(5)
    stamps = pd.date_range(f"{day} 09:30", f"{day} 15:59:59", periods=6_000).floor("ms")
    price = 450.0 + 0.01 * np.cumsum(rng.choice([-1, 0, 1], stamps.size))
    size = rng.choice([100.0, 200.0], stamps.size)
    frame = pd.DataFrame({"ts": stamps.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3], "price": price, "size": size})
    repeat = rng.random(len(frame)) < 0.3
    repeat[0] = False
    frame.loc[repeat, ["ts", "price", "size"]] = np.nan
    return frame.ffill()


def _chicago_with_offsets(frame: pd.DataFrame) -> pd.DataFrame:
    """A CME recording's stamps: Chicago wall clock, milliseconds and the UTC offset (2013-06-02T17:00:00.125-0500)."""
    local = frame["ts"].dt.tz_localize("UTC").dt.tz_convert(CHICAGO)
    millis = (local.dt.microsecond // 1000).astype(str).str.zfill(3)
    return frame.assign(ts=local.dt.strftime("%Y-%m-%dT%H:%M:%S.") + millis + local.dt.strftime("%z"))


def _aapl_bars(day: date) -> pd.DataFrame:
    """A vendor's 1-minute AAPL bars (no VWAP, no trade count), New York bar starts."""
    minutes = pd.date_range(f"{day} 09:30", f"{day} 15:59", freq="1min")
    close = 451.0 + 0.02 * np.arange(minutes.size) % 3
    return pd.DataFrame(
        {
            "time": minutes.strftime("%d.%m.%Y %H:%M"),
            "o": close,
            "h": close + 0.05,
            "l": close - 0.05,
            "c": close,
            "v": 1_000.0,
        }
    )


@pytest.fixture
def real_data(tf_env):
    data = tf_env.configs.parent / "data"
    (data / "AAPL").mkdir(parents=True)
    (data / CONTRACT).mkdir(parents=True)
    _aapl_ticks(TICKS_DAY).to_csv(data / "AAPL" / f"{TICKS_DAY}.csv", index=False)
    _chicago_with_offsets(session_ticks(CONTRACT, TICKS_DAY, 30_000, seed=2)).to_csv(
        data / CONTRACT / f"{TICKS_DAY}.csv", index=False
    )
    (data / "bars").mkdir()
    _aapl_bars(BARS_DAY).to_csv(data / "bars" / "AAPL.csv", index=False)

    def edit(m: dict) -> None:
        m.update(
            source="file",
            symbols=["AAPL", CONTRACT],
            instruments={"AAPL": {"kind": "equity", "commission": 0.0035, "description": "Apple"}},
            file={
                "trades": "data/{symbol}/{date}.csv",
                "bars": "data/bars/{symbol}.csv",
                "timezone": "America/New_York",
                "columns": {"bars": {"ts": "time", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}},
            },
        )

    tf_env.edit_yaml(tf_env.configs / "market.yaml", edit)
    yield tf_env
    declare({})


def _run(day: date) -> dg.ExecuteInProcessResult:
    job = build_definitions().resolve_job_def("market_data_job")
    return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), partition_key=day.isoformat())


def test_a_declared_equity_a_futures_contract_and_a_bar_file_go_through_the_graph(real_data) -> None:
    first = _run(TICKS_DAY)
    assert first.success
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks["quarantine_report"] and checks["bar_integrity"] and checks["features_finite"]
    con = duckdb.connect(str(real_data.home / "warehouse.duckdb"), read_only=True)
    try:
        ticks = dict(con.execute("SELECT symbol, count(*) FROM raw.ticks GROUP BY ALL").fetchall())
        bars = dict(con.execute("SELECT symbol, count(*) FROM core.bars_1m GROUP BY ALL").fetchall())
        assert ticks == {"AAPL": 6_000, CONTRACT: 30_000}  # every print, repeats included
        assert bars == {"AAPL": 390, CONTRACT: len(session_minutes(TICKS_DAY, CME_EQUITY))}
    finally:
        con.close()

    second = _run(BARS_DAY)  # AAPL has only vendor bars that day; the contract has no file: a recorded gap
    assert second.success
    checks = {e.check_name: e for e in second.get_asset_check_evaluations()}
    assert checks["bar_integrity"].passed and checks["features_finite"].passed
    assert not checks["session_coverage"].passed  # no ticks stored for either: said, not hidden
    assert not checks["quote_coverage"].passed  # AAPL's spread comes from its spread model
    con = duckdb.connect(str(real_data.home / "warehouse.duckdb"), read_only=True)
    try:
        row = con.execute(
            "SELECT count(*), bool_and(built_from = 'vendor'), count(buy_volume), "
            "count(vwap) FILTER (WHERE NOT filled), bool_and(spread_modelled), any_value(mean_spread) "
            "FROM core.bars_1m WHERE session_date = ?",
            [BARS_DAY],
        ).fetchone()
        assert row == (390, True, 0, 0, True, pytest.approx(0.01))  # unknown split and VWAP are NULL, not zero
        unknown = con.execute(
            "SELECT count(imbalance_1m), count(ret_1m) FROM core.features_1m WHERE session_date = ?", [BARS_DAY]
        ).fetchone()
        assert unknown[0] == 0 and unknown[1] > 300
    finally:
        con.close()
