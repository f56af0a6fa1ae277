"""Reward-scale audit: seed 000's reward must fail (naming its components), the default must pass."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from rl.core.data import MarketDays, random_walk_days
from rl.core.reward import AuditLimits, RewardSpec, load_reward
from rl.families.intraday.accounting import COMPONENTS
from rl.families.intraday.audit import POLICIES, audit_reward
from rl.families.intraday.config import EnvConfig
from tests import ROOT

CONFIGS = ROOT / "configs" / "rewards"
CFG = EnvConfig()


@pytest.fixture(scope="module")
def days() -> MarketDays:
    """Random-walk SPY-like days around $470, 1-cent spreads, full 390-minute sessions and one early close."""
    return random_walk_days(6, [390, 390, 210, 390, 390, 390], n_features=5, seed=4)


@pytest.fixture(scope="module")
def seed_audit(days: MarketDays):
    return audit_reward(days, CFG, load_reward(CONFIGS / "intraday_seed000_original.yaml", COMPONENTS), n_episodes=6)


@pytest.fixture(scope="module")
def default_audit(days: MarketDays):
    return audit_reward(days, CFG, load_reward(CONFIGS / "intraday.yaml", COMPONENTS), n_episodes=6)


def test_seed000_original_reward_fails_and_names_its_components(seed_audit) -> None:
    problems = seed_audit.problems()
    assert not seed_audit.passed and len(problems) >= 2
    text = "\n".join(problems)
    assert "daily_pnl_level" in text  # the P&L level repeated every step is the main offender
    assert any(p.startswith("p99 |step reward|") for p in problems)
    assert any(p.startswith("p99 |value target|") for p in problems)
    assert seed_audit.total.value_target_p99 > 1_000 and seed_audit.components["daily_pnl_level"].p99_abs_step > 10


def test_default_reward_passes(default_audit) -> None:
    assert default_audit.passed, default_audit.problems()
    assert default_audit.total.p99_abs_step < 10 and default_audit.total.value_target_p99 < 1_000
    # the default reward is the scaled net P&L: it ranks episodes exactly like the money does
    assert default_audit.reward_pnl_corr > 0.95


def test_default_fails_under_tighter_limits(default_audit) -> None:
    tight = AuditLimits(max_step_p99=1e-4, max_episode_abs_mean=1e-4, max_value_target=1e-4)
    problems = default_audit.problems(tight)
    assert len(problems) == 3 and "pnl" in problems[0]


def test_audit_reports_stats_per_component_and_policy(default_audit, days: MarketDays) -> None:
    a = default_audit
    assert a.policies == POLICIES and set(a.per_policy) == set(POLICIES)
    assert set(a.components) == {"pnl", "commission", "spread_cost", "drawdown"}
    assert a.per_policy["always_flat"].episode_mean == 0.0 and a.policy_net_pnl["always_flat"] == 0.0
    assert a.raw["commission"].mean < 0 and a.raw["hold_tax"].mean < 0  # raw units of unused components too
    assert a.per_policy["flip"].std > 0 and a.per_policy["always_flat"].p99_abs_step == 0.0
    data = a.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["passed"] is True and data["problems"] == []
    again = audit_reward(days, CFG, load_reward(CONFIGS / "intraday.yaml", COMPONENTS), n_episodes=6)
    assert again.to_dict() == data  # same seed, same audit


def test_fee_parity_check_flags_a_reward_that_ignores_costs(days: MarketDays) -> None:
    gross_only = RewardSpec.from_dict(
        {
            "name": "gross",
            "components": {"pnl": {"weight": 1.0, "scale": 0.01}, "commission": {"weight": 0.0}},
        },
        COMPONENTS,
    )
    audit = audit_reward(days, CFG, gross_only, n_episodes=2, policies=("random_valid",))
    assert any("fees under-weighted" in p and "commission" in p and "spread_cost" in p for p in audit.problems())
    relaxed = dataclasses.replace(gross_only.audit, require_fee_parity=False)
    assert audit.problems(relaxed) == []


def test_value_target_uses_the_discount(days: MarketDays) -> None:
    """A constant reward of -1 per flat step has value target ~ 1/(1-gamma) deep inside the day."""
    tax = RewardSpec.from_dict({"name": "tax", "components": {"hold_tax": {"weight": 1.0}}}, COMPONENTS)
    short = audit_reward(days, CFG, tax, n_episodes=2, gamma=0.9, policies=("always_flat",))
    long = audit_reward(days, CFG, tax, n_episodes=2, gamma=0.99, policies=("always_flat",))
    assert short.total.value_target_p99 == pytest.approx(10.0, rel=1e-3)
    assert long.total.value_target_p99 == pytest.approx(100.0 * (1 - 0.99**300), rel=0.05)
    assert short.total.p99_abs_step == 1.0 and np.isnan(short.reward_pnl_corr)


def test_audit_rejects_bad_arguments(days: MarketDays) -> None:
    spec = load_reward(CONFIGS / "intraday.yaml", COMPONENTS)
    with pytest.raises(ValueError, match="n_episodes"):
        audit_reward(days, CFG, spec, n_episodes=0)
    with pytest.raises(ValueError, match="unknown audit policies"):
        audit_reward(days, CFG, spec, policies=("yolo",))
    with pytest.raises(ValueError, match="gamma"):
        audit_reward(days, CFG, spec, gamma=1.0)
