"""Rules-aware reference accounts, judged under the same rule book on the same start days as the agent.

Flat never trades (it can never pass, nor fail); random-valid trades at chance; the opening-range breakout and the
trend rule are what a discretionary futures trader would try first. The last two read the bars through the env's
arrays up to the decision bar only (a `Policy` is `(obs, masks) -> actions`; these close over the env), trade one
contract, and leave the cutoff, the entry cutoff and the limits to the env's masks, like the agent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rl.core.policies import Policy, random_valid

PolicyFactory = Callable[[Any], Policy]  # evaluation-mode PropFirmVecEnv -> policy


def _hold(env: Any) -> np.ndarray:
    """The action that keeps each env's current position."""
    return env.core.ledger.pos + env.core.max_pos


def _to(env: Any, target: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Actions targeting `target` contracts where the masks allow it, else HOLD."""
    wanted = np.clip(target, -env.core.max_pos, env.core.max_pos) + env.core.max_pos
    rows = np.arange(len(wanted))
    return np.where(masks[rows, wanted], wanted, _hold(env)).astype(np.int64)


def flat(env: Any) -> Policy:
    """Never trades."""

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return _to(env, np.zeros(env.num_envs, dtype=np.int64), masks)

    return policy


def random_policy(seed: int) -> PolicyFactory:
    """Uniformly random among the valid actions."""
    return lambda env: random_valid(seed)


def opening_range_breakout(minutes: int, stop_points: float, target_points: float) -> PolicyFactory:
    """The first `minutes` bars after the day's first decision set a range; a close above it buys one contract, a
    close below sells one; the trade exits at a fixed stop or target (points from the entry bar's close), and the
    day trades once."""

    def make(env: Any) -> Policy:
        core = env.core
        n = env.num_envs
        entry = np.full(n, np.nan)
        traded_day = np.full(n, -1, dtype=np.int64)  # the day index each env has used its one trade on
        high = core._high.reshape(core.n_days, -1)
        low = core._low.reshape(core.n_days, -1)
        close = core._close.reshape(core.n_days, -1)

        def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
            t, day, pos = core.t, core.day, core.ledger.pos
            first = core._start[day] + 1
            formed = t >= first + minutes - 1
            rows = np.arange(n)
            span = np.arange(high.shape[1])[None, :]
            in_range = (span >= first[:, None]) & (span < (first + minutes)[:, None])
            top = np.where(in_range, high[day], -np.inf).max(axis=1)
            bottom = np.where(in_range, low[day], np.inf).min(axis=1)
            px = close[day, t]
            target = pos.copy()
            fresh = formed & (pos == 0) & (traded_day != day)
            target = np.where(fresh & (px > top), 1, np.where(fresh & (px < bottom), -1, target))
            opened = (target != 0) & (pos == 0)
            entry[opened] = px[opened]
            traded_day[opened] = day[opened]
            move = (px - entry) * np.sign(pos)
            exit_ = (pos != 0) & ((move <= -stop_points) | (move >= target_points))
            target = np.where(exit_, 0, target)
            return _to(env, target[rows], masks)

        return policy

    return make


def trend(fast: int = 20, slow: int = 60) -> PolicyFactory:
    """Long one contract while the `fast`-bar mean of closes is above the `slow`-bar mean, short while below
    (closes up to the decision bar of the same day)."""

    def make(env: Any) -> Policy:
        core = env.core
        close = core._close.reshape(core.n_days, -1)
        csum = np.concatenate([np.zeros((core.n_days, 1)), np.cumsum(close, axis=1)], axis=1)

        def mean(day: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
            lo = np.maximum(t + 1 - k, 0)
            return (csum[day, t + 1] - csum[day, lo]) / (t + 1 - lo)

        def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
            t, day = core.t, core.day
            gap = mean(day, t, fast) - mean(day, t, slow)
            ready = t + 1 >= slow
            target = np.where(ready, np.sign(gap), 0).astype(np.int64)
            return _to(env, target, masks)

        return policy

    return make


def baseline_factories(evaluation: Any, seed: int = 0) -> dict[str, PolicyFactory]:
    """The four baselines by report name."""
    return {
        "flat": flat,
        "random_valid": random_policy(seed),
        "opening_range": opening_range_breakout(
            evaluation.orb_minutes, evaluation.orb_stop_points, evaluation.orb_target_points
        ),
        "trend": trend(),
    }
