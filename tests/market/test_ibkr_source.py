"""The IB connector against a fake TWS, with the real ib_async client on the wire (no network, 127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import polars as pl
import pytest

from market import ibkr_source
from market.calendar import latest_completed_session, session_bounds
from market.ibkr_source import (
    ContractSpec,
    IbkrConfig,
    IbkrImportError,
    IbkrMissingDataError,
    IbkrSource,
    IbkrSourceError,
    PacingLimiter,
    ib_module_name,
)
from market.sources import BAR_SCHEMA, QUOTE_SCHEMA, TRADE_SCHEMA, MissingDataError
from market.symbols import get_symbol
from market.synthetic import SyntheticMarketConfig, generate_day
from tests import ROOT
from tests.fake_tws import (
    CANCEL_HISTORICAL_DATA,
    NO_DATA_TEXT,
    REQ_HISTORICAL_DATA,
    REQ_HISTORICAL_TICKS,
    REQ_POSITIONS,
    START_API,
    Bar,
    FakeClock,
    FakeMarket,
    FakeTws,
    MidTick,
    QuoteTick,
    TradeTick,
    disconnect,
    error,
    market_from_tape,
    no_data,
    pacing_violation,
    rewind,
    running_tws,
    silence,
)
from warehouse.validate import validate_trades

DAY = date(2024, 1, 2)
OPEN = int(datetime(2024, 1, 2, 14, 30, tzinfo=UTC).timestamp())  # 09:30 New York
CLOSE = OPEN + 23_400  # 16:00 New York
NS = 1_000_000_000


def make_source(port: int, **overrides: object) -> tuple[IbkrSource, FakeClock, list[float]]:
    """A source with short timeouts, a fake-clock pacing limiter and a recording backoff sleep (no real waits)."""
    settings: dict[str, object] = {"port": port, "timeout_s": 0.5, "connect_timeout_s": 2.0, "backoff_s": 0.25}
    settings.update(overrides)
    config = IbkrConfig(**settings)
    clock, backoffs = FakeClock(), []
    source = IbkrSource(config, limiter=PacingLimiter(clock, clock.sleep, config.pacing), sleep=backoffs.append)
    return source, clock, backoffs


def small_market() -> FakeMarket:
    m = FakeMarket()
    m.set_bars(
        "SPY",
        [
            Bar(OPEN, 470.0, 470.5, 469.9, 470.2, 1234.5, 470.1, 12),
            Bar(OPEN + 60, 470.2, 470.3, 470.0, 470.1, 800.0, -1.0, -1),  # IB's -1: no average / count
            Bar(CLOSE - 60, 471.0, 471.2, 470.8, 471.1, 2000.0, 471.0, 20),
        ],
    )
    m.set_ticks(
        "SPY",
        "TRADES",
        [TradeTick(OPEN + 1, 470.0, 100.0), TradeTick(OPEN + 1, 470.0, 100.0), TradeTick(OPEN + 5, 470.01, 37.5)],
    )
    m.set_ticks(
        "SPY",
        "BID_ASK",
        [QuoteTick(OPEN, 469.99, 470.01, 300.0, 200.0), QuoteTick(OPEN + 2, 470.0, 470.02, 100.0, 4.0)],
    )
    m.set_bars("SPX", [Bar(OPEN, 4700.0, 4701.0, 4699.5, 4700.5, 0.0, -1.0, -1)])
    m.set_ticks("SPX", "TRADES", [TradeTick(OPEN, 4700.0, 0.0, "CBOE"), TradeTick(OPEN + 1, 4700.25, 0.0, "CBOE")])
    m.set_ticks("SPX", "MIDPOINT", [MidTick(OPEN, 4700.1), MidTick(OPEN + 1, 4700.3), MidTick(OPEN + 2, 4700.2)])
    return m


def at_seconds(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with ts cut to IB's whole seconds (the source spaces ticks of one second 1 ns apart)."""
    return frame.with_columns(pl.col("ts").dt.truncate("1s"))


def frame(schema: dict, rows: list[tuple]) -> pl.DataFrame:
    cols = list(schema)
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    data["ts"] = [datetime.fromtimestamp(s, UTC).replace(tzinfo=None) for s in data["ts"]]
    return pl.DataFrame(data, schema=schema)


# ----------------------------------------------------------------------------------------------------------
# The fake itself, with the plain ib_async client


def in_worker_thread(fn):
    """Run `fn()` in a worker thread: asyncio.run there leaves the main thread's event-loop state untouched."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def with_ib(port: int, body):
    """Run `body(ib)` with a connected read-only ib_async IB on a fresh event loop (in a worker thread)."""
    from ib_async import IB, StartupFetchNONE

    async def main():
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=3, timeout=2, readonly=True, fetchFields=StartupFetchNONE)
        try:
            return ib, await body(ib)
        finally:
            ib.disconnect()
            await asyncio.sleep(0.01)

    return in_worker_thread(lambda: asyncio.run(main()))


def test_fake_tws_handshake_with_the_real_client() -> None:
    async def body(ib):
        return ib.client.serverVersion(), ib.managedAccounts(), ib.isConnected()

    with FakeTws(small_market()) as tws:
        _, (version, accounts, connected) = with_ib(tws.port, body)
        assert (version, accounts, connected) == (178, ["DU1234567"], True)
        assert tws.handshakes == 1
        assert tws.message_ids() == [START_API, REQ_POSITIONS]
        assert tws.log[0].fields[2] == "3"  # startApi carries the client id


def test_fake_tws_bars_parse_to_utc_bar_starts_with_format_date_2_and_1() -> None:
    from ib_async import Stock

    async def body(ib):
        contract = Stock("SPY", "SMART", "USD")
        utc = await ib.reqHistoricalDataAsync(contract, "20240102-21:00:00", "23400 S", "1 min", "TRADES", True, 2)
        local = await ib.reqHistoricalDataAsync(contract, "20240102-21:00:00", "23400 S", "1 min", "TRADES", True, 1)
        return utc, local

    with FakeTws(small_market()) as tws:
        _, (utc, local) = with_ib(tws.port, body)
    starts = [OPEN, OPEN + 60, CLOSE - 60]
    assert [b.date for b in utc] == [datetime.fromtimestamp(s, UTC) for s in starts]
    assert all(b.date.utcoffset().total_seconds() == 0 for b in utc)
    assert [b.date.utcoffset().total_seconds() for b in local] == [-5 * 3600] * 3  # New York in January
    assert [b.date.timestamp() for b in local] == starts
    assert (utc[0].volume, utc[0].average, utc[0].barCount) == (1234.5, 470.1, 12)


def test_fake_tws_serves_the_three_tick_types_with_ib_paging_repeats() -> None:
    from ib_async import Index, Stock

    m = small_market()
    m.set_ticks("SPY", "TRADES", [TradeTick(OPEN + i // 3, 470.0 + i / 100, 1.0) for i in range(1500)])

    async def body(ib):
        spy = Stock("SPY", "SMART", "USD")
        page1 = await ib.reqHistoricalTicksAsync(spy, "20240102-14:30:00", "", 1000, "TRADES", True)
        page2_start = page1[-1].time.strftime("%Y%m%d-%H:%M:%S")
        page2 = await ib.reqHistoricalTicksAsync(spy, page2_start, "", 1000, "TRADES", True)
        quotes = await ib.reqHistoricalTicksAsync(spy, "20240102-14:30:00", "", 1000, "BID_ASK", True)
        mids = await ib.reqHistoricalTicksAsync(Index("SPX", "CBOE"), "20240102-14:30:00", "", 1000, "MIDPOINT", True)
        return page1, page2, quotes, mids

    with FakeTws(m) as tws:
        _, (page1, page2, quotes, mids) = with_ib(tws.port, body)
    assert len(page1) == 1000  # the cap
    assert page1[-1].time == datetime.fromtimestamp(OPEN + 333, UTC)  # 1000 = 333 full seconds + 1 tick
    assert [t.price for t in page2[:3]] == [t.price for t in page1[-1:]] + [470.0 + i / 100 for i in (1000, 1001)]
    assert len(page2) == 500 + 1  # the rest, plus the repeated first tick of the boundary second
    assert [(q.priceBid, q.priceAsk, q.sizeBid, q.sizeAsk) for q in quotes] == [
        (469.99, 470.01, 300.0, 200.0),
        (470.0, 470.02, 100.0, 4.0),
    ]
    assert [(t.time.timestamp(), t.price, t.size) for t in mids] == [
        (OPEN, 4700.1, 0.0),
        (OPEN + 1, 4700.3, 0.0),
        (OPEN + 2, 4700.2, 0.0),
    ]


def test_fake_tws_error_162_reaches_error_event() -> None:
    from ib_async import Stock

    seen = []

    async def body(ib):
        ib.errorEvent += lambda req_id, code, msg, contract: seen.append((code, msg))
        return await ib.reqHistoricalDataAsync(
            Stock("SPY", "SMART", "USD"), "20240102-21:00:00", "23400 S", "1 min", "TRADES", True, 2
        )

    with FakeTws(small_market(), scripts=[no_data(kind="bars")]) as tws:
        _, bars = with_ib(tws.port, body)
    assert list(bars) == []
    assert (162, NO_DATA_TEXT.format(symbol="SPY", exchange="SMART", what="TRADES")) in seen


# ----------------------------------------------------------------------------------------------------------
# The connector


def test_fetch_day_bars_trades_and_quotes() -> None:
    with FakeTws(small_market()) as tws:
        source, _, _ = make_source(tws.port)
        with source:
            tape = source.fetch_day("SPY", DAY)
        bars_req = tws.requests_of("bars")
        assert [(r.what_to_show, r.bar_size, r.format_date, r.use_rth) for r in bars_req] == [
            ("TRADES", "1 min", 2, True)
        ]
        assert (bars_req[0].end, bars_req[0].duration) == ("20240102-21:00:00", "23400 S")
        assert {r.start for r in tws.requests_of("ticks")} >= {"20240102-14:30:00"}
        assert tws.order_messages() == []
    assert tape.bars.equals(
        frame(
            BAR_SCHEMA,
            [
                ("SPY", OPEN, 470.0, 470.5, 469.9, 470.2, 1234.5, 470.1, 12),
                ("SPY", OPEN + 60, 470.2, 470.3, 470.0, 470.1, 800.0, None, None),
                ("SPY", CLOSE - 60, 471.0, 471.2, 470.8, 471.1, 2000.0, 471.0, 20),
            ],
        )
    )
    assert at_seconds(tape.trades).equals(
        frame(
            TRADE_SCHEMA,
            [("SPY", OPEN + 1, 470.0, 100.0), ("SPY", OPEN + 1, 470.0, 100.0), ("SPY", OPEN + 5, 470.01, 37.5)],
        )
    )
    assert at_seconds(tape.quotes).equals(
        frame(QUOTE_SCHEMA, [("SPY", OPEN, 469.99, 470.01, 300.0, 200.0), ("SPY", OPEN + 2, 470.0, 470.02, 100.0, 4.0)])
    )


def test_extended_hours_requests_the_pre_to_after_hours_window_without_rth() -> None:
    with FakeTws(small_market()) as tws:
        source, _, _ = make_source(tws.port, extended_hours=True, ticks=False, quotes=False)
        with source:
            source.fetch_day("SPY", DAY)
        (req,) = tws.requests_of("bars")
    assert (req.end, req.duration, req.use_rth) == ("20240103-01:00:00", "57600 S", False)  # 04:00-20:00 New York


@pytest.mark.parametrize("index_ticks", ["TRADES", "MIDPOINT"])
def test_index_levels_are_trades_with_size_zero_and_no_quotes(index_ticks: str) -> None:
    with FakeTws(small_market()) as tws:
        source, _, _ = make_source(tws.port, index_ticks=index_ticks)
        with source:
            tape = source.fetch_day("SPX", DAY)
        assert {r.what_to_show for r in tws.requests_of("ticks")} == {index_ticks}
        assert {(r.sec_type, r.exchange) for r in tws.requests} == {("IND", "CBOE")}
    levels = {"TRADES": [4700.0, 4700.25], "MIDPOINT": [4700.1, 4700.3, 4700.2]}[index_ticks]
    assert tape.trades["price"].to_list() == levels
    assert tape.trades["size"].to_list() == [0.0] * len(levels)
    assert tape.quotes.height == 0 and tape.quotes.schema == pl.Schema(QUOTE_SCHEMA)
    assert tape.bars["volume"].to_list() == [0.0]


def paging_market() -> tuple[FakeMarket, list[tuple]]:
    """2500 trades, 3 per second, two of them identical: every page boundary cuts a second after its first tick."""
    ticks = []
    for i in range(2500):
        second, k = divmod(i, 3)
        price = 470.0 + second / 100
        ticks.append(TradeTick(OPEN + second, price + (0.005 if k == 2 else 0.0), 200.0 if k == 2 else 100.0))
    m = small_market().set_ticks("SPY", "TRADES", ticks)
    return m, [("SPY", t.time, t.price, t.size) for t in ticks]


@pytest.mark.parametrize("complete_last_second", [False, True])
def test_paging_returns_every_tick_exactly_once_including_same_second_duplicates(complete_last_second: bool) -> None:
    m, expected = paging_market()
    with FakeTws(m, complete_last_second=complete_last_second) as tws:
        source, _, _ = make_source(tws.port, quotes=False, bars=False)
        with source:
            tape = source.fetch_day("SPY", DAY)
        pages = tws.requests_of("ticks", what_to_show="TRADES")
        assert source.requests_made == len(pages)
    assert at_seconds(tape.trades).equals(frame(TRADE_SCHEMA, expected))
    # identical trades in one second survive (each page boundary fell right after one of them), 1 ns apart in
    # IB's order, so the warehouse does not take them for a feed's duplicated rows
    assert tape.trades.filter(pl.col("size") == 100.0).height == 2 * 834 - 1
    offsets = tape.trades["ts"].cast(pl.Int64) % 1_000_000_000
    assert tape.trades["ts"].is_unique().all() and offsets.max() < 1_000
    assert offsets.to_list() == at_seconds(tape.trades).select(pl.int_range(pl.len()).over("ts")).to_series().to_list()
    # 1000 + 999 + 501 fresh ticks (hard cap) or 1000 + 1002 + 498 (complete seconds), then one page of repeats
    assert [p.start for p in pages][:2] == ["20240102-14:30:00", "20240102-14:35:33"]
    assert len(pages) == 4


def test_a_full_page_inside_one_second_moves_on_instead_of_looping(caplog: pytest.LogCaptureFixture) -> None:
    dense = [TradeTick(OPEN + 10, 470.0 + i / 1000, 1.0) for i in range(1200)]
    after = [TradeTick(OPEN + 11, 471.0, 5.0), TradeTick(OPEN + 12, 471.5, 6.0)]
    m = small_market().set_ticks("SPY", "TRADES", dense + after)
    with FakeTws(m) as tws, caplog.at_level(logging.WARNING, logger="market.ibkr_source"):
        source, _, _ = make_source(tws.port, quotes=False, bars=False)
        with source:
            tape = source.fetch_day("SPY", DAY)
        starts = [r.start for r in tws.requests_of("ticks")]
    # IB's hard cap hides ticks 1001..1200 of that second; the rest of the day still comes through
    assert tape.trades["price"].to_list() == [t.price for t in dense[:1000]] + [471.0, 471.5]
    assert starts == ["20240102-14:30:00", "20240102-14:30:11", "20240102-14:30:12"]
    assert "ticks in the single second" in caplog.text


def test_ticks_after_the_window_end_are_not_kept_and_paging_stops() -> None:
    ticks = [TradeTick(CLOSE - 1, 471.0, 1.0), TradeTick(CLOSE, 471.5, 2.0), TradeTick(CLOSE + 30, 472.0, 3.0)]
    m = small_market().set_ticks("SPY", "TRADES", ticks)
    with FakeTws(m) as tws:
        source, _, _ = make_source(tws.port, quotes=False, bars=False)
        with source:
            tape = source.fetch_day("SPY", DAY)
        assert len(tws.requests_of("ticks")) == 1
    assert tape.trades["price"].to_list() == [471.0]


def test_synthetic_day_served_as_tws_round_trips_at_one_second_resolution() -> None:
    tape = generate_day(SyntheticMarketConfig(trades_per_day=1500, quotes_per_day=1200), "SPY", DAY)
    with running_tws(market_from_tape(tape)) as port:
        source, _, _ = make_source(port)
        with source:
            got = source.fetch_day("SPY", DAY)
    assert at_seconds(got.trades).equals(at_seconds(tape.trades))
    assert at_seconds(got.quotes).equals(at_seconds(tape.quotes))
    clean, bad = validate_trades(got.trades, get_symbol("SPY"), DAY)
    assert clean.height == tape.trades.height and bad.height == 0  # same-second repeats are not "duplicates"
    assert got.bars.height == tape.trades.select(pl.col("ts").dt.truncate("1m").n_unique()).item()
    assert got.bars.schema == pl.Schema(BAR_SCHEMA)


@pytest.mark.parametrize("kind", ["bars", "ticks"])
def test_an_empty_result_is_an_error_naming_the_request_not_no_data(kind: str) -> None:
    with FakeTws(small_market(), scripts=[silence(kind=kind)]) as tws:
        source, _, _ = make_source(tws.port, timeout_s=0.2)
        started = time.perf_counter()
        with source, pytest.raises(IbkrSourceError) as info:
            source.fetch_day("SPY", DAY)
        assert time.perf_counter() - started < 2.0
        if kind == "bars":
            assert CANCEL_HISTORICAL_DATA in tws.message_ids()  # ib_async gave up and cancelled
    assert not isinstance(info.value, MissingDataError)
    name = "reqHistoricalData(SPY 2024-01-02" if kind == "bars" else "reqHistoricalTicks(SPY 2024-01-02 TRADES"
    assert name in str(info.value)
    assert ("empty result" in str(info.value)) if kind == "bars" else ("timed out" in str(info.value))


def test_an_empty_tick_page_is_an_error() -> None:
    m = small_market().set_ticks("SPY", "BID_ASK", [])
    with FakeTws(m) as tws:
        source, _, _ = make_source(tws.port)
        with source, pytest.raises(IbkrSourceError, match=r"BID_ASK from 20240102-14:30:00 UTC, page 1.*empty result"):
            source.fetch_day("SPY", DAY)


def test_error_162_is_surfaced_with_its_code_and_message_and_not_retried() -> None:
    text = "Historical Market Data Service error message:No market data permissions for ARCA STK"
    with FakeTws(small_market(), scripts=[error(162, text, kind="bars", times=None)]) as tws:
        source, _, backoffs = make_source(tws.port)
        with source, pytest.raises(IbkrSourceError) as info:
            source.fetch_day("SPY", DAY)
        assert len(tws.requests_of("bars")) == 1
    assert f"error 162: {text}" in str(info.value)
    assert "reqHistoricalData(SPY 2024-01-02" in str(info.value)
    assert backoffs == []


def test_unknown_contract_error_200_is_surfaced() -> None:
    with FakeTws(small_market()) as tws:  # the fake has no QQQ
        source, _, _ = make_source(tws.port)
        with source, pytest.raises(IbkrSourceError, match="error 200: No security definition"):
            source.fetch_day("QQQ", DAY)


def test_ib_no_data_for_a_trading_session_is_missing_data() -> None:
    with FakeTws(small_market(), scripts=[no_data(kind="bars")]) as tws:
        source, _, backoffs = make_source(tws.port)
        with source, pytest.raises(MissingDataError) as info:
            source.fetch_day("SPY", DAY)
    assert isinstance(info.value, IbkrMissingDataError) and isinstance(info.value, IbkrSourceError)
    assert "HMDS query returned no data" in str(info.value) and "error 162" in str(info.value)
    assert backoffs == []


def test_a_pacing_violation_is_retried_after_backoff_and_the_15_s_identical_rule() -> None:
    m, expected = paging_market()
    with FakeTws(m, scripts=[pacing_violation(kind="ticks", nth=2)]) as tws:
        source, clock, backoffs = make_source(tws.port, quotes=False, bars=False)
        with source:
            tape = source.fetch_day("SPY", DAY)
        starts = [r.start for r in tws.requests_of("ticks")]
    assert at_seconds(tape.trades).equals(frame(TRADE_SCHEMA, expected))
    assert starts[1] == starts[2] == "20240102-14:35:33"  # page 2 sent again
    assert backoffs == [0.25]
    assert clock.now >= 15.0  # the retry of an identical request waited out IB's 15 s rule


def test_persistent_pacing_violations_give_up_after_max_retries() -> None:
    with FakeTws(small_market(), scripts=[pacing_violation(kind="bars", times=None)]) as tws:
        source, _, backoffs = make_source(tws.port, max_retries=2)
        with source, pytest.raises(IbkrSourceError, match=r"failed after 3 attempts.*pacing violation"):
            source.fetch_day("SPY", DAY)
        assert len(tws.requests_of("bars")) == 3
    assert backoffs == [0.25, 0.5]


def test_a_connection_reset_reconnects_and_retries() -> None:
    m, expected = paging_market()
    with FakeTws(m, scripts=[disconnect(kind="ticks", nth=2)]) as tws:
        source, _, backoffs = make_source(tws.port, quotes=False, bars=False)
        with source:
            tape = source.fetch_day("SPY", DAY)
        assert tws.handshakes == 2
        assert tws.order_messages() == []
    assert at_seconds(tape.trades).equals(frame(TRADE_SCHEMA, expected))
    assert backoffs == [0.25]


def test_a_refused_connection_is_retried_then_reported() -> None:
    with FakeTws() as tws:
        port = tws.port
    source, _, backoffs = make_source(port, max_retries=1)
    with source, pytest.raises(IbkrSourceError, match=r"failed after 2 attempts.*connect to TWS at 127.0.0.1"):
        source.fetch_day("SPY", DAY)
    assert backoffs == [0.25]


def test_nothing_is_ever_ordered_and_the_connect_is_read_only() -> None:
    with FakeTws(small_market()) as tws:
        source, _, _ = make_source(tws.port)
        with source:
            source.fetch_day("SPY", DAY)
            source.fetch_day("SPX", DAY)
        ids = tws.message_ids()
    assert tws.order_messages() == []
    # startApi, positions (always sent by ib_async), then historical requests only: no account / order downloads
    assert ids[:2] == [START_API, REQ_POSITIONS]
    assert set(ids[2:]) <= {REQ_HISTORICAL_DATA, REQ_HISTORICAL_TICKS}


def test_reuse_from_threads_and_inside_an_event_loop_then_close_leaves_no_thread_or_socket() -> None:
    with FakeTws(small_market()) as tws:
        source, _, _ = make_source(tws.port, quotes=False)
        first = source.fetch_day("SPY", DAY)
        with ThreadPoolExecutor(1) as pool:  # another thread, same connection
            second = pool.submit(source.fetch_day, "SPY", DAY).result()

        async def inside_a_running_loop():
            return source.fetch_day("SPX", DAY)

        third = in_worker_thread(lambda: asyncio.run(inside_a_running_loop()))
        assert tws.handshakes == 1
        source.close()
        assert source.fetch_day("SPX", DAY).trades.equals(third.trades)  # a closed source reconnects when used
        assert tws.handshakes == 2
        source.close()
        source.close()
        assert not source.connected
        deadline = time.monotonic() + 2.0
        while tws._conns and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tws._conns == []  # the fake saw the socket close
        again, _, _ = make_source(tws.port, quotes=False)
        with again:
            assert again.fetch_day("SPY", DAY).trades.equals(first.trades)
    assert first.trades.equals(second.trades) and third.trades.height == 2
    assert not [t for t in threading.enumerate() if t.name == "ibkr-source-loop"]


def test_a_source_never_closed_is_cleaned_up_when_collected() -> None:
    with FakeTws(small_market()) as tws:
        source, _, _ = make_source(tws.port, ticks=False, quotes=False)
        source.fetch_day("SPY", DAY)
        assert [t for t in threading.enumerate() if t.name == "ibkr-source-loop"]
        del source
        gc.collect()
        assert not [t for t in threading.enumerate() if t.name == "ibkr-source-loop"]


def test_an_injected_client_raising_request_errors_reports_the_error_once() -> None:
    from ib_async import IB

    ib = IB()
    ib.RaiseRequestErrors = True
    text = "Historical Market Data Service error message:No market data permissions for ARCA STK"
    with FakeTws(small_market(), scripts=[error(162, text, kind="bars")]) as tws:
        clock = FakeClock()
        source = IbkrSource(IbkrConfig(port=tws.port), ib=ib, limiter=PacingLimiter(clock, clock.sleep))
        with source, pytest.raises(IbkrSourceError) as info:
            source.fetch_day("SPY", DAY)
    assert str(info.value).count("error 162") == 1 and text in str(info.value)


def test_symbol_and_date_checks_happen_before_any_connection() -> None:
    source = IbkrSource(IbkrConfig(port=1))
    with pytest.raises(ValueError, match="not an NYSE session"):
        source.fetch_day("SPY", date(2024, 1, 6))
    with pytest.raises(ValueError, match="unknown symbol"):
        source.fetch_day("AAPL", DAY)
    mismatched = IbkrConfig.from_dict({"contracts": {"SPX": {"sec_type": "STK", "exchange": "SMART"}}})
    with pytest.raises(ValueError, match=r"contracts.SPX.sec_type 'STK' does not match a index"):
        IbkrSource(mismatched).fetch_day("SPX", DAY)
    assert not source.connected
    assert repr(source) == "IbkrSource(host='127.0.0.1', port=1, client_id=17, connected=False)"


# ----------------------------------------------------------------------------------------------------------
# Configuration and import


def test_config_defaults_and_from_dict() -> None:
    c = IbkrConfig.from_dict({})
    assert (c.host, c.port, c.client_id, c.extended_hours, c.ticks, c.quotes, c.bars) == (
        "127.0.0.1",
        7497,
        17,
        False,
        True,
        True,
        True,
    )
    assert c.contracts["SPY"] == ContractSpec("STK", "SMART", "USD", "ARCA")
    assert c.contracts["SPX"] == ContractSpec("IND", "CBOE", "USD")
    assert (c.pacing.identical_s, c.pacing.contract_max, c.pacing.window_max, c.pacing.bid_ask_weight) == (15, 5, 60, 2)
    c = IbkrConfig.from_dict(
        {
            "port": 4002,
            "client_id": 3,
            "timeout_s": 5,
            "index_ticks": "MIDPOINT",
            "contracts": {"SPY": {"sec_type": "STK", "exchange": "ARCA", "currency": "USD"}},
            "pacing": {"window_max": 50},
        }
    )
    assert (c.port, c.client_id, c.timeout_s, c.index_ticks, c.pacing.window_max) == (4002, 3, 5, "MIDPOINT", 50)
    assert c.contracts["SPY"] == ContractSpec("STK", "ARCA", "USD") and "QQQ" in c.contracts


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"hots": "x"}, "'hots'"),
        ({"port": "7497"}, "port"),
        ({"port": 0}, "port"),
        ({"client_id": -1}, "client_id"),
        ({"client_id": True}, "client_id"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"ticks": "yes"}, "ticks"),
        ({"index_ticks": "BID_ASK"}, "index_ticks"),
        ({"max_retries": -1}, "max_retries"),
        ({"host": ""}, "host"),
        ({"contracts": {"SPY": {"sec_type": "OPT", "exchange": "SMART"}}}, "contracts.SPY.sec_type"),
        ({"contracts": {"SPY": {"sec_type": "STK", "exchange": "SMART", "expiry": "x"}}}, "contracts.SPY.expiry"),
        ({"contracts": {"SPY": {"sec_type": "STK"}}}, "contracts.SPY"),
        ({"pacing": {"window_max": 0}}, "pacing.window_max"),
        ({"pacing": {"burst": 3}}, "pacing.burst"),
    ],
)
def test_config_refuses_unknown_keys_and_bad_values(data: dict, key: str) -> None:
    with pytest.raises(ValueError, match=f"ibkr config: {key}"):
        IbkrConfig.from_dict(data)


@pytest.mark.parametrize(
    ("installed", "expected"),
    [({"ib_async"}, "ib_async"), ({"ib_insync"}, "ib_insync"), ({"ib_async", "ib_insync"}, None), (set(), None)],
)
def test_import_prefers_ib_async_accepts_ib_insync_and_refuses_both(
    monkeypatch: pytest.MonkeyPatch, installed: set[str], expected: str | None
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        if name in ("ib_async", "ib_insync"):
            return object() if name in installed else None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(ibkr_source.importlib.util, "find_spec", find_spec)
    if expected is not None:
        assert ib_module_name() == expected
    else:
        with pytest.raises(IbkrImportError, match="eventkit" if installed else "needs ib_async"):
            ib_module_name()


def test_importing_the_module_does_not_import_the_ib_client() -> None:
    code = "import sys, market.ibkr_source; print('ib_async' in sys.modules, 'ib_insync' in sys.modules)"
    root = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------------------------------------
# Live (opt-in): a running paper TWS / IB Gateway


@pytest.mark.skipif(
    os.environ.get("TRADEFLOW_LIVE_TESTS") != "1" or not os.environ.get("TRADEFLOW_IBKR_PORT"),
    reason="live IB test: set TRADEFLOW_LIVE_TESTS=1 and TRADEFLOW_IBKR_PORT (a running paper TWS / Gateway)",
)
def test_live_paper_tws_bars() -> None:
    day = latest_completed_session(datetime.now(UTC))
    config = IbkrConfig(
        host=os.environ.get("TRADEFLOW_IBKR_HOST", "127.0.0.1"),
        port=int(os.environ["TRADEFLOW_IBKR_PORT"]),
        client_id=int(os.environ.get("TRADEFLOW_IBKR_CLIENT_ID", "917")),
        ticks=False,
        quotes=False,
    )
    with IbkrSource(config) as source:
        tape = source.fetch_day("SPY", day)
    lo, hi = (t.astype("datetime64[us]").astype(datetime) for t in session_bounds(day))
    assert tape.bars.height > 0
    assert tape.bars["ts"].min() >= lo and tape.bars["ts"].max() < hi


def test_a_full_page_in_the_last_second_of_the_window_ends_the_stream() -> None:
    earlier = [TradeTick(CLOSE - 5, 470.5, 2.0)]
    dense = [TradeTick(CLOSE - 1, 471.0 + i / 1000, 1.0) for i in range(1000)]
    m = small_market().set_ticks("SPY", "TRADES", earlier + dense)
    with FakeTws(m) as tws:
        source, _, _ = make_source(tws.port, quotes=False, bars=False)
        with source:
            tape = source.fetch_day("SPY", DAY)
        assert len(tws.requests_of("ticks")) == 2  # no request from the close, which would answer nothing
    assert tape.trades.height == 1001


def test_a_stream_switched_off_is_none_so_the_warehouse_keeps_it() -> None:
    with FakeTws(small_market()) as tws:
        source, _, _ = make_source(tws.port, ticks=False, quotes=False)
        with source:
            tape = source.fetch_day("SPY", DAY)
            index = source.fetch_day("SPX", DAY)
        assert tws.requests_of("ticks") == []
    assert tape.trades is None and tape.quotes is None and tape.bars.height > 0
    assert index.quotes is not None and index.quotes.height == 0  # an index has no quotes: empty, not "not fetched"


def test_a_page_of_only_earlier_ticks_is_an_error_not_a_paced_loop() -> None:
    m, _ = paging_market()
    with FakeTws(m, scripts=[rewind(3600, kind="ticks", nth=2, times=None)]) as tws:
        source, _, _ = make_source(tws.port, quotes=False, bars=False)
        stale = "ticks before the requested start and nothing new: no progress"
        with source, pytest.raises(IbkrSourceError, match=stale):
            source.fetch_day("SPY", DAY)
        assert len(tws.requests_of("ticks")) == 2  # stopped at the stale page, not 15 s per repeat for days


def test_ticks_before_the_requested_start_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    ticks = [TradeTick(OPEN - 5, 469.0, 1.0), TradeTick(OPEN, 470.0, 2.0), TradeTick(OPEN + 1, 470.5, 3.0)]
    m = small_market().set_ticks("SPY", "TRADES", ticks)
    with FakeTws(m, scripts=[rewind(10, kind="ticks", nth=1)]) as tws, caplog.at_level(logging.WARNING):
        source, _, _ = make_source(tws.port, quotes=False, bars=False)
        with source:
            tape = source.fetch_day("SPY", DAY)
    assert tape.trades["price"].to_list() == [470.0, 470.5]
    assert "dropped 1 ticks before the requested start" in caplog.text


def test_a_futures_contract_is_a_future_of_its_root_over_the_whole_globex_day() -> None:
    from market.calendar import CME_EQUITY, session_bounds

    day = date(2024, 1, 16)  # the Globex day opens at 17:00 CT on MLK Day, the 15th
    lo, hi = (int(b.astype("int64") // 1_000_000_000) for b in session_bounds(day, CME_EQUITY))
    m = FakeMarket()
    m.set_ticks(
        "ES:202403",
        "TRADES",
        [
            TradeTick(lo - 60, 4799.0, 1.0),
            TradeTick(lo, 4800.0, 2.0),
            TradeTick(lo, 4800.0, 2.0),
            TradeTick(hi - 1, 4810.25, 1.0),
        ],
    )
    m.set_ticks("ES:202403", "BID_ASK", [QuoteTick(lo, 4799.75, 4800.0, 10.0, 12.0)])
    m.set_bars("ES:202403", [Bar(lo, 4800.0, 4800.0, 4800.0, 4800.0, 4.0, 4800.0, 2)])
    with FakeTws(m) as tws:
        source, _, _ = make_source(tws.port)
        with source:
            tape = source.fetch_day("ESH24", day)
            with pytest.raises(ValueError, match="'ES' is a futures root; ask for a contract such as ESH24"):
                source.fetch_day("ES", day)
        requests = tws.requests_of("ticks")
    assert {(r.symbol, r.sec_type, r.exchange, r.use_rth) for r in requests} == {("ES:202403", "FUT", "CME", False)}
    assert requests[0].start == datetime.fromtimestamp(lo, UTC).strftime("%Y%m%d-%H:%M:%S")  # 23:00 UTC on the 15th
    assert tape.trades["price"].to_list() == [4800.0, 4800.0, 4810.25]  # the repeat kept, nothing before the open
    assert tape.quotes.height == 1 and tape.bars.height == 1


def test_contfuture_discovery_names_the_front_contract_in_our_symbols() -> None:
    m = FakeMarket(fronts={"ES": "20240315"})
    with FakeTws(m) as tws:
        source, _, _ = make_source(tws.port)
        with source:
            assert source.front_contract("ES") == "ESH24"
            with pytest.raises(IbkrSourceError, match="200"):
                source.front_contract("NQ")  # configured, but IB knows no continuous contract for it here
            with pytest.raises(ValueError, match="not a futures root"):
                source.front_contract("SPY")
