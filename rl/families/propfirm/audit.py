"""The prop-firm family as a reward-audit target: whole accounts under the rule book, four cheap policies.

`flip` swings from the most long to the most short contracts every bar (the largest fee bills) and `always_long`
holds the most contracts (the largest P&L swings, and breaches), so the audit sees both ends of what a reward
can carry, including the one-off breach and pass terms.
"""

from __future__ import annotations

import numpy as np

from rl.core.audit import AuditPolicy, AuditTarget, day_episodes_target, random_valid_actions
from rl.core.reward import RewardSpec
from rl.families.propfirm.config import EnvConfig
from rl.families.propfirm.data import FuturesDays
from rl.families.propfirm.env import COMPONENT_NAMES


def _last_valid(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return masks.shape[1] - 1 - np.argmax(masks[:, ::-1], axis=1)


def _flat(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    middle = masks.shape[1] // 2
    return np.where(masks[:, middle], middle, np.argmax(masks, axis=1))


def _flip(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The extreme long and short targets in turn, by the parity of a random draw per bar."""
    first, last = np.argmax(masks, axis=1), _last_valid(masks, rng)
    return np.where(rng.random(len(masks)) < 0.5, first, last)


POLICIES: dict[str, AuditPolicy] = {
    "random_valid": random_valid_actions,
    "always_long": _last_valid,
    "always_flat": _flat,
    "flip": _flip,
}


def propfirm_target(days: FuturesDays, env_cfg: EnvConfig, reward: RewardSpec) -> AuditTarget:
    """Accounts opened on distinct days, played by POLICIES."""
    from rl.families.propfirm.env import PropFirmVecEnv

    return day_episodes_target(PropFirmVecEnv, days, env_cfg, reward, POLICIES, COMPONENT_NAMES)
