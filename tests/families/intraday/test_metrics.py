"""Metrics and checks on hand-built inputs whose answers are known, including inputs that must fail."""

from __future__ import annotations

import math
from datetime import date
from itertools import permutations

import numpy as np
import pytest

from rl.core.metrics import max_drawdown, rankdata, reward_pnl_alignment, sharpe_ratio, spearman
from rl.families.intraday.evaluate import EpisodeResult, EvalResult
from rl.families.intraday.metrics import (
    action_collapse,
    action_distribution,
    daily_pnl,
    policy_metrics,
    portfolio_equity,
    run_checks,
)


def _episode(
    day: int,
    net: float,
    reward: float | None = None,
    symbol: str = "SPY",
    actions: tuple[int, int, int, int] = (10, 0, 0, 0),
    positions: tuple[int, int, int] = (0, 10, 0),
    trips: int = 0,
    wins: int = 0,
    equity: np.ndarray | None = None,
) -> EpisodeResult:
    curve = np.linspace(net / 4, net, 4) if equity is None else np.asarray(equity, dtype=float)
    return EpisodeResult(
        symbol=symbol,
        date=date(2024, 1, day),
        total_reward=net / 100 if reward is None else reward,
        net_pnl=net,
        gross_pnl=net + 3.0 * trips,
        commission=-2.0 * trips,
        spread_cost=-1.0 * trips,
        round_trips=trips,
        wins=wins,
        action_counts=actions,
        position_counts=positions,
        done_reason="end_of_data",
        steps=len(curve),
        equity=curve,
    )


# ------------------------------------------------------------------------------------------ Spearman
def test_rankdata_averages_ties():
    np.testing.assert_array_equal(rankdata([10, 20, 20, 5, 20]), [2, 4, 4, 1, 4])
    np.testing.assert_array_equal(rankdata([3.0, 1.0, 2.0]), [3, 1, 2])


def test_spearman_known_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 8, 27, 64]) == pytest.approx(1.0), "rank-based: monotone is perfect"
    # ties: ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4] -> 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert math.isnan(spearman([1, 2], [2, 1])), "fewer than 3 pairs is undefined"
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])), "a constant side is undefined"
    with pytest.raises(ValueError):
        spearman([1, 2, 3], [1, 2])


def test_spearman_matches_the_classic_formula_without_ties():
    x = np.arange(5.0)
    for perm in permutations(range(5)):
        y = np.array(perm, dtype=float)
        d = x - y
        classic = 1 - 6 * (d @ d) / (5 * (25 - 1))
        assert spearman(x, y) == pytest.approx(classic)


def test_spearman_with_ties_is_pearson_of_average_ranks():
    x, y = [1.0, 2.0, 2.0, 3.0], [10.0, 30.0, 20.0, 40.0]
    ranks_x, ranks_y = np.array([1.0, 2.5, 2.5, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])
    assert spearman(x, y) == pytest.approx(np.corrcoef(ranks_x, ranks_y)[0, 1])


# ------------------------------------------------------------------------------------------ P&L metrics
def test_sharpe_and_drawdown_known_values():
    assert sharpe_ratio([1.0, 2.0, 3.0]) == pytest.approx(2.0 * math.sqrt(252))
    assert sharpe_ratio([-1.0, -2.0, -3.0]) == pytest.approx(-2.0 * math.sqrt(252))
    assert math.isnan(sharpe_ratio([5.0])) and math.isnan(sharpe_ratio([0.0, 0.0, 0.0]))
    assert max_drawdown([0, 5, 2, 7, 1, 3]) == pytest.approx(6.0)
    assert max_drawdown([0, 1, 2, 3]) == 0.0
    assert max_drawdown([]) == 0.0


def test_policy_metrics_aggregate_symbols_per_session():
    result = EvalResult(
        "agent",
        (
            _episode(2, 100.0, symbol="SPY", trips=2, wins=1, actions=(6, 2, 1, 1), positions=(2, 4, 4)),
            _episode(2, -40.0, symbol="QQQ", trips=1, wins=0, actions=(8, 1, 0, 1), positions=(0, 8, 2)),
            _episode(3, -30.0, symbol="SPY", trips=1, wins=1, actions=(9, 1, 0, 0), positions=(0, 1, 9)),
            _episode(3, 10.0, symbol="QQQ", trips=0, wins=0),
        ),
    )
    dates, per_day = daily_pnl(result)
    assert list(dates.astype(str)) == ["2024-01-02", "2024-01-03"]
    np.testing.assert_allclose(per_day, [60.0, -20.0])
    m = policy_metrics(result)
    assert m["total_pnl"] == pytest.approx(40.0)
    assert m["mean_daily_pnl"] == pytest.approx(20.0)
    assert m["sessions"] == 2 and m["episodes"] == 4
    assert m["win_rate"] == pytest.approx(2 / 4)
    assert m["trades_per_day"] == pytest.approx(4 / 4)
    assert m["positive_day_rate"] == pytest.approx(0.5)
    assert m["commission"] == pytest.approx(-8.0) and m["spread_cost"] == pytest.approx(-4.0)
    assert m["sharpe"] == pytest.approx(sharpe_ratio([60.0, -20.0]))
    assert m["action_HOLD"] == pytest.approx(33 / 40)
    assert m["position_LONG"] == pytest.approx(15 / 40)
    # Portfolio path: day 1 = SPY + QQQ curves, day 2 continues from +60.
    equity = portfolio_equity(result)
    np.testing.assert_allclose(equity[:5], [0.0, 15.0, 30.0, 45.0, 60.0])
    assert equity[-1] == pytest.approx(40.0)
    assert m["max_drawdown"] == pytest.approx(equity.max() - equity[np.argmax(equity) :].min())


def test_portfolio_equity_holds_an_early_ended_curve():
    result = EvalResult(
        "agent",
        (
            _episode(2, -100.0, equity=[-50.0, -100.0]),  # loss cut after 2 steps
            _episode(2, 30.0, symbol="QQQ", equity=[10.0, 20.0, 25.0, 30.0]),
        ),
    )
    np.testing.assert_allclose(portfolio_equity(result), [0.0, -40.0, -80.0, -75.0, -70.0])
    assert policy_metrics(result)["max_drawdown"] == pytest.approx(80.0)


# ------------------------------------------------------------------------------------------ checks
def test_action_collapse_passes_and_fails():
    assert not action_collapse({"HOLD": 95, "BUY": 3, "SELL": 1, "CLOSE": 1})["passed"]
    assert action_collapse({"HOLD": 60, "BUY": 20, "SELL": 10, "CLOSE": 10})["passed"]
    exactly = action_collapse({"HOLD": 0.9, "BUY": 0.1})
    assert exactly["passed"] and exactly["value"] == pytest.approx(0.9)
    failed = action_collapse(action_distribution([0, 0, 91, 9]), max_share=0.9)
    assert not failed["passed"] and failed["action"] == "SELL" and "91.0%" in failed["detail"]
    assert not action_collapse({"HOLD": 0, "BUY": 0})["passed"], "no decisions cannot pass"
    with pytest.raises(ValueError):
        action_distribution([1, 2, 3])


def test_reward_pnl_alignment_passes_and_fails():
    pnl = np.array([-120.0, -30.0, 5.0, 60.0, 210.0])
    ok = reward_pnl_alignment(pnl / 100 + 0.01, pnl)
    assert ok["passed"] and ok["value"] == pytest.approx(1.0)
    # Seed 004: reward rises while P&L falls.
    bad = reward_pnl_alignment(-pnl * 40 + 8000, pnl)
    assert not bad["passed"] and bad["value"] == pytest.approx(-1.0)
    assert not reward_pnl_alignment([1.0, 3.0, 2.0, 0.0], [1.0, 0.5, 0.7, 2.0])["passed"]
    undefined = reward_pnl_alignment([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert undefined["passed"] and undefined["value"] is None


def test_run_checks_on_constructed_evaluations():
    always_flat = EvalResult("flat", tuple(_episode(d, 0.0) for d in (2, 3, 4)))
    checks = run_checks(always_flat)
    assert not checks["action_collapse"]["passed"] and checks["action_collapse"]["action"] == "FLAT"

    # Holds long and short for many minutes (mostly HOLD actions) but switches: not collapsed by position.
    switching = EvalResult(
        "agent",
        tuple(
            _episode(d, pnl, actions=(95, 3, 2, 0), positions=(45, 10, 45))
            for d, pnl in ((2, 50.0), (3, -10.0), (4, 30.0))
        ),
    )
    checks = run_checks(switching)
    assert checks["action_collapse"]["passed"] and checks["reward_pnl_alignment"]["passed"]
    assert not run_checks(switching, collapse_basis="action")["action_collapse"]["passed"]

    misaligned = EvalResult(
        "agent",
        tuple(_episode(d, pnl, reward=-pnl, positions=(30, 40, 30)) for d, pnl in ((2, 50.0), (3, -10.0), (4, 30.0))),
    )
    assert not run_checks(misaligned)["reward_pnl_alignment"]["passed"]
    with pytest.raises(ValueError):
        run_checks(switching, collapse_basis="reward")
