"""options_chain_1m from real chain sources through the real asset graph: raw ticks, bars and the chain of one
session, the chain from the fake Polygon and from the fake TWS, which serve quotes derived from the embedded chain
(tests/option_quotes.py). The table is filled with the embedded chain's columns and volatilities and loads for the
0DTE family; bad options settings are refused when the definitions load."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets.resources import market_from_yaml
from market.synthetic import SyntheticMarketConfig
from pipelines.definitions import build_definitions
from warehouse.db import query_polars
from warehouse.options import load_chain_frame

DAY = date(2024, 3, 5)
SYMBOLS = ["SPY", "QQQ", "SPX"]
EACH_SIDE = 2
KEY = "pk-chain-pipeline-5b4a"
NO_PACING = {"identical_s": 0, "contract_window_s": 0, "window_s": 0}  # the fake does not pace; real TWS does


def _synthetic(tf_env: SimpleNamespace) -> SyntheticMarketConfig:
    """The embedded market exactly as the shrunk market.yaml configures it."""
    import yaml

    embedded = yaml.safe_load((tf_env.configs / "market.yaml").read_text())["embedded"]
    return SyntheticMarketConfig(**{k: v for k, v in embedded.items() if v is not None})


@pytest.fixture
def vendor(tf_env) -> SimpleNamespace:
    """The embedded chain of DAY as the pipeline would store it, and the quotes a vendor would send for it."""
    from tests.option_quotes import embedded_chain, vendor_quotes

    config = _synthetic(tf_env)
    chain = embedded_chain(config, SYMBOLS, [DAY], EACH_SIDE)
    return SimpleNamespace(config=config, chain=chain, quotes=vendor_quotes(chain))


def _use(tf_env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, home: Path, source: str, **section) -> None:
    """Option chains from `source`, configured by its section; the ticks stay embedded, so the stored bars are the
    ones the embedded chain was priced from (tests/pipelines/test_sources.py runs the ticks through the fakes)."""
    monkeypatch.setenv("TRADEFLOW_HOME", str(home))

    def edit(m: dict) -> None:
        m.update(source="embedded", symbols=SYMBOLS, options={"source": source, "strikes_each_side": EACH_SIDE})
        m[source] = section

    tf_env.edit_yaml(tf_env.configs / "market.yaml", edit)


def _run() -> dg.ExecuteInProcessResult:
    job = build_definitions().resolve_job_def("market_data_job")
    keys = [dg.AssetKey(k) for k in ("raw_ticks", "bars_1m", "options_chain_1m")]
    return job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key=DAY.isoformat(), asset_selection=keys
    )


def _stored_chain(home: Path) -> tuple[list[tuple[str, str]], pl.DataFrame, pl.DataFrame]:
    """The chain table's columns, its rows, and what `load_chain_frame` hands the 0DTE family."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        columns = [(c[0], c[1]) for c in con.execute("DESCRIBE core.options_chain_1m").fetchall()]
        rows = query_polars(con, "SELECT * FROM core.options_chain_1m")
        return columns, rows, load_chain_frame(con, SYMBOLS, DAY, DAY)
    finally:
        con.close()


def _assert_like_the_embedded_chain(home: Path, embedded: pl.DataFrame, result: dg.ExecuteInProcessResult) -> None:
    columns, rows, loaded = _stored_chain(home)
    assert [c for c, _ in columns] == embedded.columns  # one table, whichever source filled it
    meta = result.asset_materializations_for_node("options_chain_1m")[0].metadata
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "chain_quote_rules")
    assert rows.height == meta["rows"].value and meta["contracts"].value == 3 * 2 * (2 * EACH_SIDE + 1)
    assert rows.height + check.metadata["quarantined"].value == embedded.height == 3 * 390 * 10
    both = rows.join(embedded, on=["contract", "minute"], suffix="_e")
    assert both.height == rows.height
    assert (both["spot"] == both["spot_e"]).all() and (both["minutes_to_expiry"] == both["minutes_to_expiry_e"]).all()
    live = both.filter((pl.col("vega_e") > 1e-4) & (pl.col("minutes_to_expiry") > 0))
    assert live.height > 0.8 * both.height and (live["iv"] - live["iv_e"]).abs().max() < 1e-5
    assert loaded.height == rows.height and set(loaded["underlying"]) == set(SYMBOLS)


def test_polygon_fills_the_chain_table_like_the_embedded_chain(tf_env, vendor, tmp_path, monkeypatch) -> None:
    from tests.fake_polygon import add_option_chain, serve_polygon, synthetic_polygon_data

    data = synthetic_polygon_data(SYMBOLS, [DAY], vendor.config, api_key=KEY)
    add_option_chain(data, vendor.quotes)
    monkeypatch.setenv("POLYGON_API_KEY", KEY)
    home = tmp_path / "polygon"
    with serve_polygon(data) as url:
        _use(tf_env, monkeypatch, home, "polygon", base_url=url, page_retries=0, backoff_s=0.0)
        result = _run()
    assert result.success
    _assert_like_the_embedded_chain(home, vendor.chain, result)
    assert len(data.paths("/v3/quotes/O:")) == 30 and KEY not in "\n".join(repr(e) for e in result.all_events)
    assert _stored_chain(home)[1]["volume"].sum() > 0  # Polygon's minute aggregates


def test_ibkr_fills_the_chain_table_like_the_embedded_chain(tf_env, vendor, tmp_path, monkeypatch) -> None:
    from market.sources import SyntheticSource
    from tests.fake_tws import FakeMarket, FakeTws, add_option_chain, market_from_tape

    market = FakeMarket()
    for symbol in SYMBOLS:
        market_from_tape(SyntheticSource(vendor.config).fetch_day(symbol, DAY), symbol, into=market)
        add_option_chain(market, vendor.quotes.filter(pl.col("underlying") == symbol))
    home = tmp_path / "ibkr"
    with FakeTws(market) as tws:
        _use(tf_env, monkeypatch, home, "ibkr", port=tws.port, timeout_s=2, pacing=NO_PACING)
        result = _run()
        assert tws.order_messages() == []
        assert {r.what_to_show for r in tws.requests_of("bars") if r.sec_type == "OPT"} == {"BID", "ASK"}
    assert result.success
    _assert_like_the_embedded_chain(home, vendor.chain, result)
    assert _stored_chain(home)[1]["volume"].is_null().all()  # IB's volume is not fetched


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"source": "file"}, "options.source must be one of embedded, polygon, ibkr"),
        ({"strikes": 3}, r"options: unknown key\(s\) \['strikes'\]"),
        ({"strikes_each_side": 0}, "options.strikes_each_side must be an integer"),
        ("polygon", "options: expected a mapping, got str"),
    ],
)
def test_bad_options_settings_fail_when_the_definitions_load(tf_env, options, match: str) -> None:
    tf_env.edit_yaml(tf_env.configs / "market.yaml", lambda m: m.update(options=options))
    with pytest.raises(ValueError, match=f"market.yaml: {match}"):
        market_from_yaml(tf_env.configs / "market.yaml")


def test_polygon_chains_on_the_embedded_ticks_need_the_polygon_key(tf_env, monkeypatch) -> None:
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    tf_env.edit_yaml(tf_env.configs / "market.yaml", lambda m: m.update(options={"source": "polygon"}))
    assert market_from_yaml(tf_env.configs / "market.yaml").chain_settings().source == "polygon"
    with pytest.raises(dg.DagsterInvalidConfigError, match="POLYGON_API_KEY"):
        _run()
