"""The one masked rollout loop: the reward audit and every family's evaluation play episodes through it.

An evaluation-mode batched env (`auto_reset=False`, a `done_mask`) plays every env to its own end exactly once.
Each step the policy sees the observations and a fresh copy of the masks; an action that a running env's mask
forbids is a bug in the policy, so it raises instead of being reinterpreted by the env. What a family records
beyond the totals (equity curves, positions, symbols) it records in the two hooks, around `env.step`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl.core.policies import Policy

StepHook = Callable[[np.ndarray, np.ndarray], None]


@dataclass(frozen=True, eq=False)
class Rollout:
    """Per-env totals of one rollout: every array is indexed by env."""

    total_reward: np.ndarray  # [N] sum of the step rewards
    steps: np.ndarray  # [N] int64 decisions taken
    done_code: np.ndarray  # [N] int8 the env's done code when it finished (an index into its DONE_REASONS)
    action_counts: np.ndarray  # [N, A] int64 decisions per action index


def _describe(i: int) -> str:
    return f"env {i}"


def masked_rollout(
    env: Any,
    policy: Policy,
    name: str = "policy",
    before_step: StepHook | None = None,
    after_step: StepHook | None = None,
    describe: Callable[[int], str] = _describe,
) -> Rollout:
    """Reset `env` and play `policy` until every env is done; returns the per-env totals.

    `before_step(running, actions)` runs after the actions are validated and before the env steps (the state
    the decision was taken in); `after_step(running, steps)` runs after it, with `steps[running]` the index of
    the step just taken. `running` holds the indices of the envs that took the step. `describe(i)` names env i
    in the error for a masked action.
    """
    n = int(env.num_envs)
    width = int(env.action_space.n)
    rows = np.arange(n)
    obs = env.reset()
    total = np.zeros(n, dtype=np.float64)
    steps = np.zeros(n, dtype=np.int64)
    done_code = np.zeros(n, dtype=np.int8)
    counts = np.zeros((n, width), dtype=np.int64)
    while not env.done_mask.all():
        active = ~env.done_mask
        masks = env.action_masks()
        actions = np.asarray(policy(obs, masks)).reshape(-1)
        if actions.shape != (n,):
            raise ValueError(f"policy {name!r} returned {actions.shape} actions for {n} envs")
        actions = actions.astype(np.int64)
        invalid = active & ((actions < 0) | (actions >= width))
        invalid |= active & ~masks[rows, np.clip(actions, 0, width - 1)]
        if invalid.any():
            i = int(np.flatnonzero(invalid)[0])
            raise ValueError(
                f"policy {name!r} chose masked action {int(actions[i])} on {describe(i)} "
                f"(valid: {np.flatnonzero(masks[i]).tolist()})"
            )
        actions = np.where(active, actions, 0)
        running = np.flatnonzero(active)
        np.add.at(counts, (running, actions[running]), 1)
        if before_step is not None:
            before_step(running, actions)
        obs, rewards, dones, _ = env.step(actions)
        total[running] += rewards[running]
        if after_step is not None:
            after_step(running, steps)
        steps[running] += 1
        finished = np.flatnonzero(dones)
        done_code[finished] = env.last_done_code[finished]
    return Rollout(total_reward=total, steps=steps, done_code=done_code, action_counts=counts)
