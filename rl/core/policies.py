"""The policy interface every evaluation and baseline shares, and the two policies every family has.

A policy is a batched callable `(obs [N, obs_dim], masks [N, A]) -> actions [N]`: the trained agent, each
family's baselines and the random-valid reference all look the same to the rollout loop (`rl.core.rollout`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sb3_contrib import MaskablePPO

Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]


def random_valid(seed: int = 0) -> Policy:
    """Uniformly random among the valid actions, from its own seeded generator (no global state)."""
    rng = np.random.default_rng(seed)

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        m = np.asarray(masks, dtype=bool)
        scores = rng.random(m.shape)
        return np.argmax(np.where(m, scores, -1.0), axis=1).astype(np.int64)

    return policy


def agent(model: MaskablePPO) -> Policy:
    """A trained MaskablePPO as a deterministic Policy: argmax over valid actions only."""

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        actions, _ = model.predict(obs, action_masks=masks, deterministic=True)
        return np.asarray(actions, dtype=np.int64).reshape(len(masks))

    return policy
