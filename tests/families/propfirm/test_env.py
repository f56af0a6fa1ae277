"""The prop-firm env, hand-computed: fills and point values, the trailing threshold on bar extremes, the cutoff,
entry masks, daily-loss pauses, passing, and how episodes end (terminated vs truncated)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rl.core.data import MarketDays
from rl.core.reward import RewardSpec
from rl.families.propfirm.config import EnvConfig
from rl.families.propfirm.data import FuturesDays, synthetic_futures_days
from rl.families.propfirm.env import COMPONENTS, PropFirmEnv, PropFirmVecEnv
from rl.families.propfirm.rules import RuleBook
from tests.families.propfirm.test_rules import EOD, INTRADAY

NET = RewardSpec.from_dict(
    {"name": "net", "components": {n: {"weight": 1.0, "scale": 1.0} for n in ("pnl", "commission", "spread_cost")}},
    COMPONENTS,
)
START = np.datetime64("2024-03-04T14:28", "ns")  # 09:28 ET: the first bars are before trade_from


def _days(closes: list[list[float]], wick: float = 0.0, spread: float = 0.25) -> FuturesDays:
    """Consecutive ES days (one row each) whose bar t opens at the previous close and closes at closes[d][t]."""
    n, t = len(closes), len(closes[0])
    close = np.array(closes, dtype=np.float64)
    open_ = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    bars = MarketDays(
        symbols=np.full(n, "ES"),
        dates=np.datetime64("2024-03-04") + np.arange(n).astype("timedelta64[D]"),
        features=np.zeros((n, t, 1), dtype=np.float32),
        open=open_,
        close=close,
        spread=np.full((n, t), spread),
        length=np.full(n, t, dtype=np.int32),
        feature_names=("f0",),
    )
    minute = START.astype(np.int64) + np.arange(n)[:, None] * 86_400 * 10**9 + np.arange(t)[None, :] * 60 * 10**9
    top, bottom = np.maximum(open_, close) + wick, np.minimum(open_, close) - wick
    return FuturesDays(bars, np.full(n, "ESM24"), top, bottom, minute)


def _cfg(book: RuleBook = INTRADAY, **kw: object) -> EnvConfig:
    return EnvConfig(rulebook=book, slippage_ticks=0.0, commission_per_contract=2.0, **kw)


FLAT, LONG1, LONG2, SHORT1 = 2, 3, 4, 1  # max_contracts=2: actions target -2..2


def test_one_contract_pays_fifty_dollars_a_point_with_per_contract_costs() -> None:
    days = _days([[5000.0, 5000.0, 5000.0, 5002.0, 5004.0, 5004.0, 5004.0]])
    env = PropFirmEnv(days, _cfg(), NET, day_index=0)
    obs, info = env.reset(seed=0)
    assert info["contract"] == "ESM24" and env.unwrapped._core.t[0] == 1  # decides at 09:29, fills at 09:30
    _, r, _, _, info = env.step(LONG1)  # fills at open[2] = 5000, marked at 5000
    assert (info["pnl"], info["commission"], info["spread_cost"]) == pytest.approx((0.0, -2.0, -6.25))
    _, r, _, _, info = env.step(LONG1)  # marked at 5002: +2 points
    assert info["pnl"] == pytest.approx(100.0) and r == pytest.approx(100.0)
    _, _, _, _, info = env.step(FLAT)  # sells at open[4] = 5002, then flat
    assert info["net_pnl"] == pytest.approx(100.0 - 2 * 2.0 - 2 * 6.25)
    assert info["position"] == 0


def test_the_trailing_threshold_follows_the_high_and_a_touch_of_the_low_breaches() -> None:
    """Long 2 ES from 5000: a bar up to 5008.75 lifts the peak to $50,875 (threshold $48,375); a bar whose low
    reaches 4984.5 puts equity at -$1,550 -> $48,450; one whose low is 4983.75 touches $48,375 and breaches."""
    closes = [[5000.0, 5000.0, 5000.0, 5008.0, 5000.0, 4990.0, 4990.0, 4990.0]]
    days = _days(closes, wick=0.0)
    days.high[0, 3] = 5008.75 + 0.125  # + the half spread paid at entry: equity = 2 * 50 * (h - 5000.125)
    env = PropFirmEnv(days, _cfg(), NET, day_index=0)
    env.reset(seed=0)
    env.step(LONG2)
    env.step(LONG2)  # bar 3: high 5008.875 -> equity high 2 * 50 * 8.75 - 4 = 871 (costs: 2 x $2)
    core = env.unwrapped._core
    assert core.peak[0] == pytest.approx(50_000 + 875 - 4.0)
    assert core.threshold[0] == pytest.approx(50_871 - 2_500)
    days.low[0, 5] = 4984.5
    _, _, term, trunc, info = env.step(LONG2)  # bar 4: close 5000
    assert not term
    _, _, term, trunc, info = env.step(LONG2)  # bar 5: low 4984.5: equity low 100 * (4984.5 - 5000.125) - 4
    low = 50_000 + 100 * (4984.5 - 5000.125) - 4
    assert low > core.threshold[0] and not term
    days.low[0, 6] = 4983.0
    _, _, term, trunc, info = env.step(LONG2)
    assert term and not trunc and info["done_reason"] == "trailing_drawdown" and info["breached"]


def test_end_of_day_book_moves_the_threshold_only_at_the_close() -> None:
    closes = [[5000.0] * 3 + [5010.0, 5004.0, 5004.0], [5004.0] * 6]
    env = PropFirmEnv(_days(closes), _cfg(EOD), NET, day_index=0)
    env.reset(seed=0)
    core = env.unwrapped._core
    env.step(LONG1)
    env.step(LONG1)  # +10 points intraday: an intraday book would trail it, this one does not
    assert core.threshold[0] == 47_500.0
    for _ in range(2):
        _, _, _, _, info = env.step(LONG1)
    assert core.days_done[0] == 1  # the cutoff closed the day (the last bar of the window)
    closing = 50_000 + core.ledger.equity[0]
    assert core.threshold[0] == pytest.approx(closing - 2_500) and core.events[0, 0] == 1  # one cutoff flatten


def test_entries_are_masked_after_the_cutoff_and_the_day_ends_flat() -> None:
    book = replace(INTRADAY, entry_cutoff="09:32", flat_by="09:35")
    days = _days([[5000.0] * 10, [5000.0] * 10])
    env = PropFirmEnv(days, _cfg(book), NET, day_index=0)
    env.reset(seed=0)
    assert env.action_masks().all()
    env.step(LONG1)  # fills at 09:30
    env.step(LONG1)  # the next fill would be at 09:32: entries and additions are masked, reductions are not
    assert env.action_masks().tolist() == [False, False, True, True, False]
    _, _, _, _, info = env.step(LONG2)  # a masked action acts as HOLD
    assert info["position"] == 1 and env.unwrapped._core.events[0, 2] == 1
    env.step(LONG1)
    _, _, term, trunc, info = env.step(LONG1)  # the 09:34 bar is the cutoff bar: flattened at its close
    assert not (term or trunc) and env.unwrapped._core.day[0] == 1 and env.unwrapped._core.ledger.pos[0] == 0


def test_daily_loss_pauses_the_day_and_the_account_goes_on() -> None:
    book = replace(EOD, daily_loss_limit=500.0)
    closes = [[5000.0, 5000.0, 5000.0, 4994.0, 4994.0, 4994.0], [4994.0] * 6]
    env = PropFirmEnv(_days(closes), _cfg(book), NET, day_index=0)
    env.reset(seed=0)
    env.step(LONG1)
    _, _, term, trunc, info = env.step(LONG1)  # -6 points = -$300 - costs: under the limit
    assert not term
    env2 = PropFirmEnv(_days(closes), _cfg(book, max_contracts=2), NET, day_index=0)
    env2.reset(seed=0)
    env2.step(LONG2)
    _, _, term, trunc, info = env2.step(LONG2)  # -$600 - costs: paused, flattened, next day
    core = env2.unwrapped._core
    assert not (term or trunc) and core.events[0, 1] == 1 and core.day[0] == 1 and core.ledger.pos[0] == 0


def test_passing_needs_the_target_and_five_trading_days_and_the_data_end_truncates() -> None:
    up = [[5000.0, 5000.0, 5000.0, 5010.0, 5010.0, 5010.0] for _ in range(6)]
    env = PropFirmEnv(_days(up), _cfg(), NET, day_index=0)
    env.reset(seed=0)
    reasons = []
    for _ in range(40):
        _, _, term, trunc, info = env.step(LONG2)
        if term or trunc:
            reasons.append((info["done_reason"], term, trunc, info["days"]))
            break
    core = env.unwrapped._core
    # every day makes about $1,000 (2 contracts x 10 points): the target is met on day 3, passing waits for day 5
    assert reasons == [("passed", True, False, 5)] and core.trading_days[0] == 5
    flat = PropFirmEnv(_days(up[:2]), _cfg(), NET, day_index=0)
    flat.reset(seed=0)
    for _ in range(20):
        _, _, term, trunc, info = flat.step(FLAT)
        if term or trunc:
            break
    assert trunc and not term and info["done_reason"] == "end_of_data" and info["days"] == 2


def test_short_random_windows_truncate_and_single_day_episodes_terminate() -> None:
    days = synthetic_futures_days(n_days=3, n_minutes=120, first_bar="2024-03-04T13:30")
    env = PropFirmVecEnv(days, _cfg(episode_bars=(20, 30)), NET, n_envs=16, seed=3)
    env.reset()
    lengths, reasons = [], set()
    steps = np.zeros(16, dtype=int)
    for _ in range(200):
        _, _, dones, infos = env.step(np.full(16, LONG1))
        steps += 1
        for i in np.flatnonzero(dones):
            if infos[i]["done_reason"] == "bar_limit":
                assert infos[i]["TimeLimit.truncated"]
                lengths.append(steps[i])
            reasons.add(infos[i]["done_reason"])
            steps[i] = 0
    assert len(lengths) > 16 and min(lengths) >= 20 and max(lengths) <= 30
    one_day = PropFirmVecEnv(days, _cfg(episode_days=1, enforce_drawdown=False), NET, n_envs=4, seed=0)
    one_day.reset()
    for _ in range(70):
        _, _, dones, infos = one_day.step(np.full(4, FLAT))
        if dones.any():
            i = int(np.flatnonzero(dones)[0])
            assert infos[i]["done_reason"] == "days_done" and not infos[i]["TimeLimit.truncated"]
            break
    else:
        pytest.fail("a one-day episode did not end with its day")


def test_micro_contracts_use_their_own_point_value_and_the_rule_books_limit() -> None:
    days = _days([[5000.0, 5000.0, 5000.0, 5002.0, 5002.0]])
    micro = replace(days, contracts=np.array(["MESM24"]))
    env = PropFirmEnv(micro, _cfg(max_contracts=2), NET, day_index=0)
    env.reset(seed=0)
    env.step(LONG1)
    _, _, _, _, info = env.step(LONG1)
    assert info["pnl"] == pytest.approx(2 * 5.0)  # $5 a point
    tight = replace(INTRADAY, max_contracts=1.0)
    minis = PropFirmEnv(days, _cfg(tight, max_contracts=2), NET, day_index=0)
    minis.reset(seed=0)
    assert minis.action_masks().tolist() == [False, True, True, True, False]  # 2 minis exceed the limit
