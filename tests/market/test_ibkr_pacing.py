"""IB's historical-data pacing rules, one by one, on a fake clock (no real waiting)."""

from __future__ import annotations

from datetime import date

import pytest

from market.ibkr_source import IbkrConfig, IbkrSource, PacingLimiter, PacingRules
from tests.fake_tws import FakeClock, FakeMarket, FakeTws, QuoteTick, TradeTick

OPEN = 1_704_205_800  # 2024-01-02 14:30 UTC, the session open


def limiter(**rules: float) -> tuple[PacingLimiter, FakeClock]:
    clock = FakeClock()
    return PacingLimiter(clock, clock.sleep, PacingRules(**rules)), clock


def test_no_identical_request_within_15_seconds() -> None:
    lim, clock = limiter()
    assert lim.acquire("req-A", "SPY/TRADES") == 0.0
    clock.now = 4.0
    assert lim.acquire("req-B", "QQQ/TRADES") == 0.0  # a different request goes at once
    assert lim.acquire("req-A", "SPX/TRADES") == pytest.approx(11.0)  # waits until 15 s after the first
    assert clock.now == pytest.approx(15.0)
    assert lim.delay("req-A", "SPX/TRADES") == pytest.approx(15.0)  # measured from the repeat, not the original


def test_no_six_requests_for_one_contract_within_2_seconds() -> None:
    lim, clock = limiter()
    for i, t in enumerate([0.0, 0.3, 0.6, 0.9, 1.2]):
        clock.now = t
        assert lim.acquire(f"page-{i}", "SPY/SMART/TRADES") == 0.0
    clock.now = 1.5
    assert lim.delay("other", "SPY/SMART/BID_ASK") == 0.0  # another tick type is another contract key
    assert lim.acquire("page-5", "SPY/SMART/TRADES") == pytest.approx(0.5)  # the 6th waits for the 1st to age out
    assert clock.now == pytest.approx(2.0)
    assert lim.delay("page-6", "SPY/SMART/TRADES") == pytest.approx(0.3)  # then the 2nd, made at 0.3


def test_at_most_60_requests_in_any_10_minutes() -> None:
    lim, clock = limiter()
    for i in range(60):  # one every 5 s, each for its own contract so only the 10-minute rule applies
        clock.now = 5.0 * i
        assert lim.acquire(f"r{i}", f"c{i}") == 0.0
    assert clock.now == 295.0
    assert lim.acquire("r60", "c60") == pytest.approx(305.0)  # until the first (t=0) is 600 s old
    assert clock.now == pytest.approx(600.0)
    assert lim.acquire("r61", "c61") == pytest.approx(5.0)  # the window rolls: next slot when t=5 ages out
    clock.now = 1200.0
    assert lim.delay("r62", "c62") == 0.0


def test_bid_ask_counts_double() -> None:
    lim, clock = limiter()
    assert lim.acquire("q1", "SPY/BID_ASK", weight=2) == 0.0
    assert lim.acquire("q2", "SPY/BID_ASK", weight=2) == 0.0  # 4 of 5
    assert lim.delay("t1", "SPY/BID_ASK", weight=1) == 0.0  # a single-weight one would still fit
    assert lim.acquire("q3", "SPY/BID_ASK", weight=2) == pytest.approx(2.0)  # 6 > 5: waits for q1
    lim, clock = limiter()
    for i in range(30):  # 30 BID_ASK requests fill the 60-request budget
        clock.now = 3.0 * i
        lim.acquire(f"q{i}", f"c{i}", weight=2)
    assert lim.delay("t", "other", weight=1) == pytest.approx(600.0 - clock.now)


def test_weights_and_rules_are_validated() -> None:
    lim, _ = limiter()
    with pytest.raises(ValueError, match="weight"):
        lim.acquire("r", "c", weight=6)
    with pytest.raises(ValueError, match="weight"):
        lim.acquire("r", "c", weight=0)
    with pytest.raises(ValueError, match="pacing.bid_ask_weight"):
        PacingRules(contract_max=1)
    with pytest.raises(ValueError, match="pacing.window_s"):
        PacingRules(window_s=-1.0)


def test_the_source_paces_bid_ask_pages_at_double_weight() -> None:
    """Three BID_ASK pages for one contract: the third would be the 6th count within 2 s, so it waits."""
    day = date(2024, 1, 2)
    quotes = [QuoteTick(OPEN + i // 2, 470.0, 470.01, 100.0 + i, 200.0) for i in range(2400)]  # 2 per second
    market = FakeMarket().set_ticks("SPY", "BID_ASK", quotes).set_ticks("SPY", "TRADES", [TradeTick(OPEN, 470, 1)])
    waits = {}
    for weight in (2, 1):
        with FakeTws(market) as tws:
            clock = FakeClock()
            config = IbkrConfig(port=tws.port, timeout_s=0.5, ticks=False, bars=False)
            rules = PacingRules(bid_ask_weight=weight)
            source = IbkrSource(config, limiter=PacingLimiter(clock, clock.sleep, rules), sleep=lambda s: None)
            with source:
                tape = source.fetch_day("SPY", day)
            assert tape.quotes.height == 2400
            assert len(tws.requests_of("ticks", what_to_show="BID_ASK")) == 4  # 3 pages + one of repeats only
        waits[weight] = clock.now
    assert waits == {2: pytest.approx(2.0), 1: 0.0}
