"""Intraday reference policies every agent is judged against on the same held-out days.

A trained agent is only interesting if it beats doing nothing (flat), passive exposure (buy and hold),
chance (random valid actions) and the obvious rule (SMA crossover). All are batched `Policy` callables:
`(obs [N, obs_dim], masks [N, 4]) -> actions [N]`, the same interface as the deterministic agent wrapper.
They read positions only through the masks (BUY valid iff position < 1, SELL valid iff position > -1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rl.core.policies import Policy, random_valid

HOLD, BUY, SELL, CLOSE = 0, 1, 2, 3
ACTION_NAMES: tuple[str, ...] = ("HOLD", "BUY", "SELL", "CLOSE")


def _valid_or_hold(wanted: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The wanted action where the mask allows it, else HOLD (always valid)."""
    rows = np.arange(len(wanted))
    return np.where(masks[rows, wanted], wanted, HOLD).astype(np.int64)


def flat() -> Policy:
    """Never trades: zero P&L, the bar any agent must clear after costs."""

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.zeros(len(masks), dtype=np.int64)

    return policy


def buy_and_hold() -> Policy:
    """Buys one unit at the first decision and holds it; the env liquidates at the end of the day."""

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return _valid_or_hold(np.full(len(masks), BUY, dtype=np.int64), masks)

    return policy


def sma_crossover(feature_names: Sequence[str], feature: str = "sma_5_20") -> Policy:
    """Long while log(SMA5/SMA20) > 0, short while < 0, unchanged at exactly 0.

    The feature is read from `obs[:, feature_names.index(feature)]` (features come first in the observation).
    """
    names = list(feature_names)
    if feature not in names:
        raise ValueError(f"sma_crossover needs feature {feature!r}; the observation has {names}")
    col = names.index(feature)

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        signal = np.asarray(obs)[:, col]
        wanted = np.where(signal > 0, BUY, np.where(signal < 0, SELL, HOLD)).astype(np.int64)
        return _valid_or_hold(wanted, masks)

    return policy


def baseline_policies(feature_names: Sequence[str], seed: int = 0) -> dict[str, Policy]:
    """The four baselines by report name; `sma_crossover` only when the feature exists."""
    out: dict[str, Policy] = {
        "flat": flat(),
        "buy_and_hold": buy_and_hold(),
        "random_valid": random_valid(seed),
    }
    if "sma_5_20" in feature_names:
        out["sma_crossover"] = sma_crossover(feature_names)
    return out
