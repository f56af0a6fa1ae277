"""0DTE evaluation and checks: baselines on the same sessions, the HOLD collapse named, stop reliability, alignment."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from rl.core.reward import RewardSpec
from rl.families.zerodte.baselines import momentum
from rl.families.zerodte.config import EnvConfig, EvaluationConfig
from rl.families.zerodte.data import synthetic_option_days
from rl.families.zerodte.env import BUY_CALL, BUY_PUT, COMPONENT_NAMES, HOLD
from rl.families.zerodte.evaluate import EvalResult, SessionEpisode, evaluate_with_baselines
from rl.families.zerodte.metrics import hold_collapse, policy_metrics, run_checks

SHAPED = RewardSpec.from_dict(
    {"name": "shaped", "components": {"pnl": {"weight": 1.0, "scale": 0.01}, "hold_tax": {"weight": 0.5}}},
    COMPONENT_NAMES,
)


def episode(
    net: float, trades: int, holds: int, reward: float = 0.0, slip: float = 0.0, gap: float = 0.0
) -> SessionEpisode:
    counts = np.array([holds, trades, 0, 0, 0, trades])
    return SessionEpisode(
        symbol="SPY", date=date(2024, 3, 4), total_reward=reward, net_pnl=net, gross_pnl=net, commission=0.0,
        spread_cost=0.0, trades=trades, wins=trades // 2, stops=1 if slip or gap else 0,
        worst_beyond_stop=slip + gap, worst_stop_gap=gap, worst_stop_slippage=slip, trade_return_sum=0.0,
        tier_hits=np.zeros(6, np.int64), calls=trades, puts=0, action_counts=counts,
        hourly_actions=np.zeros((7, 6), np.int64), reward_terms={"pnl": reward}, done_reason="session_close",
        steps=int(counts.sum()),
    )  # fmt: skip


def result(name: str, *eps: SessionEpisode) -> EvalResult:
    return EvalResult(name=name, episodes=eps)


def test_holding_nearly_always_while_a_baseline_profits_is_named_a_hold_collapse() -> None:
    results = {
        "agent": result("agent", episode(0.0, 1, 95), episode(-5.0, 1, 95)),
        "momentum": result("momentum", episode(120.0, 12, 300), episode(80.0, 10, 300)),
        "never_trade": result("never_trade", episode(0.0, 0, 330), episode(0.0, 0, 330)),
    }
    check = hold_collapse(results, "agent", 0.87)
    assert not check["passed"] and check["value"] == pytest.approx(190 / 194)
    assert "HOLD COLLAPSE" in check["detail"] and "momentum" in check["detail"]


def test_holding_a_lot_is_no_collapse_when_no_baseline_earns_more() -> None:
    results = {
        "agent": result("agent", episode(50.0, 3, 300), episode(40.0, 3, 300)),
        "momentum": result("momentum", episode(10.0, 12, 300), episode(-30.0, 10, 300)),
    }
    assert hold_collapse(results, "agent", 0.87)["passed"]
    results["momentum"] = result("momentum", episode(100.0, 12, 300), episode(90.0, 10, 300))
    assert not hold_collapse(results, "agent", 0.87)["passed"]


def test_holding_while_trading_as_often_as_the_better_baseline_is_no_collapse() -> None:
    """A scalper waiting out its positions HOLDs most minutes; only HOLD crowding out the trades is a collapse."""
    results = {
        "agent": result("agent", episode(60.0, 8, 300), episode(40.0, 7, 300)),
        "momentum": result("momentum", episode(100.0, 12, 300), episode(90.0, 10, 300)),
    }
    check = hold_collapse(results, "agent", 0.87)
    assert check["passed"] and check["value"] > 0.87 and "7.5 a session" in check["detail"]
    assert not hold_collapse(results, "agent", 0.87, trade_share=0.7)["passed"]  # 7.5 < 0.7 x 11


def test_a_stop_sold_beyond_the_allowed_slippage_fails_and_alignment_reads_reward_against_pnl() -> None:
    results = {
        "agent": result(
            "agent", episode(10.0, 2, 50, 1.0), episode(-20.0, 2, 50, 2.0, slip=0.12), episode(30.0, 2, 50, 3.0)
        ),  # fmt: skip
        "never_trade": result("never_trade", *(episode(0.0, 0, 54) for _ in range(3))),
    }
    checks = run_checks(results, "agent", EvaluationConfig(stop_slippage=0.10))
    assert not checks["stop_reliability"]["passed"] and checks["stop_reliability"]["value"] == pytest.approx(0.12)
    assert checks["reward_pnl_alignment"]["value"] == pytest.approx(0.5)  # ranks 1,2,3 against 2,1,3
    assert set(checks) == {"hold_collapse", "reward_pnl_alignment", "stop_reliability"}
    assert run_checks(results, "agent", EvaluationConfig(stop_slippage=0.15))["stop_reliability"]["passed"]


def test_a_gap_through_the_stop_between_minute_marks_is_reported_but_not_blamed_on_the_stop() -> None:
    """A mark 40% past the stop is the market's gap; the stop sold 3% below that mark, inside the slippage."""
    results = {"agent": result("agent", episode(-50.0, 2, 50, -1.0, slip=0.03, gap=0.40), episode(5.0, 2, 50, 1.0))}
    check = run_checks(results, "agent", EvaluationConfig(stop_slippage=0.10))["stop_reliability"]
    assert check["passed"] and check["value"] == pytest.approx(0.03)
    assert check["worst_stop_gap"] == pytest.approx(0.40) and check["worst_beyond_stop"] == pytest.approx(0.43)
    assert "40.0% past the stop" in check["detail"] and "43.0%" in check["detail"]
    assert not run_checks(results, "agent", EvaluationConfig(stop_slippage=0.02))["stop_reliability"]["passed"]


def test_the_momentum_baseline_buys_on_the_last_rows_breakout_only_where_allowed() -> None:
    names = ("a", "range_pos_30")
    policy = momentum(names, window=2, feature="range_pos_30", level=0.9)
    obs = np.zeros((3, 2 * 2 + 14), dtype=np.float32)
    obs[:, 3] = [0.95, -0.95, 0.95]  # the last row's range_pos_30
    obs[2, 1] = -1.0  # an older row does not count
    masks = np.ones((3, 6), dtype=bool)
    masks[2, BUY_CALL] = False
    assert policy(obs, masks).tolist() == [BUY_CALL, BUY_PUT, HOLD]


def test_every_policy_plays_the_same_sessions_and_the_reward_terms_add_up_to_the_reward() -> None:
    days = synthetic_option_days(n_days=3, n_minutes=70, seed=4)
    hold_call = momentum(days.feature_names, 20, "range_pos_30", 0.5)
    results = evaluate_with_baselines(hold_call, days, EnvConfig(), EvaluationConfig(), SHAPED)
    assert list(results) == ["agent", "never_trade", "random_valid", "momentum"]
    for r in results.values():
        assert [e.date for e in r.episodes] == [d.astype("datetime64[D]").item() for d in days.dates]
        for e in r.episodes:
            assert sum(e.reward_terms.values()) == pytest.approx(e.total_reward)
            assert e.action_counts.sum() == e.hourly_actions.sum() == e.steps
    assert policy_metrics(results["never_trade"])["mean_session_pnl"] == 0.0
    assert policy_metrics(results["random_valid"])["trades_per_day"] >= 1


def test_an_agent_that_never_trades_on_trending_days_is_flagged_and_the_momentum_rule_is_not() -> None:
    """Played for real: on days that drift one way all session the breakout rule profits, so an agent that only
    HOLDs is seed 003's collapse, and the rule itself, though it HOLDs most minutes, is not."""
    from rl.families.zerodte.baselines import never_trade

    days = synthetic_option_days(n_days=4, n_minutes=150, seed=0, trend=0.3, n_features=6)
    env_cfg = EnvConfig(premium_budget=1000.0, contracts=20)
    evaluation = EvaluationConfig()
    held = evaluate_with_baselines(never_trade(), days, env_cfg, evaluation, SHAPED)
    assert policy_metrics(held["momentum"])["mean_session_pnl"] > 0
    check = run_checks(held, "agent", evaluation)["hold_collapse"]
    assert not check["passed"] and "HOLD COLLAPSE" in check["detail"] and "momentum" in check["detail"]
    rule = momentum(days.feature_names, env_cfg.window, evaluation.breakout_feature, evaluation.breakout_level)
    trading = evaluate_with_baselines(rule, days, env_cfg, evaluation, SHAPED)
    assert trading["agent"].action_counts[HOLD] / trading["agent"].action_counts.sum() > 0.87
    assert run_checks(trading, "agent", evaluation)["hold_collapse"]["passed"]
