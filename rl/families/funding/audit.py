"""The funding family as a reward-audit target: cheap policies replayed from random start hours before training.

`enter_best` stacks the top opportunity until every slot is full, and `churn` enters and exits every hour (the
costliest behaviour), so the audit sees both the largest P&L swings and the largest fee bills a reward can carry.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rl.core.audit import AuditTarget, random_valid_actions
from rl.core.reward import RewardSpec
from rl.families.funding.accounting import COMPONENT_NAMES
from rl.families.funding.config import FundingEnvConfig
from rl.families.funding.data import FundingDays


def _flat(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.zeros(len(masks), dtype=np.int64)


def _policies(cfg: FundingEnvConfig) -> dict[str, Any]:
    k = cfg.top_k

    def enter_best(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.where(masks[:, 1], 1, 0)

    def churn(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.where(masks[:, 1 + k], 1 + k, np.where(masks[:, 1], 1, 0))

    return {"random_valid": random_valid_actions, "enter_best": enter_best, "churn": churn, "flat": _flat}


def funding_audit_target(days: FundingDays, env_cfg: FundingEnvConfig, reward: RewardSpec) -> AuditTarget:
    """Episodes start at distinct hours of `days`, each under a sampled TradingConfig (when the env samples)."""
    from rl.families.funding.env import FundingVecEnv

    def make_env(idx: np.ndarray, seed: int) -> Any:
        return FundingVecEnv(days, env_cfg, reward, n_envs=len(idx), seed=seed, fixed_starts=idx, auto_reset=False)

    return AuditTarget(
        n_available=days.n_hours - env_cfg.episode_hours,
        make_env=make_env,
        policies=_policies(env_cfg),
        component_names=COMPONENT_NAMES,
        cost_components=("fees",),
        net_pnl=lambda env: env.ledger.equity - env.ledger.equity0,
    )
