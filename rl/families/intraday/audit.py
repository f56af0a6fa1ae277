"""The intraday family as a reward-audit target: one (symbol, session) per episode under four cheap policies.

`flip` goes long, short, long every minute (the costliest behaviour) and `always_long` carries the largest P&L
swings, so the audit sees both the largest fee bills and the largest P&L a reward can carry.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rl.core.audit import (
    AuditPolicy,
    AuditTarget,
    RewardAudit,
    audit_target,
    day_episodes_target,
    random_valid_actions,
)
from rl.core.data import MarketDays
from rl.core.reward import RewardSpec
from rl.families.intraday.accounting import COMPONENT_NAMES
from rl.families.intraday.config import EnvConfig

POLICIES: tuple[str, ...] = ("random_valid", "always_long", "always_flat", "flip")


def _always_long(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.where(masks[:, 1], 1, 0)


def _always_flat(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.where(masks[:, 3], 3, 0)


def _flip(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Long, short, long, ... every minute (the most costly behaviour); CLOSE when opening is not allowed."""
    return np.where(masks[:, 1], 1, np.where(masks[:, 2], 2, np.where(masks[:, 3], 3, 0)))


_POLICY_FUNCS: dict[str, AuditPolicy] = {
    "random_valid": random_valid_actions,
    "always_long": _always_long,
    "always_flat": _always_flat,
    "flip": _flip,
}


def intraday_target(days: MarketDays, env_cfg: EnvConfig, reward: RewardSpec) -> AuditTarget:
    """The intraday family: one episode per (symbol, session), the four POLICIES above."""
    from rl.families.intraday.env import IntradayVecEnv

    return day_episodes_target(IntradayVecEnv, days, env_cfg, reward, _POLICY_FUNCS, COMPONENT_NAMES)


def audit_reward(
    days: MarketDays,
    env_cfg: EnvConfig,
    reward: RewardSpec,
    n_episodes: int = 16,
    seed: int = 0,
    gamma: float = 0.99,
    policies: Sequence[str] = POLICIES,
) -> RewardAudit:
    """Roll out `policies` for `n_episodes` days each (the same days for every policy); measure the reward."""
    return audit_target(intraday_target(days, env_cfg, reward), reward, n_episodes, seed, gamma, policies)
