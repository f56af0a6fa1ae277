"""PolygonChainSource through the real massive RESTClient against the fake Polygon, serving quotes derived from the
embedded chain (tests/option_quotes.py): the declared rows, the last quote of each minute, the same-day SPXW class,
pagination, missing minutes and the key kept out of every error."""

from __future__ import annotations

import json
import logging
import traceback
from datetime import date

import polars as pl
import pytest

from market.calendar import session_bounds
from market.chain_sources import CHAIN_SCHEMA, ChainSource
from market.polygon_chain import PolygonChainSource
from market.polygon_source import PolygonConfig, PolygonSourceError
from market.sources import MissingDataError
from market.synthetic import SyntheticMarketConfig
from tests.fake_polygon import add_option_chain, option_contract, serve_polygon, synthetic_polygon_data
from tests.option_quotes import embedded_chain, vendor_quotes

pytest.importorskip("massive")

KEY = "pk_chain_7e6d5c4b3a21"
DAY = date(2024, 3, 5)
EACH_SIDE = 3
CONTRACTS = 2 * (2 * EACH_SIDE + 1)
OPEN_NS, CLOSE_NS = (int(b.astype("int64")) for b in session_bounds(DAY))


@pytest.fixture(scope="module")
def quotes() -> pl.DataFrame:
    config = SyntheticMarketConfig(trades_per_day=2_000, quotes_per_day=500)
    return vendor_quotes(embedded_chain(config, ["SPY", "SPX"], [DAY], EACH_SIDE))


def _market(quotes: pl.DataFrame):
    data = synthetic_polygon_data(["SPY", "SPX"], [DAY], SyntheticMarketConfig(trades_per_day=2_000), api_key=KEY)
    add_option_chain(data, quotes)
    return data


def _source(url: str, **cfg) -> PolygonChainSource:
    config = PolygonConfig(base_url=url, page_retries=0, **cfg)
    return PolygonChainSource(config, KEY, strikes_each_side=EACH_SIDE, sleep=lambda s: None)


def test_each_contract_has_a_row_per_session_minute_with_that_minutes_last_quote(quotes) -> None:
    data = _market(quotes)
    data.page_caps = {"/v3/reference/options/contracts": 5, "/v3/quotes/O:": 300}  # pages cut short: next_url
    with serve_polygon(data) as url:
        source = _source(url)
        chain = source.fetch_chain("SPY", DAY)
    assert isinstance(source, ChainSource) and source.skipped("SPY", DAY) == ()
    assert dict(chain.schema) == CHAIN_SCHEMA
    assert chain.height == CONTRACTS * 390 and chain["contract"].n_unique() == CONTRACTS
    served = quotes.filter(pl.col("underlying") == "SPY")
    assert set(chain["contract"]) == set(served["contract"])  # the window the embedded chain lists
    got = chain.join(served, on=["contract", "minute"], suffix="_sent")
    assert got.height == chain.height
    assert (got["bid"] == got["bid_sent"]).all() and (got["ask"] == got["ask_sent"]).all()  # the 55 s quote, not 5 s
    assert (got["volume"] == got["volume_sent"]).all()  # 0 where Polygon sent no aggregate
    listing = [r for r in data.requests if r.path == "/v3/reference/options/contracts"]
    assert listing[0].query == {"underlying_ticker": "SPY", "expiration_date": "2024-03-05", "as_of": "2024-03-05",
                                "limit": "1000"}  # fmt: skip
    assert len(listing) == 3 and all(set(r.query) == {"cursor"} for r in listing[1:])  # 14 contracts, 5 a page
    first = next(r for r in data.requests if r.path.startswith("/v3/quotes/O:"))
    assert (first.query["timestamp.gte"], first.query["timestamp.lt"]) == (str(OPEN_NS), str(CLOSE_NS))
    assert len(data.paths("/v3/quotes/O:")) == CONTRACTS * 3  # 780 quotes per contract, 300 a page


def test_spx_keeps_the_spxw_class_and_leaves_the_monthly_spx_contracts_alone(quotes) -> None:
    data = _market(quotes)
    spx = quotes.filter(pl.col("underlying") == "SPX")
    for strike in spx["strike"].unique().to_list():  # the AM-settled monthly class, same strikes and expiration
        ticker = f"O:SPX{DAY:%y%m%d}C{round(strike * 1000):08d}"
        data.contracts.append(option_contract(ticker, "SPX", "C", strike, DAY))
    data.contracts.append(option_contract("O:SPXW240306C04800000", "SPX", "C", 4800.0, date(2024, 3, 6)))
    with serve_polygon(data) as url:
        chain = _source(url).fetch_chain("SPX", DAY)
    assert chain["contract"].n_unique() == CONTRACTS
    assert chain["contract"].str.starts_with("O:SPXW240305").all()
    assert not [p for p in data.paths("/v3/quotes/") if not p.startswith("/v3/quotes/O:SPXW240305")]
    assert data.paths("/v2/aggs/ticker/I:SPX/")  # the index level centres the strikes


def test_a_contract_without_quotes_for_some_minutes_keeps_those_rows_with_null_quotes(quotes) -> None:
    contract = quotes.filter(pl.col("underlying") == "SPY")["contract"][0]
    gap = (pl.col("contract") == contract) & (pl.int_range(pl.len()).over("contract").is_between(10, 14))
    data = _market(quotes.with_columns(pl.when(gap).then(None).otherwise(pl.col(c)).alias(c) for c in ("bid", "ask")))
    with serve_polygon(data) as url:
        chain = _source(url).fetch_chain("SPY", DAY)
    own = chain.filter(pl.col("contract") == contract)
    assert own.height == 390
    assert own["bid"].is_null().arg_true().to_list() == [10, 11, 12, 13, 14]  # never filled from minute 9
    assert own["ask"].is_null().sum() == 5 and chain["bid"].is_null().sum() == 5


def test_a_session_without_same_day_contracts_is_missing_data_and_off_sessions_are_refused(quotes) -> None:
    data = _market(quotes.filter(pl.col("underlying") == "SPX"))
    with serve_polygon(data) as url:
        with pytest.raises(MissingDataError, match="lists no SPY option of SPY expiring on 2024-03-05"):
            _source(url).fetch_chain("SPY", DAY)
        with pytest.raises(ValueError, match="not an NYSE session"):
            _source(url).fetch_chain("SPY", date(2024, 3, 9))
    assert data.paths("/v3/quotes/") == [] and len(data.paths("/v3/reference/")) == 1


def test_the_key_never_appears_in_errors_reprs_or_logs(quotes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    data = _market(quotes)
    data.fail("/v3/quotes/O:", 429)  # retried once, logged
    echo = json.dumps({"status": "NOT_AUTHORIZED", "message": f"key {KEY} lacks the options plan"})
    data.fail("/v3/quotes/O:", 403, body=echo, skip=3)
    with serve_polygon(data) as url:
        source = _source(url)
        with pytest.raises(PolygonSourceError, match="NOT_AUTHORIZED") as refused:
            source.fetch_chain("SPY", DAY)
    assert "list_quotes('O:SPY240305" in str(refused.value) and "***" in str(refused.value)
    texts = [str(refused.value), "".join(traceback.format_exception(refused.value)), repr(source), caplog.text]
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert all(KEY not in text for text in texts)
