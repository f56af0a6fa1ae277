"""What every family's evaluation shares: one policy's episodes as a set, and a checkpoint loaded as a policy.

Seed 002 judged a policy on one slice unlike its training and kept only the latest numbers. Every family here
plays each held-out episode exactly once through `rl.core.rollout.masked_rollout`, under the same rules as
training, and refuses a checkpoint that saw any of the held-out days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from rl.core.policies import Policy, agent


@dataclass(frozen=True, eq=False)
class EpisodeSet:
    """One policy's episodes, in play order: the per-episode arrays every family's checks and report read.

    Subclasses say how many action kinds their episodes count (`N_ACTIONS`)."""

    N_ACTIONS: ClassVar[int]
    name: str
    episodes: tuple[Any, ...]

    @classmethod
    def concat(cls, name: str, results: Sequence[EpisodeSet]) -> Self:
        """One policy's episodes over several slices (e.g. all walk-forward test windows) as one result."""
        return cls(name=name, episodes=tuple(ep for r in results for ep in r.episodes))

    @property
    def net_pnl(self) -> np.ndarray:
        """Net P&L per episode ($)."""
        return np.array([ep.net_pnl for ep in self.episodes], dtype=np.float64)

    @property
    def total_reward(self) -> np.ndarray:
        """Total reward per episode."""
        return np.array([ep.total_reward for ep in self.episodes], dtype=np.float64)

    def row_identity(self, slice_name: str, checkpoint_id: str | None, agent: str) -> dict[str, Any]:
        """Whose episodes an ml.evaluation_episodes row holds: the slice, this policy, and the checkpoint when the
        policy is the agent (a baseline has none)."""
        is_agent = self.name == agent
        return {
            "slice": slice_name,
            "checkpoint_id": checkpoint_id if is_agent else None,
            "policy": self.name,
            "policy_kind": "agent" if is_agent else "baseline",
        }

    @property
    def action_counts(self) -> np.ndarray:
        """Decisions per action kind summed over episodes [N_ACTIONS]."""
        if not self.episodes:
            return np.zeros(self.N_ACTIONS, dtype=np.int64)
        return np.sum([ep.action_counts for ep in self.episodes], axis=0).astype(np.int64)


def load_model(checkpoint_dir: Path, held_out_dates: np.ndarray) -> tuple[Any, int]:
    """A checkpoint's MaskablePPO and its torch thread count, refusing look-ahead.

    Every held-out date must be later than the last date the checkpoint was trained on (its meta.json).
    """
    from rl.core.checkpoint import load_checkpoint

    model, meta = load_checkpoint(checkpoint_dir)
    last_train = (meta.get("data") or {}).get("last_date")
    if last_train is not None:
        first_test = np.asarray(held_out_dates).astype("datetime64[D]").min()
        if first_test <= np.datetime64(last_train, "D"):
            raise ValueError(
                f"held-out days start {first_test} but checkpoint {Path(checkpoint_dir).name!r} saw "
                f"training data up to {last_train}: evaluation days must be strictly later"
            )
    threads = int(((meta.get("config") or {}).get("ppo") or {}).get("torch_threads", 1))
    return model, threads


def load_agent(checkpoint_dir: Path, held_out_dates: np.ndarray) -> tuple[Policy, int]:
    """A checkpoint as a deterministic Policy and its torch thread count, refusing look-ahead (`load_model`)."""
    model, threads = load_model(checkpoint_dir, held_out_dates)
    return agent(model), threads
