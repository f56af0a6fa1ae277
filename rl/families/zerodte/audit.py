"""The 0DTE family as a reward-audit target: one (underlying, session) per episode under cheap policies.

`churn` buys and exits as often as the rules allow (the largest spread and commission bill), `always_call` holds
calls to the stop or the tiers (the largest premium swings), so the audit sees both ends of what a reward carries.
"""

from __future__ import annotations

import numpy as np

from rl.core.audit import AuditTarget, day_episodes_target, random_valid_actions
from rl.core.reward import RewardSpec
from rl.families.zerodte.config import EnvConfig
from rl.families.zerodte.data import OptionDays
from rl.families.zerodte.env import BUY_CALL, COMPONENT_NAMES, EXIT, ZeroDteVecEnv


def _always_call(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.where(masks[:, BUY_CALL], BUY_CALL, 0)


def _churn(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.where(masks[:, BUY_CALL], BUY_CALL, np.where(masks[:, EXIT], EXIT, 0))


def _never(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.zeros(len(masks), dtype=np.int64)


def zerodte_target(days: OptionDays, env_cfg: EnvConfig, reward: RewardSpec) -> AuditTarget:
    """One episode per (underlying, session); random_valid, always_call, churn and never_trade."""
    policies = {"random_valid": random_valid_actions, "always_call": _always_call, "churn": _churn,
                "never_trade": _never}  # fmt: skip
    return day_episodes_target(ZeroDteVecEnv, days, env_cfg, reward, policies, COMPONENT_NAMES)
