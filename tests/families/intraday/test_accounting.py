"""The one accounting implementation: cost identities, round trips, liquidation, and hand-checked numbers."""

from __future__ import annotations

import numpy as np
import pytest

from rl.core.data import MarketDays, random_walk_days
from rl.core.reward import RewardSpec
from rl.families.intraday.accounting import COMPONENT_NAMES, COMPONENTS, DONE_REASONS, day_ledger
from rl.families.intraday.config import EnvConfig
from rl.families.intraday.env import BUY, CLOSE, HOLD, SELL, IntradayEnv, IntradayVecEnv

NET = RewardSpec.from_dict(
    {
        "name": "net",
        "components": {n: {"weight": 1.0, "scale": 1.0} for n in ("pnl", "commission", "spread_cost")},
    },
    COMPONENTS,
)


def _days(open_: list[float], close: list[float], spread: list[float]) -> MarketDays:
    """One hand-written day (a single feature) for exact arithmetic checks."""
    t = len(open_)
    return MarketDays(
        symbols=np.array(["SPY"]),
        dates=np.array(["2024-01-02"], dtype="datetime64[D]"),
        features=np.zeros((1, t, 1), dtype=np.float32),
        open=np.array([open_], dtype=np.float64),
        close=np.array([close], dtype=np.float64),
        spread=np.array([spread], dtype=np.float64),
        length=np.array([t], dtype=np.int32),
        feature_names=("f0",),
    )


FREE = EnvConfig(warmup_minutes=0, flat_minutes_before_close=0, loss_cut=None, profit_lock=None)


def test_hand_computed_round_trips_flip_split_and_session_close() -> None:
    days = _days(
        open_=[100.0, 101.0, 102.0, 103.0, 104.0],
        close=[100.5, 101.5, 102.5, 103.5, 104.5],
        spread=[0.02, 0.04, 0.02, 0.02, 0.02],
    )
    env = IntradayEnv(days, FREE, NET, day_index=0)
    env.reset(seed=0)
    # BUY at t=0: fill at open[1]=101 (+ spread[1]/2), mark at close[1].
    _, r, term, trunc, info = env.step(BUY)
    assert (info["pnl"], info["commission"], info["spread_cost"]) == pytest.approx((50.0, -1.0, -2.0))
    assert r == pytest.approx(47.0) and info["net_pnl"] == pytest.approx(47.0) and not (term or trunc)
    # SELL = flip long -> short at open[2]=102: trip 1 = 100*(102-101) - 3 (entry) - 1.5 (half the flip).
    _, r, _, _, info = env.step(SELL)
    assert (info["pnl"], info["commission"], info["spread_cost"]) == pytest.approx((0.0, -1.0, -2.0))
    assert info["win_bonus"] == 1.0 and info["position"] == -1
    # CLOSE the short at open[3]=103: trip 2 = -100*(103-102) - 1.5 - 2 = -103.5, a loss.
    _, r, _, _, info = env.step(CLOSE)
    assert (info["pnl"], info["commission"], info["spread_cost"]) == pytest.approx((-50.0, -1.0, -1.0))
    assert info["win_bonus"] == 0.0 and info["holding_cost"] == 0.0 and info["hold_tax"] == -1.0
    _, r, term, trunc, info = env.step(HOLD)
    assert term and not trunc and info["done_reason"] == "end_of_data"
    assert info["net_pnl"] == pytest.approx(95.5 - 103.5)
    assert (info["round_trips"], info["wins"]) == (2, 1)
    led = env._core.ledger
    assert led.realized_net[0] == pytest.approx(-8.0) and led.realized_gross[0] == pytest.approx(0.0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(HOLD)


def test_liquidation_at_data_end_charges_exit_costs_at_the_last_close() -> None:
    days = _days([100.0, 100.0, 101.0, 102.0], [100.0, 100.5, 101.5, 103.0], [0.02, 0.02, 0.02, 0.06])
    env = IntradayEnv(days, FREE, NET, day_index=0)
    env.reset(seed=0)
    env.step(BUY)
    _, _, term, trunc, info = env.step(HOLD)
    assert not (term or trunc)
    _, _, term, trunc, info = env.step(HOLD)
    assert term and not trunc and info["position"] == 0
    # exit at close[3]=103.0 with half of spread[3] and a commission
    assert info["commission"] == pytest.approx(-1.0) and info["spread_cost"] == pytest.approx(-3.0)
    assert info["net_pnl"] == pytest.approx(100 * (103.0 - 100.0) - 2.0 - 1.0 - 3.0)
    assert info["win_bonus"] == 1.0 and info["round_trips"] == 1


def test_loss_cut_terminates_and_liquidates_at_that_close() -> None:
    days = _days([100.0] * 6, [100.0, 100.0, 99.5, 98.0, 98.0, 98.0], [0.02] * 6)
    cfg = EnvConfig(warmup_minutes=0, flat_minutes_before_close=0, loss_cut=-100.0, profit_lock=None)
    env = IntradayEnv(days, cfg, NET, day_index=0)
    env.reset(seed=0)
    _, _, term, _, _ = env.step(BUY)  # -1 commission -1 spread
    assert not term
    _, _, term, _, _ = env.step(HOLD)  # marked at 99.5: -52
    assert not term
    _, r, term, trunc, info = env.step(HOLD)  # marked at 98.0: -202 <= -100
    assert term and not trunc and info["done_reason"] == "loss_cut" and info["position"] == 0
    assert info["net_pnl"] == pytest.approx(100 * (98.0 - 100.0) - 2 * 1.0 - 2 * 1.0)
    assert info["loss_penalty"] == pytest.approx(info["net_pnl"])


def test_profit_lock_terminates() -> None:
    days = _days([100.0] * 5, [100.0, 100.0, 103.0, 103.0, 103.0], [0.0] * 5)
    cfg = EnvConfig(warmup_minutes=0, flat_minutes_before_close=0, loss_cut=None, profit_lock=200.0)
    env = IntradayEnv(days, cfg, NET, day_index=0)
    env.reset(seed=0)
    env.step(BUY)
    _, _, term, trunc, info = env.step(HOLD)
    assert term and not trunc and info["done_reason"] == "profit_lock"
    assert info["loss_penalty"] == 0.0 and info["net_pnl"] == pytest.approx(300.0 - 2.0)


@pytest.mark.parametrize("cfg", [FREE, EnvConfig(warmup_minutes=3, loss_cut=-40.0, profit_lock=40.0)])
def test_cost_identity_and_round_trip_closure_over_random_actions(cfg: EnvConfig) -> None:
    """pnl + commission + spread_cost == change of equity every step; the day closes on its round trips."""
    days = random_walk_days(6, [60, 45, 90, 60, 70, 50], n_features=3, seed=3)
    n = 24
    env = IntradayVecEnv(days, cfg, NET, n, seed=1, fixed_days=np.arange(n) % days.n_days, auto_reset=False)
    env.reset()
    rng = np.random.default_rng(0)
    led = env.ledger
    sums = {name: np.zeros(n) for name in COMPONENT_NAMES}
    steps = 0
    reasons: set[str] = set()
    while not env.done_mask.all():
        before = led.equity.copy()
        env.step(rng.integers(0, 4, size=n))  # invalid actions included: they must never break the books
        c = env.last_components
        np.testing.assert_allclose(c["pnl"] + c["commission"] + c["spread_cost"], led.equity - before, atol=1e-9)
        np.testing.assert_allclose(env.last_rewards, led.equity - before, atol=1e-9)
        for name in COMPONENT_NAMES:
            sums[name] += c[name]
        steps += 1
        reasons |= {DONE_REASONS[k] for k in env.last_done_code[env.last_done_code > 0]}
    assert steps > 10 and np.all(led.pos == 0)
    assert led.round_trips.sum() > n  # the random policy really traded
    np.testing.assert_allclose(led.equity, led.realized_net, atol=1e-8)
    np.testing.assert_allclose(led.equity, led.realized_gross + sums["commission"] + sums["spread_cost"], atol=1e-8)
    np.testing.assert_allclose(sums["pnl"], led.realized_gross, atol=1e-8)
    np.testing.assert_allclose(sums["commission"], led.commission, atol=1e-9)
    assert np.all(sums["commission"] <= 0) and np.all(sums["spread_cost"] <= 0)
    assert np.all(led.wins <= led.round_trips)
    if cfg.loss_cut is None:
        assert reasons == {"end_of_data"}
    else:
        assert {"loss_cut", "profit_lock"} <= reasons


def test_drawdown_sums_to_max_drawdown_and_sharpe_is_running_mean_over_std() -> None:
    days = random_walk_days(1, 120, n_features=3, seed=5)
    env = IntradayEnv(days, FREE, NET, day_index=0)
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    equity, nets, dd, sharpe = [0.0], [], [], []
    done = False
    while not done:
        mask = env.action_masks()
        _, _, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(mask))))
        done = term or trunc
        nets.append(info["pnl"] + info["commission"] + info["spread_cost"])
        equity.append(info["net_pnl"])
        dd.append(info["drawdown"])
        sharpe.append(info["sharpe"])
    eq = np.array(equity)
    max_dd = np.max(np.maximum.accumulate(eq) - eq)
    assert max_dd > 0 and sum(dd) == pytest.approx(-max_dd)
    assert all(d <= 0 for d in dd)
    for k in (5, 40, len(nets)):
        x = np.array(nets[:k])
        assert sharpe[k - 1] == pytest.approx(x.mean() / x.std(), rel=1e-9)
    assert sharpe[0] == 0.0


def test_ledger_selection_updates_only_selected_accounts() -> None:
    led = day_ledger(3, FREE)
    led.reset(slice(None), 100.0, size=100.0, commission=0.005, min_commission=1.0)
    idx = np.array([0, 2])
    ones = np.ones(2)
    comps, code = led.step(idx, np.array([1, -1]), 101.0 * ones, 102.0 * ones, 0.02 * ones, np.zeros(2, bool))
    assert list(led.pos) == [1, 0, -1] and led.equity[1] == 0.0
    assert comps["pnl"] == pytest.approx([100.0, -100.0]) and list(code) == [0, 0]
    assert led.unrealized(slice(None)) == pytest.approx([100.0 - 2.0, 0.0, -100.0 - 2.0])
