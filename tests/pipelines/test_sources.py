"""The real asset graph with each market source: the same tables, the same shapes, failures that keep stored data.

Live sources run against the local fakes (a fake Polygon over HTTP, a fake TWS over its socket protocol, files in a
temp folder) that serve the same synthetic market as the embedded default, so each run can be compared with it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest

from assets.resources import market_from_yaml
from market.synthetic import SyntheticMarketConfig
from pipelines.definitions import build_definitions
from tests.fake_polygon import serve_polygon, synthetic_polygon_data

DAYS = ["2024-01-03", "2024-01-04"]
RANGE = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[1]}
SYMBOLS = ["SPY", "QQQ", "SPX"]
KEY = "pk-test-4c1d2e9f7a"
RAW_TABLES = ("raw.ticks", "raw.quotes", "raw.minute_bars")
SHAPED = ("raw.ticks", "raw.quotes", "raw.minute_bars", "core.bars_1m", "core.features_1m")


def _synthetic(tf_env: SimpleNamespace) -> SyntheticMarketConfig:
    """The embedded market exactly as the shrunk market.yaml configures it."""
    import yaml

    embedded = yaml.safe_load((tf_env.configs / "market.yaml").read_text())["embedded"]
    return SyntheticMarketConfig(**{k: v for k, v in embedded.items() if v is not None})


def _use_source(tf_env: SimpleNamespace, home: Path, monkeypatch: pytest.MonkeyPatch, source: str, **section) -> None:
    monkeypatch.setenv("TRADEFLOW_HOME", str(home))

    def edit(m: dict) -> None:
        m["source"] = source
        m["symbols"] = ["SPY", "QQQ", "SPX"]  # what the fakes serve (the futures sources have tests of their own)
        if section:
            m[source] = section

    tf_env.edit_yaml(tf_env.configs / "market.yaml", edit)


def _run_market_data(**tags: str) -> dg.ExecuteInProcessResult:
    job = build_definitions().resolve_job_def("market_data_job")
    return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), tags=tags or RANGE, raise_on_error=False)


def _shape(home: Path) -> dict:
    """Per table: its columns and types, and rows per (session, symbol)."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        out = {}
        for table in SHAPED:
            cols = con.execute(f"DESCRIBE {table}").fetchall()
            rows = con.execute(
                f"SELECT session_date::VARCHAR, symbol, count(*) FROM {table} GROUP BY ALL ORDER BY ALL"
            ).fetchall()
            out[table] = {"columns": [(c[0], c[1]) for c in cols], "rows": rows}
        return out
    finally:
        con.close()


def _rows(home: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _event_text(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(repr(e) for e in result.all_events)


@pytest.fixture
def embedded_shape(tf_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The embedded default's tables over DAYS, to compare every live source with."""
    _use_source(tf_env, tmp_path / "embedded", monkeypatch, "embedded")
    assert _run_market_data().success
    return _shape(tmp_path / "embedded")


def test_polygon_fills_the_same_tables_as_the_embedded_market(
    tf_env, embedded_shape: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = [date.fromisoformat(d) for d in DAYS]
    data = synthetic_polygon_data(SYMBOLS, days, _synthetic(tf_env), api_key=KEY)
    monkeypatch.setenv("POLYGON_API_KEY", KEY)
    home = tmp_path / "polygon"
    with serve_polygon(data) as url:
        _use_source(tf_env, home, monkeypatch, "polygon", base_url=url, page_retries=0, backoff_s=0.0)
        result = _run_market_data()
    assert result.success
    assert _shape(home) == embedded_shape
    spy = "SELECT ts, price, size FROM raw.ticks WHERE symbol = 'SPY' ORDER BY session_date, seq"
    assert _rows(home, spy) == _rows(tmp_path / "embedded", spy)  # equities come through exactly
    assert {r.path.split("/")[2] for r in data.requests} >= {"trades", "quotes"}
    mat = result.asset_materializations_for_node("raw_ticks")[0].metadata
    assert mat["source"].value == "polygon" and mat["gaps"].value == {}
    assert KEY not in _event_text(result)


def test_polygon_without_its_key_fails_before_fetching_and_names_the_variable(
    tf_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    data = synthetic_polygon_data(["SPY"], [date(2024, 1, 3)], _synthetic(tf_env), api_key=KEY)
    with serve_polygon(data) as url:
        _use_source(tf_env, tmp_path / "nokey", monkeypatch, "polygon", base_url=url, page_retries=0)
        with pytest.raises(dg.DagsterInvalidConfigError, match="POLYGON_API_KEY"):
            _run_market_data()
    assert data.requests == []


def test_a_failed_polygon_fetch_leaves_the_stored_day_untouched_and_a_missing_day_is_reported(
    tf_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[0]}
    monkeypatch.setenv("POLYGON_API_KEY", KEY)
    home = tmp_path / "polygon"
    good = synthetic_polygon_data(SYMBOLS, [date(2024, 1, 3)], _synthetic(tf_env), api_key=KEY)
    with serve_polygon(good) as url:
        _use_source(tf_env, home, monkeypatch, "polygon", base_url=url, page_retries=0, backoff_s=0.0, max_retries=1)
        assert _run_market_data(**day).success
    stored = _shape(home)

    with serve_polygon(good) as url:  # the same day again, but the server now fails every quotes request
        good.fail("/v3/quotes/", 500, times=100)
        _use_source(tf_env, home, monkeypatch, "polygon", base_url=url, page_retries=0, backoff_s=0.0, max_retries=1)
        failed = _run_market_data(**day)
    assert not failed.success
    assert "PolygonSourceError" in _event_text(failed) and KEY not in _event_text(failed)
    assert _shape(home) == stored

    empty = synthetic_polygon_data(["QQQ", "SPX"], [date(2024, 1, 3)], _synthetic(tf_env), api_key=KEY)
    with serve_polygon(empty) as url:  # Polygon has nothing for SPY that day (client issue #338)
        _use_source(tf_env, home, monkeypatch, "polygon", base_url=url, page_retries=0, backoff_s=0.0)
        result = _run_market_data(**day)
    assert result.success
    assert _shape(home)["raw.ticks"] == stored["raw.ticks"]  # SPY's stored ticks were kept
    coverage = next(e for e in result.get_asset_check_evaluations() if e.check_name == "session_coverage")
    assert not coverage.passed  # the vendor's gap is reported although the earlier ticks are kept
    assert coverage.metadata["vendor_gaps_with_ticks_kept"].value == 1 and coverage.metadata["without_ticks"].value == 0
    gaps = _rows(home, "SELECT symbol, session_date::VARCHAR, source FROM raw.ingest_gaps")
    assert gaps == [("SPY", DAYS[0], "polygon")]
    mat = result.asset_materializations_for_node("raw_ticks")[0].metadata
    assert list(mat["gaps"].value) == ["SPY"] and "missing this day" in mat["gaps"].value["SPY"]


def _write_files(folder: Path, config: SyntheticMarketConfig) -> None:
    """The synthetic market as a user's per-symbol, per-day CSV files (trades, quotes, bars; UTC ISO timestamps)."""
    from market.sources import SyntheticSource

    source = SyntheticSource(config)
    folder.mkdir(parents=True, exist_ok=True)
    for symbol in SYMBOLS:
        for d in DAYS:
            tape = source.fetch_day(symbol, date.fromisoformat(d))
            for kind, frame in (("trades", tape.trades), ("quotes", tape.quotes), ("bars", tape.bars)):
                frame.write_csv(folder / f"{symbol}_{d}_{kind}.csv")


def test_file_import_fills_the_same_tables_and_quarantines_bad_rows(
    tf_env, embedded_shape: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "userdata"
    _write_files(folder, _synthetic(tf_env))
    files = {kind: str(folder / f"{{symbol}}_{{date}}_{kind}.csv") for kind in ("trades", "quotes", "bars")}
    home = tmp_path / "file"
    _use_source(tf_env, home, monkeypatch, "file", **files)
    result = _run_market_data()
    assert result.success
    assert _shape(home) == embedded_shape
    spy = "SELECT ts, price, size FROM raw.ticks WHERE symbol = 'SPY' ORDER BY session_date, seq"
    assert _rows(home, spy) == _rows(tmp_path / "embedded", spy)
    report = result.asset_materializations_for_node("raw_ticks")[0].metadata["run_import_report"].value
    assert "File import" in report and "2024-01-03" in report

    trades = folder / f"SPY_{DAYS[0]}_trades.csv"
    with trades.open("a") as f:  # a broken recording: unparseable price, no timestamp, another symbol's row
        f.write("SPY,2024-01-03T15:00:00.000000000,abc,100.0\n")
        f.write("SPY,,470.0,100.0\n")
        f.write("QQQ,2024-01-03T15:00:01.000000000,400.0,10.0\n")
    result = _run_market_data(
        **{"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[0]}
    )
    assert result.success
    reasons = _rows(home, "SELECT reason, count(*) FROM raw.quarantine GROUP BY ALL ORDER BY ALL")
    assert reasons == [("nan_price", 1), ("null_ts", 1), ("wrong_symbol", 1)]
    assert _shape(home)["raw.ticks"] == embedded_shape["raw.ticks"]  # the partition was replaced, not appended


def test_a_broken_file_fails_the_run_and_keeps_the_stored_day(
    tf_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "userdata"
    _write_files(folder, _synthetic(tf_env))
    home = tmp_path / "file"
    _use_source(tf_env, home, monkeypatch, "file", trades=str(folder / "{symbol}_{date}_trades.csv"))
    day = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[0]}
    assert _run_market_data(**day).success
    stored = _shape(home)
    (folder / f"QQQ_{DAYS[0]}_trades.csv").write_text("when,what\n1,2\n")  # no mapped columns
    failed = _run_market_data(**day)
    assert not failed.success and "FileSourceError" in _event_text(failed)
    assert _shape(home) == stored


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"source": "bloomberg"}, "unknown source 'bloomberg'"),
        ({"extended_hours": "yes"}, "extended_hours must be true or false"),
        ({"polygon": {"api_key": "pk-123"}}, "api_key"),
        ({"polygon": {"page_limit": 0}}, "page_limit"),
        ({"polygon": {"extended_hours": True}}, "at the top level"),
        ({"ibkr": {"port": 70000}}, "port"),
        ({"ibkr": {"client": 3}}, "client"),
        ({"file": {"trades": "x.csv", "timezone": "Mars/Olympus"}}, "timezone"),
        ({"file": {"quotes": "q.csv"}}, "trades"),
        ({"polygon": ["base_url"]}, "must be a mapping"),
        ({"feed": "x"}, "unknown keys"),
    ],
)
def test_bad_market_settings_fail_when_the_definitions_load(tf_env, edit: dict, match: str) -> None:
    tf_env.edit_yaml(tf_env.configs / "market.yaml", lambda m: m.update(edit))
    with pytest.raises(ValueError, match=match):
        market_from_yaml(tf_env.configs / "market.yaml")
    with pytest.raises(ValueError, match=match):
        build_definitions()


def test_each_live_source_is_built_from_its_section_with_the_top_level_extended_hours(tf_env) -> None:
    def edit(m: dict) -> None:
        m["extended_hours"] = True
        m["file"]["trades"] = "recordings/{symbol}.parquet"

    tf_env.edit_yaml(tf_env.configs / "market.yaml", edit)
    resource = market_from_yaml(tf_env.configs / "market.yaml")
    file_source = resource.model_copy(update={"source": "file"}).build()
    assert file_source.name == "file" and file_source.config.extended_hours
    assert Path(file_source.base_dir) == tf_env.configs.parent
    ibkr = resource.model_copy(update={"source": "ibkr"}).build()
    assert ibkr.name == "ibkr" and ibkr.config.extended_hours and ibkr.config.port == 7497
    polygon = resource.model_copy(update={"source": "polygon", "polygon_api_key": KEY}).build()
    assert polygon.name == "polygon" and polygon.config.extended_hours and KEY not in repr(polygon)


def _tws_market(config: SyntheticMarketConfig):
    """The synthetic market over DAYS as a fake TWS serves it (whole-second ticks, minute bars)."""
    import polars as pl

    from market.sources import DayTape, SyntheticSource
    from tests.fake_tws import FakeMarket, market_from_tape

    source, market = SyntheticSource(config), FakeMarket()
    for symbol in SYMBOLS:
        tapes = [source.fetch_day(symbol, date.fromisoformat(d)) for d in DAYS]
        joined = DayTape(*(pl.concat([getattr(t, part) for t in tapes]) for part in ("trades", "quotes", "bars")))
        market_from_tape(joined, symbol, into=market)
    return market


NO_PACING = {"identical_s": 0, "contract_window_s": 0, "window_s": 0}  # the fake does not pace; real TWS does


def test_ibkr_fills_the_same_tables_and_never_sends_an_order(
    tf_env, embedded_shape: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fake_tws import FakeTws

    home = tmp_path / "ibkr"
    with FakeTws(_tws_market(_synthetic(tf_env))) as tws:
        _use_source(tf_env, home, monkeypatch, "ibkr", port=tws.port, timeout_s=2, pacing=NO_PACING)
        result = _run_market_data()
        assert tws.order_messages() == [] and tws.requests
    assert result.success
    assert _shape(home) == embedded_shape  # same tables, same rows per session and symbol, same bars and features
    spy = "SELECT time_bucket(INTERVAL 1 SECOND, ts), price, size FROM raw.ticks WHERE symbol = 'SPY' ORDER BY ALL"
    assert _rows(home, spy) == _rows(tmp_path / "embedded", spy)  # the same trades at IB's 1-second resolution
    assert _rows(home, "SELECT count(*) FROM raw.quarantine") == [(0,)]


def test_an_ibkr_error_fails_the_run_and_keeps_the_stored_day(
    tf_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fake_tws import FakeTws, error

    home = tmp_path / "ibkr"
    day = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[0]}
    market = _tws_market(_synthetic(tf_env))
    with FakeTws(market) as tws:
        _use_source(tf_env, home, monkeypatch, "ibkr", port=tws.port, timeout_s=2, pacing=NO_PACING)
        assert _run_market_data(**day).success
    stored = _shape(home)
    with FakeTws(market, scripts=[error(321, "Error validating request", symbol="QQQ")]) as tws:
        _use_source(tf_env, home, monkeypatch, "ibkr", port=tws.port, timeout_s=2, pacing=NO_PACING, max_retries=0)
        failed = _run_market_data(**day)
    assert not failed.success
    assert "IbkrSourceError" in _event_text(failed) and "321" in _event_text(failed)
    assert _shape(home) == stored
