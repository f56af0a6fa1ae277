"""Warm start by behaviour cloning: an optional phase 0 that teaches the fresh MaskablePPO policy a rule's actions.

Seed 004 considered supervised pre-training. The `imitation` library cannot be installed beside SB3 2.9 and
gymnasium 1.x (and its masking was broken), so this is the small piece it would be: a teacher (one of the family's
baselines, by name) plays the family's own training env on the training days only, and the policy network is
fitted to its actions by the masked log-likelihood of `policy.evaluate_actions`, the same masked distribution PPO
then trains. Only the actor learns here; the critic starts PPO untrained, as it would without a warm start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rl.core.config import is_int, is_number, known_keys
from rl.core.health import action_stats

if TYPE_CHECKING:
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import VecEnv

    from rl.core.policies import Policy

# A teacher for one env: most are fixed rules, some (prop-firm) read the env's account state.
TeacherFactory = Callable[["VecEnv"], "Policy"]


@dataclass(frozen=True)
class WarmStartConfig:
    """A family config's `warm_start:` section; no teacher = no warm start."""

    teacher: str | None = None  # a baseline of the family, by its report name (e.g. momentum)
    steps: int = 65_536  # demonstration env steps on the training days
    epochs: int = 4  # passes over the demonstrations
    batch_size: int = 1024
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        if self.teacher is not None and (not isinstance(self.teacher, str) or not self.teacher):
            raise ValueError(f"warm_start.teacher must be a baseline's name or null, got {self.teacher!r}")
        for name in ("steps", "epochs", "batch_size"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"warm_start.{name} must be a positive integer, got {value!r}")
        if not is_number(self.learning_rate) or self.learning_rate <= 0:
            raise ValueError(f"warm_start.learning_rate must be a finite number > 0, got {self.learning_rate!r}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> WarmStartConfig:
        values = known_keys(cls, raw, where="warm_start")
        if is_int(values.get("learning_rate")):
            values["learning_rate"] = float(values["learning_rate"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Demonstrations:
    """What the teacher saw, was allowed and did, step by step (flattened over envs)."""

    obs: np.ndarray  # [S, obs_dim] float32
    masks: np.ndarray  # [S, A] bool
    actions: np.ndarray  # [S] int64


def demonstrations(env: VecEnv, teacher: Policy, steps: int) -> Demonstrations:
    """The teacher's masked actions over at least `steps` env steps of `env` (whole batched steps)."""
    n = env.num_envs
    obs = env.reset()
    seen, allowed, done = [], [], []
    for _ in range(math.ceil(steps / n)):
        masks = np.asarray(env.action_masks(), dtype=bool)
        actions = np.asarray(teacher(obs, masks), dtype=np.int64).reshape(n)
        if not masks[np.arange(n), actions].all():
            raise ValueError("the warm-start teacher chose a masked action")
        seen.append(np.asarray(obs, dtype=np.float32).copy())
        allowed.append(masks.copy())
        done.append(actions)
        obs, _, _, _ = env.step(actions)
    return Demonstrations(np.concatenate(seen), np.concatenate(allowed), np.concatenate(done))


def behaviour_clone(model: MaskablePPO, demos: Demonstrations, cfg: WarmStartConfig, seed: int) -> dict[str, Any]:
    """Fit the policy to the demonstrations by masked log-likelihood; the loss and agreement of each epoch.

    Agreement is the share of demonstration steps where the policy's most likely valid action is the teacher's.
    A fresh Adam is used, so PPO's own optimizer state is not touched.
    """
    import torch

    policy = model.policy
    params = [p for name, p in policy.named_parameters() if not name.startswith(("value_net", "mlp_extractor.value"))]
    optimizer = torch.optim.Adam(params, lr=cfg.learning_rate)
    obs = torch.as_tensor(demos.obs, device=policy.device)
    actions = torch.as_tensor(demos.actions, device=policy.device)
    gen = torch.Generator().manual_seed(seed)
    epochs = []
    policy.set_training_mode(True)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(actions), generator=gen)
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            _, log_prob, _ = policy.evaluate_actions(obs[idx], actions[idx], action_masks=demos.masks[idx.numpy()])
            loss = -log_prob.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        epochs.append({"loss": float(np.mean(losses)), "agreement": agreement(model, demos)})
    policy.set_training_mode(False)
    share = action_stats(demos.actions, None, demos.masks.shape[1])["action_share"]
    return {"teacher": cfg.teacher, "samples": len(actions), "epochs": epochs, "teacher_action_share": share}


def agreement(model: MaskablePPO, demos: Demonstrations) -> float:
    """Share of demonstration steps where the policy's most likely valid action is the teacher's."""
    chosen, _ = model.predict(demos.obs, action_masks=demos.masks, deterministic=True)
    return float(np.mean(np.asarray(chosen).reshape(-1) == demos.actions))
