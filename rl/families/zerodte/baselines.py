"""0DTE reference policies, judged on the same held-out sessions under the same stop, tiers and costs as the agent.

Never trading is the bar after costs, random-valid is chance, and the momentum rule is the obvious human setup
(buy a call on an upside breakout of the underlying, a put on a downside one, and let the risk rules exit).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rl.core.policies import Policy, random_valid
from rl.families.zerodte.env import BUY_CALL, BUY_PUT, HOLD, observation_names


def never_trade() -> Policy:
    """HOLD every minute: zero P&L."""

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.zeros(len(masks), dtype=np.int64)

    return policy


def momentum(feature_names: Sequence[str], window: int, feature: str, level: float) -> Policy:
    """Buy a call when the last minute's `feature` is >= `level`, a put when <= -`level` (flat and allowed only);
    exits come from the stop, the tiers and the close."""
    if feature not in feature_names:
        raise ValueError(f"the momentum baseline needs feature {feature!r}; the observation has {list(feature_names)}")
    col = observation_names(feature_names, window).index(f"{feature}_t")

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        signal = np.asarray(obs)[:, col]
        wanted = np.where(signal >= level, BUY_CALL, np.where(signal <= -level, BUY_PUT, HOLD))
        rows = np.arange(len(wanted))
        return np.where(masks[rows, wanted], wanted, HOLD).astype(np.int64)

    return policy


def baseline_policies(feature_names: Sequence[str], window: int, feature: str, level: float, seed: int) -> dict:
    """The three baselines by report name."""
    return {
        "never_trade": never_trade(),
        "random_valid": random_valid(seed),
        "momentum": momentum(feature_names, window, feature, level),
    }
