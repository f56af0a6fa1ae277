"""IbkrChainSource through the real ib_async client against the fake TWS, serving quotes derived from the embedded
chain (tests/option_quotes.py): the chain picked from reqSecDefOptParams (SPXW for SPX), a strike IB does not know
skipped and reported instead of a crash, BID and ASK bars (never BID_ASK), missing minutes kept null, and nothing
ordered."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from market.chain_sources import CHAIN_SCHEMA, ChainSource
from market.ibkr_chain import IbkrChainSource
from market.ibkr_source import IbkrConfig, IbkrMissingDataError, PacingLimiter
from market.sources import DayTape, MissingDataError, SyntheticSource
from market.synthetic import SyntheticMarketConfig
from tests.fake_tws import REQ_CONTRACT_DATA, FakeClock, FakeMarket, FakeTws, add_option_chain, market_from_tape
from tests.option_quotes import embedded_chain, vendor_quotes

pytest.importorskip("ib_async")

DAY = date(2024, 3, 5)
EACH_SIDE = 3
CONFIG = SyntheticMarketConfig(trades_per_day=2_000, quotes_per_day=500)


@pytest.fixture(scope="module")
def quotes() -> pl.DataFrame:
    return vendor_quotes(embedded_chain(CONFIG, ["SPY", "SPX"], [DAY], EACH_SIDE))


def _market(quotes: pl.DataFrame, unknown: float | None = None, days: tuple[date, ...] = (DAY,)) -> FakeMarket:
    market = FakeMarket()
    for symbol in ("SPY", "SPX"):
        tapes = [SyntheticSource(CONFIG).fetch_day(symbol, d) for d in days]
        joined = DayTape(*(pl.concat([getattr(t, part) for t in tapes]) for part in ("trades", "quotes", "bars")))
        market_from_tape(joined, symbol, into=market)
    spy, spx = (quotes.filter(pl.col("underlying") == s) for s in ("SPY", "SPX"))
    add_option_chain(market, spy, unknown_strikes=() if unknown is None else (unknown,))
    add_option_chain(market, spx, decoy_classes=("SPX",))  # the monthly class lists the same expiration
    return market


def _source(port: int) -> tuple[IbkrChainSource, FakeClock]:
    config = IbkrConfig(port=port, timeout_s=2.0, connect_timeout_s=2.0)
    clock = FakeClock()
    limiter = PacingLimiter(clock, clock.sleep, config.pacing)
    return IbkrChainSource(config, strikes_each_side=EACH_SIDE, limiter=limiter, sleep=lambda s: None), clock


def test_known_contracts_get_each_minutes_closing_bid_and_ask_and_an_unknown_strike_is_skipped(quotes) -> None:
    served = quotes.filter(pl.col("underlying") == "SPY")
    middle = sorted(served["strike"].unique().to_list())[EACH_SIDE]
    unknown = middle + 0.5  # in IB's strike list (a union over expirations) but not listed for the session
    with FakeTws(_market(quotes, unknown)) as tws:
        source, _ = _source(tws.port)
        with source:
            chain = source.fetch_chain("SPY", DAY)
        bars = tws.requests_of("bars")
        assert tws.order_messages() == []
    assert isinstance(source, ChainSource)
    skipped = (f"O:SPY240305C{round(unknown * 1000):08d}", f"O:SPY240305P{round(unknown * 1000):08d}")
    assert source.skipped("SPY", DAY) == skipped
    assert dict(chain.schema) == CHAIN_SCHEMA
    assert chain["contract"].n_unique() == 2 * 2 * EACH_SIDE  # 7 listed strikes in the window, one unknown
    assert not set(skipped) & set(chain["contract"]) and set(chain["contract"]) <= set(served["contract"])
    assert chain.height == chain["contract"].n_unique() * 390
    got = chain.join(served, on=["contract", "minute"], suffix="_sent")
    assert got.height == chain.height
    assert (got["bid"] == got["bid_sent"]).all() and (got["ask"] == got["ask_sent"]).all()  # the close, not the open
    assert chain["volume"].is_null().all()  # not fetched from IB
    options = [r for r in bars if r.sec_type == "OPT"]
    assert sorted({r.what_to_show for r in options}) == ["ASK", "BID"]  # BID_ASK bars are time averages
    assert len(options) == 2 * chain["contract"].n_unique() and not {r.symbol for r in options} & set(skipped)
    assert all(r.use_rth and r.format_date == 2 and r.bar_size == "1 min" for r in options)
    assert [r.duration for r in bars if r.sec_type == "STK"] == ["60 S"]  # the first minute centres the strikes
    assert source.requests_made == 1 + 3 + len(options)  # 1 bar, 3 unpaced lookups, the quote bars


def test_spx_takes_the_spxw_class_and_a_minute_without_a_bar_stays_null(quotes) -> None:
    contract = quotes.filter(pl.col("underlying") == "SPX")["contract"][3]
    gap = (pl.col("contract") == contract) & (pl.int_range(pl.len()).over("contract").is_between(20, 22))
    market = _market(quotes.with_columns(pl.when(gap).then(None).otherwise(pl.col("bid")).alias("bid")))
    with FakeTws(market) as tws:
        source, _ = _source(tws.port)
        with source:
            chain = source.fetch_chain("SPX", DAY)
        option_bars = [r for r in tws.requests_of("bars") if r.sec_type == "OPT"]
        details = [m.fields for m in tws.log if m.msg_id == REQ_CONTRACT_DATA and m.fields[5] == "OPT"]
    assert chain["contract"].str.starts_with("O:SPXW240305").all() and chain["contract"].n_unique() == 14
    assert {f[14] for f in details} == {"SPXW"} and {r.symbol[:6] for r in option_bars} == {"O:SPXW"}
    own = chain.filter(pl.col("contract") == contract)
    assert own["bid"].is_null().arg_true().to_list() == [20, 21, 22] and own["ask"].is_null().sum() == 0
    assert chain["bid"].is_null().sum() == 3


def test_a_session_ib_lists_no_chain_for_is_missing_data(quotes) -> None:
    earlier = date(2024, 3, 4)
    with FakeTws(_market(quotes, days=(earlier, DAY))) as tws:
        source, _ = _source(tws.port)
        with source, pytest.raises(IbkrMissingDataError, match="IB keeps no expired options") as info:
            source.fetch_chain("SPY", earlier)  # IB's chain lists 2024-03-05 and 2099-12-31 only
        assert not [r for r in tws.requests_of("bars") if r.sec_type == "OPT"]
    assert isinstance(info.value, MissingDataError)
    with pytest.raises(ValueError, match="same-day chains cover stocks and indexes"):
        source.fetch_chain("ESH24", DAY)
