"""PolygonSource through the real massive RESTClient against a local fake of Polygon's REST API (offline).

One test per Polygon trap and connector feature; an opt-in live test runs only with TRADEFLOW_LIVE_TESTS=1 and
POLYGON_API_KEY set.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
import types
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl
import pytest

from market.calendar import extended_bounds, latest_completed_session, session_bounds
from market.polygon_source import (
    API_KEY_ENV,
    DEFAULT_BASE_URL,
    PolygonConfig,
    PolygonSource,
    PolygonSourceError,
    polygon_client_package,
    rest_client_class,
)
from market.sources import BAR_SCHEMA, QUOTE_SCHEMA, TRADE_SCHEMA, MarketSource, MissingDataError
from market.symbols import get_symbol
from market.synthetic import SyntheticMarketConfig
from tests.fake_polygon import FakePolygonData, polygon_data_from_tapes, serve_polygon, synthetic_polygon_data
from warehouse.validate import validate_trades

pytest.importorskip("massive")

KEY = "pk_test_9f8e7d6c5b4a3210"
DAY = date(2024, 1, 3)  # an ordinary Wednesday session, 14:30-21:00 UTC
MINUTE_NS = 60_000_000_000
OPEN_NS = int(session_bounds(DAY)[0].astype(np.int64))
CLOSE_NS = int(session_bounds(DAY)[1].astype(np.int64))
PRE_NS = int(extended_bounds(DAY)[0].astype(np.int64)) + 3600 * 10**9  # 05:00 New York, pre-market
POST_NS = CLOSE_NS + 30 * MINUTE_NS  # 16:30 New York, after hours
from tests import ROOT  # noqa: E402


def _trade(ts: int, price: float, size: float, **extra: Any) -> dict[str, Any]:
    """A v3 trade object as Polygon documents it."""
    return {
        "conditions": [12],
        "exchange": 11,
        "id": str(ts),
        "participant_timestamp": ts - 500,
        "price": price,
        "sip_timestamp": ts,
        "size": size,
        "tape": 1,
        **extra,
    }


def _quote(ts: int, bid: float, ask: float, bid_size: float, ask_size: float) -> dict[str, Any]:
    """A v3 quote object as Polygon documents it."""
    return {
        "ask_exchange": 11,
        "ask_price": ask,
        "ask_size": ask_size,
        "bid_exchange": 12,
        "bid_price": bid,
        "bid_size": bid_size,
        "participant_timestamp": ts - 700,
        "sip_timestamp": ts,
        "tape": 1,
    }


def _agg(start_ns: int, o: float, h: float, low: float, c: float, v: float | None = None, **extra: Any) -> dict:
    agg = {"o": o, "h": h, "l": low, "c": c, "t": start_ns // 1_000_000, **extra}
    if v is not None:
        agg["v"] = v
    return agg


def spy_market(page_cap: int = 50_000) -> FakePolygonData:
    """SPY: a pre-market trade, five session trades (one fractional, one with decimal_size), two quotes, and minute
    bars pre-market, at session minutes 0, 1 and 3 (minute 2 had no trades, so no bar) and after hours."""
    data = FakePolygonData(api_key=KEY, page_cap=page_cap)
    spy = data.ticker("SPY")
    spy.trades = [
        _trade(PRE_NS + 17, 469.5, 10),
        _trade(OPEN_NS + 1_234_567_891, 470.01, 100),
        _trade(OPEN_NS + 2_000_000_001, 470.02, 0.5),
        _trade(OPEN_NS + 61 * 10**9 + 7, 470.05, 0, decimal_size="0.000123"),
        _trade(OPEN_NS + 3 * MINUTE_NS + 3, 470.10, 300),
        _trade(CLOSE_NS - 1, 471.00, 25),
    ]
    spy.quotes = [
        _quote(OPEN_NS + 999, 470.00, 470.02, 3, 5),
        _quote(OPEN_NS + MINUTE_NS + 12_345, 470.04, 470.06, 1, 2.5),
    ]
    spy.aggs["minute"] = [
        _agg(PRE_NS, 469.5, 469.5, 469.5, 469.5, 10, vw=469.5, n=1),
        _agg(OPEN_NS, 470.01, 470.02, 470.01, 470.02, 100.5, vw=470.0101, n=2),
        _agg(OPEN_NS + MINUTE_NS, 470.05, 470.05, 470.05, 470.05, 1234.5678, vw=470.05, n=1),
        _agg(OPEN_NS + 3 * MINUTE_NS, 470.10, 470.10, 470.10, 470.10, 300, vw=470.1, n=1),
        _agg(POST_NS, 471.2, 471.3, 471.1, 471.25, 42.25),  # after hours, no vw/n
    ]
    return data


def make_source(base_url: str, sleeps: list[float] | None = None, key: str = KEY, **cfg: Any) -> PolygonSource:
    """A source whose retries are all ours (no per-page retries inside the client, which would really sleep)."""
    cfg.setdefault("page_retries", 0)
    sleeper = sleeps.append if sleeps is not None else (lambda s: None)
    return PolygonSource(PolygonConfig(base_url=base_url, **cfg), key, sleep=sleeper)


def _ts(frame: pl.DataFrame) -> list[int]:
    return frame["ts"].cast(pl.Int64).to_list()


def test_trades_quotes_and_bars_parse_to_exact_schemas_in_utc_ns() -> None:
    data = spy_market()
    with serve_polygon(data) as url:
        tape = make_source(url).fetch_day("SPY", DAY)
    assert isinstance(make_source(url), MarketSource)
    assert dict(tape.trades.schema) == {**TRADE_SCHEMA, "vendor_id": pl.Utf8}  # "exchange:id" names a print
    assert dict(tape.quotes.schema) == QUOTE_SCHEMA
    assert dict(tape.bars.schema) == BAR_SCHEMA
    session = [t for t in data.ticker("SPY").trades if OPEN_NS <= t["sip_timestamp"] < CLOSE_NS]
    assert _ts(tape.trades) == [t["sip_timestamp"] for t in session]  # sip_timestamp, nanoseconds intact
    assert tape.trades["price"].to_list() == [t["price"] for t in session]
    assert set(tape.trades["symbol"]) == {"SPY"}
    quotes = data.ticker("SPY").quotes
    assert _ts(tape.quotes) == [q["sip_timestamp"] for q in quotes]
    assert tape.quotes.select("bid", "ask", "bid_size", "ask_size").rows() == [
        (q["bid_price"], q["ask_price"], q["bid_size"] * 100, q["ask_size"] * 100)
        for q in quotes  # lots -> shares
    ]
    # the naive timestamps are UTC: the first session trade is 09:30:01.234567891 in New York
    assert tape.trades["ts"][0] == datetime(2024, 1, 3, 14, 30, 1, 234567)
    # the request: the regular session as ns bounds, ascending, full pages; unadjusted minute aggs
    trades_q = next(r.query for r in data.requests if r.path == "/v3/trades/SPY")
    assert trades_q == {
        "timestamp.gte": str(OPEN_NS),
        "timestamp.lt": str(CLOSE_NS),
        "limit": "50000",
        "sort": "timestamp",
        "order": "asc",
    }
    aggs = [r for r in data.requests if r.path.startswith("/v2/aggs/")]
    assert [r.path for r in aggs] == ["/v2/aggs/ticker/SPY/range/1/minute/2024-01-03/2024-01-03"]
    assert aggs[0].query["adjusted"] == "false"


def test_no_bar_is_invented_for_a_minute_without_trades() -> None:
    data = spy_market()
    with serve_polygon(data) as url:
        bars = make_source(url).fetch_day("SPY", DAY).bars
    assert _ts(bars) == [a["t"] * 1_000_000 for a in data.ticker("SPY").aggs["minute"]]
    session_minutes = [(t - OPEN_NS) // MINUTE_NS for t in _ts(bars) if OPEN_NS <= t < CLOSE_NS]
    assert session_minutes == [0, 1, 3]  # minute 2 stays absent
    assert bars.filter(pl.col("ts") == datetime(2024, 1, 3, 14, 30))["vwap"].to_list() == [470.0101]
    assert bars.filter(pl.col("ts") == datetime(2024, 1, 3, 14, 30))["trade_count"].to_list() == [2]


def test_pre_and_post_market_bars_pass_through_and_extended_hours_widens_the_tick_window() -> None:
    data = spy_market()
    with serve_polygon(data) as url:
        regular = make_source(url).fetch_day("SPY", DAY)
        extended = make_source(url, extended_hours=True).fetch_day("SPY", DAY)
    for tape in (regular, extended):
        assert PRE_NS in _ts(tape.bars) and POST_NS in _ts(tape.bars)  # the warehouse keeps or drops them
    post = regular.bars.filter(pl.col("ts").cast(pl.Int64) == POST_NS)
    assert post["vwap"].to_list() == [None] and post["trade_count"].to_list() == [None]
    assert PRE_NS + 17 not in _ts(regular.trades)
    assert PRE_NS + 17 in _ts(extended.trades)
    lo, hi = (int(x.astype(np.int64)) for x in extended_bounds(DAY))
    windows = [(r.query["timestamp.gte"], r.query["timestamp.lt"]) for r in data.requests if r.path.startswith("/v3/")]
    assert windows[-1] == (str(lo), str(hi))


def test_fractional_volume_and_sizes_are_kept() -> None:
    with serve_polygon(spy_market()) as url:
        tape = make_source(url).fetch_day("SPY", DAY)
    sizes = dict(zip(_ts(tape.trades), tape.trades["size"], strict=True))
    assert sizes[OPEN_NS + 2_000_000_001] == 0.5
    assert sizes[OPEN_NS + 61 * 10**9 + 7] == 0.000123  # decimal_size wins over the rounded size 0
    assert 1234.5678 in tape.bars["volume"].to_list()
    assert 250.0 in tape.quotes["ask_size"].to_list()  # 2.5 round lots of 100 shares


def test_next_url_is_followed_past_a_page_truncated_below_the_limit() -> None:
    data = spy_market(page_cap=2)  # the server cuts every page at 2 rows although 50000 are asked for
    with serve_polygon(data) as url:
        tape = make_source(url).fetch_day("SPY", DAY)
        one_page = rest_client_class()(api_key=KEY, base=url).get_aggs("SPY", 1, "minute", DAY, DAY, limit=50_000)
    assert len(one_page) == 2  # the trap is real: get_aggs reads a single page
    assert tape.trades.height == 5 and tape.quotes.height == 2 and tape.bars.height == 5
    trade_requests = [r for r in data.requests if r.path == "/v3/trades/SPY"]
    assert len(trade_requests) == 3
    assert all(set(r.query) == {"cursor"} for r in trade_requests[1:])  # next_url carries only the cursor


def test_a_whole_missing_day_raises_missing_data_error() -> None:
    data = spy_market()
    data.ticker("SPY").trades = [t for t in data.ticker("SPY").trades if t["sip_timestamp"] >= CLOSE_NS]
    data.ticker("SPY").aggs["minute"] = []
    with serve_polygon(data) as url, pytest.raises(MissingDataError, match=r"SPY.*2024-01-03"):
        make_source(url).fetch_day("SPY", DAY)
    assert not any(r.path.startswith("/v3/quotes") for r in data.requests)  # no quote download for a gap


def test_trades_without_vendor_bars_are_not_a_missing_day() -> None:
    data = spy_market()
    data.ticker("SPY").aggs["minute"] = []
    with serve_polygon(data) as url:
        tape = make_source(url).fetch_day("SPY", DAY)
    assert tape.trades.height == 5 and tape.bars.height == 0


def test_rate_limit_twice_then_success_is_retried_with_backoff() -> None:
    data = spy_market()
    data.fail("/v3/trades/", 429, times=2)
    sleeps: list[float] = []
    with serve_polygon(data) as url:
        tape = make_source(url, sleeps).fetch_day("SPY", DAY)
    assert tape.trades.height == 5
    assert sleeps == [0.5, 1.0]
    assert [r.status for r in data.requests if r.path == "/v3/trades/SPY"] == [429, 429, 200]


def test_persistent_server_error_fails_after_max_retries() -> None:
    data = spy_market()
    data.fail("/v3/quotes/", 500, times=100)
    sleeps: list[float] = []
    with serve_polygon(data) as url, pytest.raises(PolygonSourceError) as info:
        make_source(url, sleeps, max_retries=2, backoff_s=0.1).fetch_day("SPY", DAY)
    assert "list_quotes('SPY') for SPY on 2024-01-03 failed after 3 attempts" in str(info.value)
    assert "500" in str(info.value)
    assert len([r for r in data.requests if r.path == "/v3/quotes/SPY"]) == 3
    assert sleeps == [0.1, 0.2]


def test_refused_connection_is_retried_then_fails() -> None:
    with serve_polygon(FakePolygonData()) as url:
        pass  # the port is closed again
    sleeps: list[float] = []
    with pytest.raises(PolygonSourceError, match="MaxRetryError"):
        make_source(url, sleeps, max_retries=1).fetch_day("SPY", DAY)
    assert sleeps == [0.5]


def test_not_authorized_fails_at_once() -> None:
    data = spy_market()
    data.forbidden.add("SPY")
    sleeps: list[float] = []
    with serve_polygon(data) as url, pytest.raises(PolygonSourceError, match="NOT_AUTHORIZED") as info:
        make_source(url, sleeps).fetch_day("SPY", DAY)
    assert "list_trades('SPY') for SPY on 2024-01-03" in str(info.value)
    assert sleeps == [] and len(data.requests) == 1


def test_a_garbled_page_is_retried_instead_of_ending_the_list() -> None:
    data = spy_market(page_cap=2)
    data.fail("/v3/trades/", 200, body='{"results": [{"price": 1')  # the client would stop silently
    sleeps: list[float] = []
    with serve_polygon(data) as url:
        tape = make_source(url, sleeps).fetch_day("SPY", DAY)
    assert tape.trades.height == 5
    assert sleeps == [0.5]


def test_the_key_never_appears_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    data = spy_market()
    data.fail("/v3/trades/", 429)
    echo = json.dumps({"status": "NOT_AUTHORIZED", "message": f"key {KEY} is not entitled to SPY quotes"})
    data.fail("/v3/quotes/", 403, body=echo)
    with serve_polygon(data) as url:
        source = make_source(url)
        with pytest.raises(PolygonSourceError) as refused:
            source.fetch_day("SPY", DAY)
        with pytest.raises(PolygonSourceError) as wrong_key:
            make_source(url, key=KEY[::-1]).fetch_day("SPY", DAY)
    assert "NOT_AUTHORIZED" in str(refused.value) and "***" in str(refused.value)  # the echo arrived, redacted
    assert "Unknown API Key" in str(wrong_key.value)
    texts = [
        str(refused.value),
        "".join(traceback.format_exception(refused.value)),
        str(wrong_key.value),
        "".join(traceback.format_exception(wrong_key.value)),
        repr(source),
        repr(source.config),
        caplog.text,
        *(r.getMessage() for r in caplog.records),
    ]
    assert any("retrying" in r.getMessage() for r in caplog.records)  # the retry was logged
    for text in texts:
        assert KEY not in text and KEY[::-1] not in text


@pytest.mark.parametrize("key", [None, "", "   "])
def test_a_missing_key_names_the_environment_variable(key: str | None) -> None:
    with pytest.raises(PolygonSourceError, match=API_KEY_ENV):
        PolygonSource(PolygonConfig(), key)


def test_index_levels_come_from_one_second_aggs_stamped_at_the_end_of_their_second() -> None:
    data = FakePolygonData(api_key=KEY)
    spx = data.ticker("I:SPX")
    last_second = CLOSE_NS - 10**9
    spx.aggs["second"] = [
        _agg(OPEN_NS, 4700.0, 4700.5, 4699.5, 4700.25),
        _agg(OPEN_NS + 10**9, 4700.25, 4701.0, 4700.0, 4700.75),
        _agg(OPEN_NS + 5 * 10**9, 4701.0, 4701.0, 4701.0, 4701.0),  # seconds 2-4 had no print
        _agg(last_second, 4710.0, 4710.0, 4709.0, 4709.5),
    ]
    spx.aggs["minute"] = [_agg(OPEN_NS, 4700.0, 4701.0, 4699.5, 4701.0), _agg(last_second - 59 * 10**9, 1, 2, 1, 2)]
    with serve_polygon(data) as url:
        tape = make_source(url).fetch_day("SPX", DAY)
    starts = [a["t"] * 1_000_000 for a in spx.aggs["second"]]
    assert _ts(tape.trades) == [t + 10**9 - 1 for t in starts]
    assert tape.trades["price"].to_list() == [a["c"] for a in spx.aggs["second"]]
    assert tape.trades["size"].to_list() == [0.0] * 4
    assert max(_ts(tape.trades)) < CLOSE_NS  # the last second's level stays inside the session
    assert set(tape.trades["symbol"]) == {"SPX"} and tape.quotes.height == 0
    assert dict(tape.trades.schema) == TRADE_SCHEMA and dict(tape.quotes.schema) == QUOTE_SCHEMA
    assert tape.bars["volume"].to_list() == [0.0, 0.0] and tape.bars["vwap"].null_count() == 2
    assert [r.path.split("/")[7] for r in data.requests] == ["second", "minute"]  # no trades or quotes requests
    assert all("/I:SPX/" in r.path for r in data.requests)


def test_the_synthetic_market_round_trips_through_the_fake() -> None:
    config = SyntheticMarketConfig(trades_per_day=400, quotes_per_day=400)
    data = synthetic_polygon_data(["SPY", "SPX"], [DAY], config, api_key=KEY, page_cap=500)
    from market.sources import SyntheticSource

    reference = SyntheticSource(config)
    with serve_polygon(data) as url:
        source = make_source(url)
        spy, spx = source.fetch_day("SPY", DAY), source.fetch_day("SPX", DAY)
    expected = reference.fetch_day("SPY", DAY)
    assert spy.trades.drop("vendor_id").equals(expected.trades) and spy.quotes.equals(expected.quotes)
    assert spy.bars["volume"].sum() == expected.trades["size"].sum()
    levels = reference.fetch_day("SPX", DAY).trades
    assert spx.trades["price"].equals(levels["price"])
    assert (spx.trades["ts"].cast(pl.Int64) - levels["ts"].cast(pl.Int64)).unique().to_list() == [10**9 - 1]
    again = polygon_data_from_tapes([("SPY", spy)], api_key=KEY)  # a fetched tape serves back unchanged
    assert again.ticker("SPY").trades == data.ticker("SPY").trades


def test_unknown_symbols_and_non_sessions_fail_before_any_request() -> None:
    data = spy_market()
    with serve_polygon(data) as url:
        source = make_source(url)
        with pytest.raises(ValueError, match="unknown symbol"):
            source.fetch_day("NOPE", DAY)
        with pytest.raises(ValueError, match="not an NYSE session"):
            source.fetch_day("SPY", date(2024, 1, 6))
    assert data.requests == []


def test_the_client_is_built_with_our_key_base_and_no_client_retries() -> None:
    with serve_polygon(spy_market()) as url:
        source = make_source(url, timeout_s=7.5)
        source.fetch_day("SPY", DAY)
    client = source._rest()
    assert type(client).__module__.startswith("massive") and url == client.BASE
    assert client.retries == 0 and client.timeout.read_timeout == 7.5


# ----------------------------------------------------------------------------------------------------------------
# Config


def test_config_defaults_and_ticker_mapping() -> None:
    assert PolygonConfig.from_dict(None) == PolygonConfig() == PolygonConfig.from_dict({})
    config = PolygonConfig()
    assert config.base_url == DEFAULT_BASE_URL == "https://api.massive.com"
    assert (config.page_limit, config.max_retries, config.backoff_s) == (50_000, 4, 0.5)
    assert (config.extended_hours, config.quotes, config.bars) == (False, True, True)
    assert config.ticker("SPX") == "I:SPX" and config.ticker("QQQ") == "QQQ"
    merged = PolygonConfig.from_dict({"tickers": {"QQQ": "QQQM"}, "base_url": "http://127.0.0.1:9/"})
    assert merged.ticker("QQQ") == "QQQM" and merged.ticker("SPX") == "I:SPX"
    assert merged.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"api_key": "x"}, "api_key"),
        ({"page_size": 10}, "page_size"),
        ({"page_limit": 0}, "page_limit"),
        ({"page_limit": 50_001}, "page_limit"),
        ({"page_limit": "100"}, "page_limit"),
        ({"page_limit": True}, "page_limit"),
        ({"max_retries": -1}, "max_retries"),
        ({"backoff_s": float("nan")}, "backoff_s"),
        ({"backoff_s": -0.5}, "backoff_s"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"quote_lot_size": 0}, "quote_lot_size"),
        ({"extended_hours": "yes"}, "extended_hours"),
        ({"quotes": 1}, "quotes"),
        ({"base_url": "ftp://example.com"}, "base_url"),
        ({"base_url": "https://user:secret@example.com"}, "base_url"),
        ({"base_url": "https://example.com?apiKey=1"}, "base_url"),
        ({"tickers": ["SPX"]}, "tickers"),
        ({"tickers": {"SPY": "SP/Y"}}, "tickers"),
        ({"tickers": {"SPY": ""}}, "tickers"),
    ],
)
def test_config_refuses_unknown_keys_and_bad_values(settings: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        PolygonConfig.from_dict(settings)


# ----------------------------------------------------------------------------------------------------------------
# Client package


class _OldRESTClient:
    """Stands in for polygon-api-client's RESTClient: records its arguments, returns canned rows."""

    made: list[dict[str, Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        _OldRESTClient.made.append(kwargs)

    def list_trades(self, ticker: str, **kwargs: Any) -> Any:
        return iter([SimpleNamespace(sip_timestamp=OPEN_NS + 5, price=470.0, size=3)])

    def list_quotes(self, ticker: str, **kwargs: Any) -> Any:
        return iter(
            [SimpleNamespace(sip_timestamp=OPEN_NS + 4, bid_price=469.99, ask_price=470.01, bid_size=2, ask_size=3)]
        )

    def list_aggs(self, ticker: str, **kwargs: Any) -> Any:
        return iter([])


def test_the_old_polygon_package_is_used_where_massive_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    old = types.ModuleType("polygon")
    old.RESTClient = _OldRESTClient
    monkeypatch.setitem(sys.modules, "massive", None)  # import massive -> ImportError
    monkeypatch.setitem(sys.modules, "polygon", old)
    _OldRESTClient.made.clear()
    assert polygon_client_package() == "polygon"
    tape = PolygonSource(PolygonConfig(base_url="http://127.0.0.1:9"), KEY).fetch_day("SPY", DAY)
    assert _ts(tape.trades) == [OPEN_NS + 5] and tape.trades["size"].to_list() == [3.0]
    assert _OldRESTClient.made == [
        {
            "api_key": KEY,
            "base": "http://127.0.0.1:9",
            "retries": 8,
            "connect_timeout": 30.0,
            "read_timeout": 30.0,
            "pagination": True,
            "verbose": False,
            "trace": False,
        }
    ]


def test_massive_is_preferred_and_neither_package_is_a_clear_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    old = types.ModuleType("polygon")
    old.RESTClient = _OldRESTClient
    monkeypatch.setitem(sys.modules, "polygon", old)
    assert polygon_client_package() == "massive"
    monkeypatch.setitem(sys.modules, "massive", None)
    monkeypatch.setitem(sys.modules, "polygon", None)
    with pytest.raises(ImportError, match=r"massive.*polygon-api-client"):
        polygon_client_package()


def test_importing_the_module_does_not_import_a_client() -> None:
    code = "import sys, market.polygon_source; print('massive' in sys.modules or 'polygon' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------------------------------------------
# Live (opt-in)


@pytest.mark.skipif(
    os.environ.get("TRADEFLOW_LIVE_TESTS") != "1" or not os.environ.get(API_KEY_ENV),
    reason=f"live Polygon test: set TRADEFLOW_LIVE_TESTS=1 and {API_KEY_ENV}",
)
def test_live_polygon_session() -> None:
    day = latest_completed_session(datetime.now(UTC) - timedelta(days=7))
    assert day is not None
    source = PolygonSource(PolygonConfig(quotes=False), os.environ[API_KEY_ENV])
    tape = source.fetch_day("SPY", day)
    assert dict(tape.trades.schema) == TRADE_SCHEMA and dict(tape.bars.schema) == BAR_SCHEMA
    assert tape.trades.height > 0 and tape.bars.height > 0
    lo, hi = session_bounds(day)
    assert tape.trades["ts"].min() >= lo.astype(datetime) and tape.trades["ts"].max() < hi.astype(datetime)


def test_an_empty_trades_list_beside_minute_bars_is_an_error_not_an_empty_day() -> None:
    data = spy_market()
    data.ticker("SPY").trades = []
    with serve_polygon(data) as url, pytest.raises(PolygonSourceError, match="minute bars but no trades"):
        make_source(url).fetch_day("SPY", DAY)
    data = spy_market()
    data.ticker("SPY").quotes = []
    with serve_polygon(data) as url:
        with pytest.raises(PolygonSourceError, match="no quotes"):
            make_source(url).fetch_day("SPY", DAY)
        tape = make_source(url, quotes=False, bars=False).fetch_day("SPY", DAY)
    assert tape.quotes is None and tape.bars is None and tape.trades.height == 5  # not fetched: stored rows stay


def test_quote_sizes_are_round_lots_before_november_2025_and_shares_from_then() -> None:
    before, after = date(2025, 10, 31), date(2025, 11, 3)
    data = FakePolygonData(api_key=KEY)
    spy = data.ticker("SPY")
    for d in (before, after):
        open_ns = int(session_bounds(d)[0].astype(np.int64))
        spy.trades.append(_trade(open_ns + 1, 600.0, 10))
        spy.quotes.append(_quote(open_ns + 2, 600.0, 600.02, 3, 140))  # lots before, shares from 2025-11-03
    with serve_polygon(data) as url:
        sizes = {d: make_source(url, bars=False).fetch_day("SPY", d).quotes.row(0)[-2:] for d in (before, after)}
    assert sizes == {before: (300.0, 14_000.0), after: (3.0, 140.0)}
    assert PolygonConfig.from_dict({"quote_shares_since": "2026-01-05"}).quote_shares_since == date(2026, 1, 5)


def test_distinct_prints_sharing_a_nanosecond_survive_and_a_resent_print_is_a_duplicate() -> None:
    data = FakePolygonData(api_key=KEY)
    same = OPEN_NS + 42
    data.ticker("SPY").trades = [
        _trade(same, 470.0, 100, id="a"),
        _trade(same, 470.0, 100, id="b"),
        _trade(same, 470.0, 100, id="c", exchange=12),
        _trade(same, 470.0, 100, id="a"),  # Polygon sending print "a" again
    ]
    data.ticker("SPY").quotes = [_quote(same, 469.99, 470.01, 1, 1)]
    with serve_polygon(data) as url:
        tape = make_source(url, bars=False).fetch_day("SPY", DAY)
    assert _ts(tape.trades) == [same, same + 1, same + 2, same]
    clean, bad = validate_trades(tape.trades, get_symbol("SPY"), DAY)
    assert clean.height == 3 and bad["reason"].to_list() == ["duplicate"]


def test_a_base_url_carrying_a_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="base_url") as info:
        PolygonConfig.from_dict({"base_url": f"https://api.massive.com/?apiKey={KEY}"})
    assert KEY not in str(info.value)


def test_a_next_url_on_another_host_is_followed_on_our_base_only() -> None:
    data = spy_market(page_cap=2)
    data.next_url_base = "http://127.0.0.1:9"  # nothing listens there: a request to it would fail the fetch
    with serve_polygon(data) as url:
        tape = make_source(url, max_retries=0).fetch_day("SPY", DAY)
    assert tape.trades.height == 5 and len(data.paths("/v3/trades/")) == 3  # every page came from our server


def test_a_rate_limited_later_page_is_retried_alone_without_restarting_the_list() -> None:
    data = spy_market(page_cap=2)
    data.fail("/v3/trades/", 429, times=2, skip=1)  # the second page is rate-limited twice
    sleeps: list[float] = []
    with serve_polygon(data) as url:
        tape = make_source(url, sleeps, page_retries=3, quotes=False, bars=False).fetch_day("SPY", DAY)
    assert tape.trades.height == 5 and sleeps == []  # no list restart: the client retried that page
    trades = [r for r in data.requests if r.path.startswith("/v3/trades/")]
    assert [r.status for r in trades] == [200, 429, 429, 200, 200]
    assert sum("cursor" not in r.query for r in trades) == 1  # the first page was asked for once


def test_a_futures_contract_day_comes_from_the_futures_endpoints_by_cme_trading_day() -> None:
    from market.calendar import CME_EQUITY

    day = date(2024, 1, 16)
    lo, hi = (int(b.astype(np.int64)) for b in session_bounds(day, CME_EQUITY))
    data = FakePolygonData(api_key=KEY, page_cap=2)  # tiny pages: next_url must be followed
    es = data.ticker("ESH4")
    trade = {"ticker": "ESH4", "session_end_date": "2024-01-16", "channel": 1}
    es.futures_trades = [
        {**trade, "timestamp": lo + 1_000_000, "price": 4800.0, "size": 2, "sequence_number": 10},
        {**trade, "timestamp": lo + 1_000_000, "price": 4800.0, "size": 2, "sequence_number": 11},  # a legal repeat
        {**trade, "timestamp": lo + 1_000_000, "price": 4800.0, "size": 2, "sequence_number": 10},  # sent twice
        {**trade, "timestamp": hi - 1, "price": 4810.25, "size": 1, "sequence_number": 12},
        {**trade, "session_end_date": "2024-01-17", "timestamp": hi + 3_600 * 10**9, "price": 4811.0, "size": 1},
    ]
    es.futures_quotes = [
        {"ticker": "ESH4", "session_end_date": "2024-01-16", "timestamp": lo, "bid_price": 4799.75,
         "ask_price": 4800.0, "bid_size": 12, "ask_size": 9},
    ]  # fmt: skip
    es.futures_aggs = [
        {"ticker": "ESH4", "window_start": lo, "open": 4800.0, "high": 4800.0, "low": 4800.0, "close": 4800.0,
         "volume": 6, "dollar_volume": 28_800.0, "transactions": 3},
    ]  # fmt: skip
    with serve_polygon(data) as url:
        tape = make_source(url).fetch_day("ESH24", day)
        assert data.paths("/futures/v1/trades/ESH4") and data.paths("/futures/v1/aggs/ESH4")
    assert tape.trades["price"].to_list() == [4800.0, 4800.0, 4800.0, 4810.25]
    assert tape.trades["vendor_id"].to_list() == ["1:10", "1:11", "1:10", "1:12"]
    clean, bad = validate_trades(tape.trades, get_symbol("ESH24"), day)
    assert clean.height == 3 and bad["reason"].to_list() == ["duplicate"]  # only the re-send goes
    assert tape.quotes["bid_size"].to_list() == [12.0] and tape.bars["vwap"].to_list() == [4800.0]
