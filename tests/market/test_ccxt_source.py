"""CcxtFundingSource against a local fake of binance USD-M futures, through the real ccxt.binance client (offline)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date

import polars as pl
import pytest

from market.ccxt_source import CcxtFundingSource, CcxtSourceError, infer_intervals
from market.funding import FUNDING_RATE_SCHEMA, MARK_PRICE_SCHEMA, FundingSource
from tests import ROOT
from tests.fake_exchange import HOUR_MS, FakeExchange, FakeSymbol

ccxt = pytest.importorskip("ccxt")

DAY = date(2024, 3, 1)
DAY0 = (DAY - date(1970, 1, 1)).days * 24 * HOUR_MS
FUNDING_PATH = "/fapi/v1/fundingRate"


def _symbols() -> dict[str, FakeSymbol]:
    """BTC: 8h; ETH: hourly (pagination); COAI: 8h -> 4h -> 1h inside the day (per-row intervals)."""
    btc = [(DAY0 + h * HOUR_MS, 1e-4 + h * 1e-6) for h in range(-48, 48, 8)]
    eth = [(DAY0 + h * HOUR_MS, 5e-5 * ((h % 7) - 3)) for h in range(-24, 48)]
    coai_hours = [-24, -16, -8, 0, 8, 12, 16, *range(17, 24), 24, 25]
    coai = [(DAY0 + h * HOUR_MS, 2e-3 + 1e-4 * (h % 5)) for h in coai_hours]
    return {
        "BTCUSDT": FakeSymbol("BTCUSDT", "BTC", btc, mark_start=60_000.0, mark_origin_ms=DAY0, bid=59_990, ask=60_010),
        "ETHUSDT": FakeSymbol("ETHUSDT", "ETH", eth, mark_start=3_000.0, mark_origin_ms=DAY0, bid=2_999, ask=3_001),
        "COAIUSDT": FakeSymbol(
            "COAIUSDT", "COAI", coai, mark_origin_ms=DAY0, bid=0.9, ask=1.1, quote_volume=2e6, funding_interval_hours=1
        ),
    }


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange(_symbols()) as server:
        yield server


def _source(fake: FakeExchange, symbols=("BTCUSDT", "ETHUSDT", "COAIUSDT"), sleeps=None, **kw) -> CcxtFundingSource:
    """A source whose real ccxt.binance client talks to the fake (ccxt's own throttle off: it only adds sleeps)."""

    def factory(exchange_id: str):
        assert exchange_id == "binance"
        return fake.point(ccxt.binance({"options": {"defaultType": "future"}, "enableRateLimit": False}))

    kw.setdefault("backoff_s", 0.01)
    sleeper = (lambda s: sleeps.append(s)) if sleeps is not None else (lambda s: None)
    return CcxtFundingSource(["binance"], list(symbols), client_factory=factory, sleep=sleeper, **kw)


def _truth(fake: FakeExchange, symbol: str) -> list[tuple[int, float]]:
    return [(t, r) for t, r in fake.symbols[symbol].funding if DAY0 <= t < DAY0 + 24 * HOUR_MS]


def _ms(col: pl.Series) -> list[int]:
    return (col.cast(pl.Int64) // 1_000_000).to_list()


def _assert_rates(rates: pl.DataFrame, truth: list[tuple[int, float]]) -> None:
    got = sorted(zip(_ms(rates["funding_time"]), rates["rate"].to_list(), strict=True))
    assert [t for t, _ in got] == [t for t, _ in truth]
    assert [r for _, r in got] == pytest.approx([r for _, r in truth], rel=1e-9, abs=1e-12)


def test_import_does_not_import_ccxt() -> None:
    code = "import sys, market.ccxt_source; assert 'ccxt' not in sys.modules, 'ccxt imported eagerly'"
    root = ROOT
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_own_pagination_returns_every_hourly_row(fake: FakeExchange) -> None:
    source = _source(fake, symbols=["ETH/USDT:USDT"], page_limit=5)  # unified symbols work too
    rates = source.fetch_day(DAY).funding_rates
    truth = _truth(fake, "ETHUSDT")
    assert rates.height == len(truth) == 24
    assert rates["funding_time"].n_unique() == 24
    _assert_rates(rates, truth)
    assert set(rates["symbol"]) == {"ETHUSDT"} and set(rates["interval_hours"]) == {1}
    starts = [int(q["startTime"]) for q in fake.calls(FUNDING_PATH)]
    assert len(starts) >= 7  # 8 look-back + 24 day rows at 5 a page
    assert starts[0] == DAY0 - 8 * HOUR_MS and starts == sorted(set(starts))  # each page starts after the last row
    assert {q["limit"] for q in fake.calls(FUNDING_PATH)} == {"5"}


def test_own_pagination_survives_newest_first_answers(fake: FakeExchange) -> None:
    """bybit/okx answer a [start, end] query with the NEWEST `limit` rows; windows of `limit` steps lose none."""
    fake.newest_first = True
    tape = _source(fake, page_limit=4).fetch_day(DAY)
    for symbol in fake.symbols:
        _assert_rates(tape.funding_rates.filter(pl.col("symbol") == symbol), _truth(fake, symbol))
        assert tape.mark_prices.filter(pl.col("symbol") == symbol).height == 96
    assert tape.mark_prices.select("symbol", "ts").n_unique() == 3 * 96


def test_second_exchange_bybit_through_real_ccxt_client() -> None:
    """binance + bybit in one tape: bybit answers newest-first in its own v5 format; each exchange keeps its data."""
    bybit = _symbols()
    for spec in bybit.values():
        spec.funding = [(t, r + 2e-4) for t, r in spec.funding]  # a cross-exchange spread
        spec.mark_start *= 1.001
    bybit["BTCUSDT"].funding_interval_hours = 8  # bybit lists each market's current interval (minutes) in its info
    with FakeExchange(_symbols(), bybit=bybit) as fake:

        def factory(exchange_id: str):
            cls = {"binance": ccxt.binance, "bybit": ccxt.bybit}[exchange_id]
            options = {"binance": {"defaultType": "future"}, "bybit": {"fetchMarkets": {"types": ["linear"]}}}
            return fake.point(cls({"options": options[exchange_id], "enableRateLimit": False}))

        source = CcxtFundingSource(
            ["binance", "bybit"], ["BTCUSDT", "ETHUSDT", "COAIUSDT"], page_limit=6, client_factory=factory
        )
        tape = source.fetch_day(DAY)
        assert tape.funding_rates.schema == pl.Schema(FUNDING_RATE_SCHEMA)
        assert tape.mark_prices.schema == pl.Schema(MARK_PRICE_SCHEMA)
        for exchange, specs in (("binance", fake.symbols), ("bybit", fake.bybit)):
            for symbol, spec in specs.items():
                rows = tape.funding_rates.filter((pl.col("exchange") == exchange) & (pl.col("symbol") == symbol))
                truth = [(t, r) for t, r in spec.funding if DAY0 <= t < DAY0 + 24 * HOUR_MS]
                _assert_rates(rows, truth)
                marks = tape.mark_prices.filter((pl.col("exchange") == exchange) & (pl.col("symbol") == symbol))
                ts = _ms(marks["ts"])
                assert sorted(ts) == [DAY0 + i * 15 * 60_000 for i in range(96)]
                assert marks["mark"].to_list() == pytest.approx([spec.mark_at(t) for t in ts], rel=1e-9)
                assert marks["volume_24h"].to_list() == pytest.approx([spec.quote_volume] * 96)
                half = (spec.ask - spec.bid) / (spec.ask + spec.bid)
                assert (marks["ask"] / marks["mark"]).to_list() == pytest.approx([1 + half] * 96)
        coai = tape.funding_rates.filter((pl.col("exchange") == "bybit") & (pl.col("symbol") == "COAIUSDT"))
        assert coai.sort("funding_time")["interval_hours"].to_list() == [8, 8, 4, 4, *[1] * 7]
        assert {p for p, _ in fake.log if p.startswith("/v5/")} == {
            "/v5/market/instruments-info",
            "/v5/market/funding/history",
            "/v5/market/mark-price-kline",
            "/v5/market/tickers",
        }


def test_missing_symbol_can_be_skipped(fake: FakeExchange) -> None:
    source = _source(fake, symbols=["BTCUSDT", "DOGEUSDT"], skip_missing=True)
    tape = source.fetch_day(DAY)
    assert source.missing == {("binance", "DOGEUSDT")}
    assert set(tape.funding_rates["symbol"]) == set(tape.mark_prices["symbol"]) == {"BTCUSDT"}


def test_ccxt_builtin_paginate_drops_hourly_rows_which_is_why_we_loop(fake: FakeExchange) -> None:
    """Reproduces the FACTS note on ccxt 4.5: `paginate=True` assumes 8h steps and loses hourly rows silently.

    If this starts failing, ccxt fixed it; the own loop stays correct either way.
    """
    days = 60
    fake.symbols["ETHUSDT"].funding = [(DAY0 + h * HOUR_MS, 1e-5) for h in range(24 * days)]
    client = fake.point(ccxt.binance({"options": {"defaultType": "future"}, "enableRateLimit": False}))
    until = DAY0 + days * 24 * HOUR_MS - 1
    rows = client.fetch_funding_rate_history("ETH/USDT:USDT", DAY0, None, {"paginate": True, "until": until})
    assert len({r["timestamp"] for r in rows}) < 24 * days


def test_interval_per_row_follows_changes(fake: FakeExchange) -> None:
    rates = _source(fake, page_limit=7).fetch_day(DAY).funding_rates
    coai = rates.filter(pl.col("symbol") == "COAIUSDT").sort("funding_time")
    hours = [(t - DAY0) // HOUR_MS for t in _ms(coai["funding_time"])]
    assert hours == [0, 8, 12, 16, *range(17, 24)]
    assert coai["interval_hours"].to_list() == [8, 8, 4, 4, *[1] * 7]
    btc = rates.filter(pl.col("symbol") == "BTCUSDT")
    assert btc.height == 3 and set(btc["interval_hours"]) == {8}


def test_infer_intervals_fallback_order() -> None:
    h = HOUR_MS
    assert infer_intervals([0, h, 2 * h]) == [1, 1, 1]  # first row: no predecessor, next gap
    assert infer_intervals([0, h, 2 * h], fallback=4) == [4, 1, 1]  # funding info beats the next gap
    assert infer_intervals([0, 16 * h, 20 * h]) == [8, 4, 4]  # a 16h gap (a missing row) is not an interval
    assert infer_intervals([0, 16 * h], fallback=2) == [2, 2]
    assert infer_intervals([5 * h]) == [8]


def test_frames_match_fd_schema_and_server_values(fake: FakeExchange) -> None:
    source = _source(fake)
    assert isinstance(source, FundingSource)
    tape = source.fetch_day(DAY)
    assert tape.funding_rates.schema == pl.Schema(FUNDING_RATE_SCHEMA)
    assert tape.mark_prices.schema == pl.Schema(MARK_PRICE_SCHEMA)
    for symbol, spec in fake.symbols.items():
        rates = tape.funding_rates.filter(pl.col("symbol") == symbol)
        _assert_rates(rates, _truth(fake, symbol))
        marks = tape.mark_prices.filter(pl.col("symbol") == symbol)
        ts = _ms(marks["ts"])
        assert ts == [DAY0 + i * 15 * 60_000 for i in range(96)]  # 15m marks at candle open, inside the day
        assert marks["mark"].to_list() == pytest.approx([spec.mark_at(t) for t in ts], rel=1e-9)
        half = (spec.ask - spec.bid) / (spec.ask + spec.bid)  # the book's relative half-spread around each mark
        assert (marks["bid"] / marks["mark"]).to_list() == pytest.approx([1 - half] * 96)
        assert (marks["ask"] / marks["mark"]).to_list() == pytest.approx([1 + half] * 96)
        assert marks["volume_24h"].to_list() == pytest.approx([spec.quote_volume] * 96)
    assert set(tape.funding_rates["exchange"]) == set(tape.mark_prices["exchange"]) == {"binance"}
    served = {path for path, _ in fake.log}
    assert served <= {
        "/api/v3/exchangeInfo",
        "/fapi/v1/exchangeInfo",
        "/dapi/v1/exchangeInfo",
        FUNDING_PATH,
        "/fapi/v1/fundingInfo",
        "/fapi/v1/markPriceKlines",
        "/fapi/v1/ticker/24hr",
        "/fapi/v1/ticker/bookTicker",
    }
    assert {q.get("interval") for q in fake.calls("/fapi/v1/markPriceKlines")} == {"15m"}


def test_frames_pass_warehouse_validation(fake: FakeExchange) -> None:
    funding = pytest.importorskip("warehouse.funding")
    tape = _source(fake).fetch_day(DAY)
    clean, bad = funding.validate_funding_rates(tape.funding_rates, DAY)
    assert bad.height == 0 and clean.height == tape.funding_rates.height
    clean, bad = funding.validate_mark_prices(tape.mark_prices, DAY)
    assert bad.height == 0 and clean.height == tape.mark_prices.height


def test_retry_after_429_then_same_result(fake: FakeExchange) -> None:
    baseline = _source(fake, page_limit=10).fetch_day(DAY)
    fake.log.clear()
    fake.fail_once[FUNDING_PATH] = (429, {"code": -1003, "msg": "Too many requests"})
    fake.fail_once["/fapi/v1/exchangeInfo"] = (418, {"code": -1003, "msg": "IP banned for a while"})
    sleeps: list[float] = []
    source = _source(fake, page_limit=10, sleeps=sleeps, backoff_s=0.25)
    tape = source.fetch_day(DAY)
    assert source.retry_count == 2 and sleeps == [0.25, 0.25]
    assert tape.funding_rates.equals(baseline.funding_rates)
    assert tape.mark_prices.equals(baseline.mark_prices)
    first_two = [q for p, q in fake.log if p == FUNDING_PATH][:2]
    assert first_two[0] == first_two[1]  # the rate-limited page was asked again, not skipped


def test_retries_exhausted_back_off_exponentially(fake: FakeExchange) -> None:
    fake.errors[(FUNDING_PATH, "ETHUSDT")] = (429, {"code": -1003, "msg": "Too many requests"})
    sleeps: list[float] = []
    source = _source(fake, symbols=["ETHUSDT"], max_retries=3, backoff_s=0.5, sleeps=sleeps)
    with pytest.raises(CcxtSourceError, match=r"binance fetch_funding_rate_history\(ETH/USDT:USDT\) failed after 4"):
        source.fetch_day(DAY)
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(fake.calls(FUNDING_PATH)) == 4


def test_non_transient_error_surfaces_at_once_with_clear_message(fake: FakeExchange) -> None:
    fake.errors[(FUNDING_PATH, "BTCUSDT")] = (400, {"code": -1121, "msg": "Invalid symbol."})
    source = _source(fake, symbols=["BTCUSDT"])
    with pytest.raises(CcxtSourceError) as info:
        source.fetch_day(DAY)
    message = str(info.value)
    assert "binance fetch_funding_rate_history(BTC/USDT:USDT) failed: BadSymbol" in message
    assert "Invalid symbol." in message
    assert source.retry_count == 0 and len(fake.calls(FUNDING_PATH)) == 1
    with pytest.raises(ValueError, match="'DOGEUSDT' has no linear perpetual swap on binance"):
        _source(fake, symbols=["DOGEUSDT"]).fetch_day(DAY)


def test_api_key_never_appears_in_errors(fake: FakeExchange, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_key = "k3y-THAT-must-not-leak"
    monkeypatch.setenv("TRADEFLOW_BINANCE_API_KEY", secret_key)
    monkeypatch.setenv("TRADEFLOW_BINANCE_SECRET", "s3cret-THAT-must-not-leak")
    from market.ccxt_source import _default_client

    client = _default_client("binance")
    assert client.apiKey == secret_key and client.enableRateLimit is True
    client.enableRateLimit = False
    fake.errors[(FUNDING_PATH, "BTCUSDT")] = (400, {"code": -1121, "msg": f"bad request for key {secret_key}"})
    source = CcxtFundingSource(["binance"], ["BTCUSDT"], client_factory=lambda _: fake.point(client))
    with pytest.raises(CcxtSourceError) as info:
        source.fetch_day(DAY)
    assert secret_key not in str(info.value) and "***" in str(info.value)


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="page_limit"):
        CcxtFundingSource(["binance"], ["BTCUSDT"], page_limit=0)
    with pytest.raises(ValueError, match="symbols"):
        CcxtFundingSource(["binance"], [])


def test_a_symbol_without_rows_or_without_a_ticker_is_a_recorded_gap_not_silence() -> None:
    symbols = _symbols()
    symbols["BTCUSDT"].funding = [(t, r) for t, r in symbols["BTCUSDT"].funding if t < DAY0 - 8 * HOUR_MS]  # delisted
    symbols["ETHUSDT"].ticker = False
    with FakeExchange(symbols) as fake:
        tape = _source(fake).fetch_day(DAY)
    assert sorted((e, s) for e, s, _ in tape.gaps) == [("binance", "BTCUSDT"), ("binance", "ETHUSDT")]
    reasons = {s: r for _, s, r in tape.gaps}
    assert reasons["BTCUSDT"] == "no funding rows on 2024-03-01 from binance"
    assert reasons["ETHUSDT"].startswith("no ticker matched ETH/USDT:USDT on binance")
    assert tape.funding_rates.filter(pl.col("symbol") == "BTCUSDT").height == 0
    with FakeExchange(_symbols()) as fake:
        assert _source(fake).fetch_day(DAY).gaps == ()
