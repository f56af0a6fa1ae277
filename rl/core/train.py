"""MaskablePPO training for every family: one or more phases on the family's batched env, then a checkpoint.

A family hands in an env factory per phase (`TrainPhase`); a curriculum's later phase starts from the weights
the previous one ended with. The checkpoint (see `rl.core.checkpoint`) records the resolved config, reward,
data and code versions and each phase's statistics.

torch, stable-baselines3 and sb3-contrib are imported inside the functions that need them (about 1.2 s
of import time), so the Dagster UI and CLI that import this module start fast.
"""

from __future__ import annotations

import gc
import json
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl.core.checkpoint import save_checkpoint
from rl.core.config import is_int, is_number, json_number, jsonable, known_keys
from rl.core.resume import drop_partial
from rl.core.versioning import code_version

if TYPE_CHECKING:
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import VecEnv

    from rl.core.reward import RewardSpec
    from rl.core.warmstart import TeacherFactory, WarmStartConfig

_ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU"}  # config name -> torch.nn class name

# (n_envs, seed) -> a batched VecEnv over the training days; every family supplies its own.
EnvFactory = Callable[[int, int], "VecEnv"]
Log = Callable[[str], None]

# SB3 logger keys of a PPO update -> names in TrainStats.
_SB3_STAT_KEYS = {
    "train/value_loss": "value_loss",
    "train/explained_variance": "explained_variance",
    "train/entropy_loss": "entropy_loss",
    "train/policy_gradient_loss": "policy_loss",
    "train/approx_kl": "approx_kl",
    "train/clip_fraction": "clip_fraction",
}
PROGRESS_EVERY = 0.1  # log progress about every 10% of a phase


@dataclass(frozen=True)
class PPOConfig:
    """MaskablePPO hyperparameters; frozen so the values saved with a checkpoint are the ones used."""

    total_timesteps: int = 300_000  # env steps per training run (rounded up to whole rollouts)
    n_envs: int = 256  # parallel envs stepped as one numpy batch
    n_steps: int = 64  # steps per env per rollout; rollout size = n_envs * n_steps
    batch_size: int = 1024  # minibatch size of each gradient step; must divide n_envs * n_steps
    n_epochs: int = 4  # passes over each rollout; the update cost grows linearly with it
    learning_rate: float = 3e-4  # Adam step size
    gamma: float = 0.99  # discount; 0.99 ~ a 100-minute horizon within a ~355-minute day
    gae_lambda: float = 0.95  # GAE bias/variance trade-off
    ent_coef: float = 0.01  # entropy bonus that keeps all valid actions explored early
    vf_coef: float = 0.5  # weight of the value loss
    clip_range: float = 0.2  # PPO ratio clip
    max_grad_norm: float = 0.5  # gradient norm clip
    net_arch: tuple[int, ...] = (256, 256, 128)  # hidden layers of the policy net and of the value net
    activation: str = "relu"  # hidden activation: relu, or tanh (SB3 default; tanh is ~25% slower on this CPU)
    seed: int = 0  # seeds python, numpy, torch and the envs: same seed + same data -> same parameters
    torch_threads: int = 1  # torch intra-op threads; one is steadier than two on a shared 2-core box
    device: str = "cpu"  # torch device
    save_every: int = 100_000  # env steps between partial saves a killed training resumes from; 0 = never

    def __post_init__(self) -> None:
        if not is_int(self.save_every) or self.save_every < 0:
            raise ValueError(f"ppo.save_every must be an integer >= 0 (0 = never), got {self.save_every!r}")
        ints = ("total_timesteps", "n_envs", "n_steps", "batch_size", "n_epochs", "torch_threads")
        for name in ints:
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"ppo.{name} must be a positive integer, got {value!r}")
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"ppo.seed must be a non-negative integer, got {self.seed!r}")
        rollout = self.n_envs * self.n_steps
        if self.batch_size < 2 or self.batch_size > rollout or rollout % self.batch_size:
            raise ValueError(
                f"ppo.batch_size ({self.batch_size}) must be >= 2 and divide the rollout size "
                f"n_envs*n_steps = {rollout}, otherwise PPO trains on a truncated last minibatch"
            )
        positive = ("learning_rate", "clip_range", "max_grad_norm")
        for name in positive:
            value = getattr(self, name)
            if not is_number(value) or value <= 0:
                raise ValueError(f"ppo.{name} must be a finite number > 0, got {value!r}")
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if not is_number(value) or not 0.0 < value <= 1.0:
                raise ValueError(f"ppo.{name} must be in (0, 1], got {value!r}")
        for name in ("ent_coef", "vf_coef"):
            value = getattr(self, name)
            if not is_number(value) or value < 0:
                raise ValueError(f"ppo.{name} must be a finite number >= 0, got {value!r}")
        arch = tuple(self.net_arch)
        if not arch or any(not is_int(n) or n < 1 for n in arch):
            raise ValueError(f"ppo.net_arch must be a non-empty list of positive layer sizes, got {self.net_arch!r}")
        object.__setattr__(self, "net_arch", arch)
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"ppo.activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"ppo.device must be a torch device name, got {self.device!r}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> PPOConfig:
        """Build from a YAML mapping, refusing unknown keys (a typo must not silently become a default)."""
        values = known_keys(cls, raw, where="ppo")
        if "net_arch" in values and isinstance(values["net_arch"], list):
            values["net_arch"] = tuple(values["net_arch"])
        for name in (
            "learning_rate",
            "gamma",
            "gae_lambda",
            "ent_coef",
            "vf_coef",
            "clip_range",
            "max_grad_norm",
        ):
            if isinstance(values.get(name), int) and not isinstance(values.get(name), bool):
                values[name] = float(values[name])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-safe values."""
        out = asdict(self)
        out["net_arch"] = list(self.net_arch)
        return out

    def policy_kwargs(self) -> dict[str, Any]:
        """Separate policy and value networks of the configured shape (`net_arch=dict(pi=..., vf=...)`)."""
        import torch

        return {
            "net_arch": {"pi": list(self.net_arch), "vf": list(self.net_arch)},
            "activation_fn": getattr(torch.nn, _ACTIVATIONS[self.activation]),
        }


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with `n` torch intra-op threads and without torch.distributions argument checks, then restore.

    Small-batch inference and PPO updates on this 2-core box are fastest and steadiest on one thread; two
    OpenMP threads slowed some runs several-fold when another process shared the cores. The distribution checks
    re-validate the policy's own logits at every rollout step (12% of a 256-env forward pass); the action masks
    they would not catch are checked by the env and the rollout loop instead.
    """
    import torch
    from torch.distributions import Distribution

    previous, validate = torch.get_num_threads(), Distribution._validate_args
    torch.set_num_threads(n)
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
        Distribution.set_default_validate_args(validate)


@dataclass(frozen=True)
class TrainPhase:
    """One stage of a training curriculum: its own env (settings, days) and step budget."""

    name: str
    timesteps: int  # env steps of this phase (rounded up to whole rollouts)
    make_env: EnvFactory

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a training phase needs a name, got {self.name!r}")
        if not is_int(self.timesteps) or self.timesteps < 1:
            raise ValueError(f"phase {self.name}: timesteps must be a positive integer, got {self.timesteps!r}")


@dataclass(frozen=True)
class TrainStats(Mapping):
    """What the last PPO update reported plus wall-clock throughput; saved in meta.json.

    Read-only mapping as well (`stats["steps_per_s"]`, `stats.items()`), so callers can treat it as a dict.
    """

    timesteps: int
    wall_s: float
    steps_per_s: float  # env steps per second of wall time inside learn() (rollouts + updates)
    value_loss: float
    explained_variance: float
    entropy_loss: float
    policy_loss: float
    approx_kl: float
    clip_fraction: float

    def __getitem__(self, key: str) -> float | int:
        if key not in _STAT_FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(_STAT_FIELDS)

    def __len__(self) -> int:
        return len(_STAT_FIELDS)

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-safe values (a non-finite number becomes None)."""
        return {k: json_number(getattr(self, k)) for k in _STAT_FIELDS}


_STAT_FIELDS = tuple(f.name for f in fields(TrainStats))


@dataclass(frozen=True)
class TrainResult:
    """Where the checkpoint landed, its stats (the last phase's update, the whole run's throughput) and meta."""

    checkpoint_dir: Path
    stats: TrainStats
    meta: dict[str, Any]
    phases: tuple[dict[str, Any], ...] = ()  # per phase: name, timesteps, wall_s, steps_per_s and its last update


def reward_summary(reward: RewardSpec) -> dict[str, Any]:
    """Name, sha256 and components of a reward spec, as saved with checkpoints and reports."""
    return {
        "name": getattr(reward, "name", None),
        "sha256": getattr(reward, "sha256", None),
        "description": getattr(reward, "description", None),
        "components": jsonable(getattr(reward, "components", {})),
    }


def data_summary(days: Any) -> dict[str, Any]:
    """Data version (content hash) and the coverage of a family's arrays (anything with dates and symbols)."""
    dates = np.asarray(days.dates).astype("datetime64[D]")
    return {
        "version": days.content_hash(),
        "n_days": int(len(dates)),
        "symbols": sorted({str(s) for s in np.asarray(days.symbols)}),
        "first_date": str(dates.min()) if len(dates) else None,
        "last_date": str(dates.max()) if len(dates) else None,
        "feature_names": list(getattr(days, "feature_names", ())),
    }


def _library_versions() -> dict[str, str]:
    import sb3_contrib
    import stable_baselines3
    import torch

    return {
        "numpy": np.__version__,
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "sb3_contrib": sb3_contrib.__version__,
    }


def _fmt_stat(values: Mapping[str, float], key: str) -> str:
    value = values.get(key)
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"


def _training_monitor(
    phase: str,
    total: int,
    info_keys: Sequence[str],
    log: Log | None,
    resumed: Mapping[str, Any] | None = None,
    save: Callable[[Any], None] | None = None,
):
    """A callback that logs finished episodes' `info_keys` to TensorBoard, progress to `log`, and every update.

    Each PPO update becomes a record in `updates` (its statistics, normalised entropy and the action mix of the
    rollout it trained on; `rl.core.health` judges them), saved with the checkpoint.

    `rollout/ep_net_pnl` sits next to SB3's `rollout/ep_rew_mean` in TensorBoard, so a reward that rises while
    P&L falls (seed 004) is visible during training. A line about every 10% of the phase (steps, steps/s, ETA,
    recent mean episode P&L and the last update's statistics) shows a long run's signs of life. SB3 dumps its
    logger after each rollout and before the update, so an update's values are pending in `name_to_value` until
    the next rollout starts; the final update's are read at the end, then flushed so TensorBoard gets them too.
    `resumed` carries the updates and episode endings a resumed phase recorded before its partial save; `save`
    is called after each update (it decides whether to write a partial state).
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class _TrainingMonitor(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.values: dict[str, float] = {}
            self.recent_pnl: deque[float] = deque(maxlen=100)
            self.reasons: list[str] = []  # how each finished episode ended, and its length (steps)
            self.lengths: list[int] = []
            self.start_steps = 0
            self.start_time = 0.0
            self.next_report = 0
            self.updates: list[dict[str, Any]] = []  # one record per PPO update (see rl.core.health)
            self.rollout: dict[str, Any] | None = None  # the action mix of the rollout the next update trains on
            if resumed:
                self.updates = list(resumed.get("updates", []))
                self.reasons = list(resumed.get("reasons", []))
                self.lengths = list(resumed.get("lengths", []))

        def _on_training_start(self) -> None:
            self.start_steps = self.model.num_timesteps
            self.start_time = time.perf_counter()
            self.next_report = max(1, int(total * PROGRESS_EVERY))

        def _on_step(self) -> bool:
            dones = self.locals["dones"]
            if dones.any():
                infos = self.locals["infos"]
                for i in np.flatnonzero(dones).tolist():
                    info = infos[i]
                    for key in info_keys:
                        if key in info:
                            self.logger.record_mean(f"rollout/ep_{key}", info[key])
                    if "net_pnl" in info:
                        self.recent_pnl.append(float(info["net_pnl"]))
                    self.reasons.append(str(info.get("done_reason", "")))
                    if "episode" in info:
                        self.lengths.append(int(info["episode"]["l"]))
            return True

        def episodes(self) -> dict[str, Any]:
            from rl.core.mismatch import episode_summary

            return episode_summary(self.reasons, self.lengths)

        def _update_stats(self) -> dict[str, float]:
            pending = self.model.logger.name_to_value
            return {name: float(pending[key]) for key, name in _SB3_STAT_KEYS.items() if key in pending}

        def _on_rollout_end(self) -> None:
            from rl.core.health import action_stats

            buffer = self.model.rollout_buffer
            n_actions = int(self.model.action_space.n)
            self.rollout = action_stats(buffer.actions, getattr(buffer, "action_masks", None), n_actions)
            for k, share in enumerate(self.rollout["action_share"]):
                self.logger.record(f"rollout/action_share_{k}", share)

        def _close_update(self) -> None:
            """Record the update that trained on the last rollout (its statistics are pending in the logger)."""
            from rl.core.health import entropy_norm

            if self.rollout is None:
                return
            stats = self._update_stats()
            norm = entropy_norm(stats.get("entropy_loss", float("nan")), self.rollout["mean_log_valid"])
            if math.isfinite(norm):
                self.model.logger.record("train/entropy_norm", norm)
            self.updates.append(
                {
                    "update": len(self.updates) + 1,
                    "timesteps": int(self.model.num_timesteps),
                    **{name: stats.get(name, float("nan")) for name in _SB3_STAT_KEYS.values()},
                    "entropy": -stats.get("entropy_loss", float("nan")),
                    "entropy_norm": norm,
                    "action_share": self.rollout["action_share"],
                }
            )
            self.rollout = None

        def _on_rollout_start(self) -> None:
            if self.rollout is not None:
                self._close_update()
                if save is not None:
                    save(self)
            done = self.model.num_timesteps - self.start_steps
            if log is None or done < self.next_report or done >= total:
                return
            self.next_report = done + max(1, int(total * PROGRESS_EVERY))
            wall = time.perf_counter() - self.start_time
            rate = done / wall if wall > 0 else float("nan")
            stats = self._update_stats()
            pnl = f"{np.mean(self.recent_pnl):+,.2f}" if self.recent_pnl else "n/a"
            log(
                f"{phase}: {done / total:.0%} ({done:,}/{total:,} steps), {rate:,.0f} steps/s, "
                f"ETA {(total - done) / rate if rate > 0 else float('nan'):.0f}s, "
                f"mean episode net P&L (last {len(self.recent_pnl)}) {pnl}; "
                + ", ".join(f"{name} {_fmt_stat(stats, name)}" for name in _SB3_STAT_KEYS.values())
            )

        def _on_training_end(self) -> None:
            self.values = self._update_stats()
            self._close_update()
            self.model.logger.dump(self.model.num_timesteps)

    return _TrainingMonitor()


def build_model(make_env: EnvFactory, ppo: PPOConfig, tensorboard_dir: Path | None = None) -> MaskablePPO:
    """A fresh MaskablePPO on the family's seeded batched env (wrapped in VecMonitor for episode stats)."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import VecMonitor

    env = VecMonitor(make_env(ppo.n_envs, ppo.seed))
    model = MaskablePPO(
        "MlpPolicy",
        env,
        learning_rate=ppo.learning_rate,
        n_steps=ppo.n_steps,
        batch_size=ppo.batch_size,
        n_epochs=ppo.n_epochs,
        gamma=ppo.gamma,
        gae_lambda=ppo.gae_lambda,
        clip_range=ppo.clip_range,
        ent_coef=ppo.ent_coef,
        vf_coef=ppo.vf_coef,
        max_grad_norm=ppo.max_grad_norm,
        policy_kwargs=ppo.policy_kwargs(),
        tensorboard_log=None if tensorboard_dir is None else str(tensorboard_dir),
        seed=ppo.seed,
        device=ppo.device,
        verbose=0,
    )
    if tensorboard_dir is None:
        # Without this SB3 configures a default logger that leaves an empty SB3-<time> folder in the temp dir.
        model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def _as_phases(phases: EnvFactory | Sequence[TrainPhase], ppo: PPOConfig) -> tuple[TrainPhase, ...]:
    if callable(phases):
        return (TrainPhase("train", ppo.total_timesteps, phases),)
    out = tuple(phases)
    if not out or not all(isinstance(p, TrainPhase) for p in out):
        raise ValueError("phases must be an env factory or a non-empty sequence of TrainPhase")
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ValueError(f"training phase names must be unique, got {names}")
    return out


def _start_model(
    phase: TrainPhase, ppo: PPOConfig, tensorboard_dir: Path | None, init_from: Path | None, offset: int
) -> MaskablePPO:
    """A fresh model, or the one saved in checkpoint `init_from` (weights and optimizer state) on this phase's env."""
    if init_from is None:
        return build_model(phase.make_env, ppo, tensorboard_dir)
    from stable_baselines3.common.vec_env import VecMonitor

    from rl.core.checkpoint import load_checkpoint

    model, _ = load_checkpoint(Path(init_from), device=ppo.device)
    model.set_env(VecMonitor(phase.make_env(ppo.n_envs, ppo.seed + offset)))
    model.tensorboard_log = None if tensorboard_dir is None else str(tensorboard_dir)
    return model


class _PartialSaver:
    """After an update, writes phase `phase`'s partial state when `every` steps have passed since the last save."""

    def __init__(
        self,
        folder: Path,
        every: int,
        phase: int,
        phase_start: int,
        wall_before: float,
        start: float,
        results: list[dict[str, Any]],
        now: int,
        notes: dict[str, Any],
    ) -> None:
        self.folder, self.every, self.phase, self.phase_start = folder, every, phase, phase_start
        self.wall_before, self.start, self.results, self.last = wall_before, start, results, now
        self.notes = notes

    def __call__(self, monitor: Any) -> None:
        from rl.core.resume import save_partial

        model = monitor.model
        if model.num_timesteps - self.last < self.every:
            return
        self.last = model.num_timesteps
        phase_wall = self.wall_before + time.perf_counter() - self.start
        state = {
            "phase": self.phase,
            "phase_steps": int(model.num_timesteps - self.phase_start),
            "phase_wall_s": phase_wall,
            "wall_s": sum(r["wall_s"] for r in self.results) + phase_wall,
            "results": self.results,
            "updates": monitor.updates,
            "reasons": monitor.reasons,
            "lengths": monitor.lengths,
            "notes": self.notes,
        }
        save_partial(model, state, self.folder)


def _learn_phases(
    phases: Sequence[TrainPhase],
    ppo: PPOConfig,
    run_id: str,
    tensorboard_dir: Path | None,
    progress_bar: bool,
    log: Log | None,
    info_keys: Sequence[str],
    init_from: Path | None = None,
    offset: int = 0,
    partial_dir: Path | None = None,
    warm_start: tuple[WarmStartConfig, TeacherFactory] | None = None,
) -> tuple[MaskablePPO, list[dict[str, Any]], dict[str, float], float, dict[str, Any]]:
    """Run every phase on one model; each later phase keeps the weights and the optimizer state. With `init_from`,
    the model continues from that checkpoint; `offset` is the first phase's index in the whole curriculum (it
    seeds each phase's env, so a curriculum split across checkpoints plays the same episodes).

    With `partial_dir`, the state is saved there every `ppo.save_every` steps, and a state found there on start is
    resumed: its phase continues from its saved model for the steps it had left. The resumed env is reseeded as at
    the phase's start, so a resumed training plays other episodes than an uninterrupted one would (the same in
    distribution). With `warm_start`, a fresh model is first fitted to the teacher's actions (`rl.core.warmstart`).
    Returns the model, each phase's results, the last update's statistics, the wall time and notes for meta.json:
    what was resumed and the warm start's statistics, where there were any.
    """
    from stable_baselines3.common.vec_env import VecMonitor

    from rl.core.resume import load_partial

    state = load_partial(partial_dir) if ppo.save_every else None
    first = int(state["phase"]) if state else 0
    results: list[dict[str, Any]] = list(state["results"]) if state else []
    total_wall = float(state["wall_s"]) if state else 0.0
    notes: dict[str, Any] = dict(state.get("notes", {})) if state else {}
    if state:
        from sb3_contrib import MaskablePPO

        model = MaskablePPO.load(state["model_path"], device=ppo.device)
        model.set_env(VecMonitor(phases[first].make_env(ppo.n_envs, ppo.seed + offset + first)))
        model.tensorboard_log = None if tensorboard_dir is None else str(tensorboard_dir)
        notes["resumed"] = {
            "phase": phases[first].name,
            "from_steps": int(state["phase_steps"]),
            "saved_wall_s": total_wall,
        }
        if log is not None:
            done, of = int(state["phase_steps"]), phases[first].timesteps
            log(f"resumed phase {phases[first].name} at {done:,} of {of:,} steps from {Path(partial_dir).name}")
    else:
        model = _start_model(phases[0], ppo, tensorboard_dir, init_from, offset)
        if warm_start is not None and init_from is None:
            notes["warm_start"] = _warm_start(model, phases[0], ppo, offset, *warm_start, log)
    values: dict[str, float] = {}
    for k in range(first, len(phases)):
        phase = phases[k]
        if k > first:
            model.get_env().close()
            model.set_env(VecMonitor(phase.make_env(ppo.n_envs, ppo.seed + offset + k)))
        done_before = int(state["phase_steps"]) if state and k == first else 0
        label = phase.name if len(phases) == 1 else f"phase {phase.name} ({k + 1}/{len(phases)})"
        before = model.num_timesteps - done_before
        wall_before = float(state["phase_wall_s"]) if state and k == first else 0.0
        start = time.perf_counter()
        save = None
        if partial_dir is not None and ppo.save_every:
            save = _PartialSaver(
                partial_dir, ppo.save_every, k, before, wall_before, start, results, model.num_timesteps, notes
            )
        resumed_phase = state if k == first else None
        callback = _training_monitor(label, phase.timesteps - done_before, info_keys, log, resumed_phase, save)
        model.learn(
            total_timesteps=phase.timesteps - done_before,
            callback=callback,
            tb_log_name=run_id if len(phases) == 1 else f"{run_id}-{phase.name}",
            progress_bar=progress_bar,
            reset_num_timesteps=k == 0 and init_from is None and not state,
        )
        wall = wall_before + time.perf_counter() - start
        total_wall += time.perf_counter() - start
        steps = int(model.num_timesteps - before)
        values = callback.values
        results.append(
            {
                "name": phase.name,
                "timesteps": steps,
                "wall_s": wall,
                "steps_per_s": steps / wall if wall > 0 else float("nan"),
                **{name: values.get(name, float("nan")) for name in _SB3_STAT_KEYS.values()},
                "episodes": callback.episodes(),
                "updates": callback.updates,
            }
        )
    return model, results, values, total_wall, notes


def _warm_start(
    model: MaskablePPO,
    phase: TrainPhase,
    ppo: PPOConfig,
    offset: int,
    cfg: WarmStartConfig,
    teacher: TeacherFactory,
    log: Log | None,
) -> dict[str, Any]:
    """Behaviour-clone the teacher on the first phase's env (its days, another seed) before PPO starts."""
    from rl.core.warmstart import behaviour_clone, demonstrations

    start = time.perf_counter()
    env = phase.make_env(ppo.n_envs, ppo.seed + offset + 7919)  # not the seed of the envs PPO will play
    try:
        demos = demonstrations(env, teacher(env), cfg.steps)
    finally:
        env.close()
    stats = behaviour_clone(model, demos, cfg, ppo.seed)
    stats["wall_s"] = time.perf_counter() - start
    if log is not None:
        last = stats["epochs"][-1]
        log(
            f"warm start: {stats['samples']:,} steps of {cfg.teacher}, {cfg.epochs} epochs, loss {last['loss']:.3f}, "
            f"agreement with the teacher {last['agreement']:.1%}"
        )
    return stats


def train_policy(
    days: Any,
    env_cfg: Any,
    reward: RewardSpec,
    ppo: PPOConfig,
    out_dir: Path,
    phases: EnvFactory | Sequence[TrainPhase],
    run_meta: Mapping[str, Any] | None = None,
    tensorboard_dir: Path | None = None,
    progress_bar: bool = False,
    log: Log | None = None,
    info_keys: Sequence[str] = ("net_pnl",),
    init_from: Path | None = None,
    phase_offset: int = 0,
    partial_dir: Path | None = None,
    warm_start: tuple[WarmStartConfig, TeacherFactory] | None = None,
) -> TrainResult:
    """Train MaskablePPO through `phases` and save an atomic checkpoint directory at `out_dir`.

    `phases` is the family's env factory (one phase of `ppo.total_timesteps`) or a curriculum of `TrainPhase`s.
    `days` and `env_cfg` are described in meta.json (data version and coverage, resolved env settings).
    `out_dir` must not exist yet (checkpoints are never overwritten). `run_meta` (JSON-serialisable) is stored
    verbatim in meta.json. `info_keys` are the finished-episode info values logged to TensorBoard. `init_from`
    continues an earlier checkpoint (a curriculum's later phases; `phase_offset` is their index in it).
    `partial_dir` is where the training saves a partial state every `ppo.save_every` steps and resumes one from
    (see `rl.core.resume`); it is deleted once the finished checkpoint is written. `warm_start` (settings and
    teacher) behaviour-clones the teacher into a fresh model before the first phase.
    """
    from warehouse.runs import new_run_id

    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(
            f"checkpoint directory {out_dir.name!r} already exists; checkpoints are never overwritten"
        )
    plan = _as_phases(phases, ppo)
    run_meta = dict(run_meta or {})
    json.dumps(jsonable(run_meta), allow_nan=False)  # fail before training, not after, on unserialisable meta
    run_id = str(run_meta.get("run_id") or new_run_id("train"))

    with torch_threads(ppo.torch_threads):
        model, phase_stats, values, wall, notes = _learn_phases(
            plan, ppo, run_id, tensorboard_dir, progress_bar, log, info_keys, init_from, phase_offset, partial_dir,
            warm_start,
        )  # fmt: skip
        stats = TrainStats(
            timesteps=int(model.num_timesteps),
            wall_s=wall,
            steps_per_s=model.num_timesteps / wall if wall > 0 else float("nan"),
            **{name: values.get(name, float("nan")) for name in _SB3_STAT_KEYS.values()},
        )
        meta = {
            "run_id": run_id,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": {"env": jsonable(env_cfg), "ppo": ppo.to_dict()},
            "reward": reward_summary(reward),
            "data": data_summary(days),
            "code_version": code_version(),
            "libraries": _library_versions(),
            "stats": stats.to_dict(),
            "phases": jsonable(phase_stats),
            "run_meta": jsonable(run_meta),
        }
        meta.update(notes)
        checkpoint = save_checkpoint(model, meta, out_dir)
        model.get_env().close()
    # SB3's model sits in reference cycles that hold its env (a long training window's arrays: gigabytes), which
    # only a full collection frees; several runs in one process would otherwise pile them up until memory runs out.
    del model
    gc.collect()
    drop_partial(partial_dir)
    return TrainResult(checkpoint_dir=checkpoint, stats=stats, meta=meta, phases=tuple(phase_stats))


def measure_torch_ceiling(
    obs_dim: int,
    ppo: PPOConfig,
    n_actions: int = 4,
    n_batches: int = 40,
    warmup: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Train-step throughput of SB3's own maskable actor-critic at `ppo.batch_size`, with no env at all.

    Each step is a PPO-style forward (evaluate_actions with masks), clipped surrogate + value + entropy
    loss, backward, grad-norm clip and Adam step on random data. Since PPO passes over every sample
    n_epochs times, `ceiling_env_steps_per_s = samples_per_s / n_epochs` bounds end-to-end training.
    """
    import torch
    from gymnasium import spaces
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

    with torch_threads(ppo.torch_threads):
        torch.manual_seed(seed)
        obs_space = spaces.Box(-np.inf, np.inf, shape=(obs_dim,), dtype=np.float32)
        policy = MaskableActorCriticPolicy(
            obs_space,
            spaces.Discrete(n_actions),
            lr_schedule=lambda _: ppo.learning_rate,
            **ppo.policy_kwargs(),
        ).to(ppo.device)
        gen = torch.Generator().manual_seed(seed)
        b = ppo.batch_size
        obs = torch.randn(b, obs_dim, generator=gen)
        actions = torch.randint(0, n_actions, (b,), generator=gen)
        masks = np.ones((b, n_actions), dtype=bool)
        old_log_prob = torch.full((b,), -math.log(n_actions))
        advantages = torch.randn(b, generator=gen)
        returns = torch.randn(b, generator=gen)

        def step() -> None:
            values, log_prob, entropy = policy.evaluate_actions(obs, actions, action_masks=masks)
            ratio = torch.exp(log_prob - old_log_prob)
            surrogate = torch.min(
                advantages * ratio, advantages * torch.clamp(ratio, 1 - ppo.clip_range, 1 + ppo.clip_range)
            )
            loss = (
                -surrogate.mean()
                + ppo.vf_coef * torch.nn.functional.mse_loss(returns, values.flatten())
                - ppo.ent_coef * entropy.mean()
            )
            policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), ppo.max_grad_norm)
            policy.optimizer.step()

        for _ in range(warmup):
            step()
        start = time.perf_counter()
        for _ in range(n_batches):
            step()
        wall = time.perf_counter() - start
    samples_per_s = n_batches * b / wall
    return {
        "batch_size": float(b),
        "n_epochs": float(ppo.n_epochs),
        "torch_threads": float(ppo.torch_threads),
        "samples_per_s": samples_per_s,
        "ceiling_env_steps_per_s": samples_per_s / ppo.n_epochs,
    }
