"""MaskablePPO training on the batched intraday env, with atomic, fully-described checkpoints.

A checkpoint is a directory holding `model.zip` and `meta.json` (the resolved config, reward spec and
sha256, data version, code version and training stats), so any evaluation can name exactly what it
evaluated. It is written to a temporary sibling and renamed into place: a crash never leaves a
half-written checkpoint that a later run could mistake for a finished one.

torch, stable-baselines3 and sb3-contrib are imported inside the functions that need them (about 1.2 s
of import time), so the Dagster UI and CLI that import this module start fast.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl.versioning import code_version

if TYPE_CHECKING:
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import VecEnv

    from rl.config import EnvConfig
    from rl.data import MarketDays
    from rl.reward import RewardSpec

MODEL_FILE = "model.zip"
META_FILE = "meta.json"
_ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU"}  # config name -> torch.nn class name

# (n_envs, seed) -> a batched VecEnv over the training days; each family supplies its own (rl/families.py).
EnvFactory = Callable[[int, int], "VecEnv"]

# SB3 logger keys read at the end of training -> names in TrainStats.
_SB3_STAT_KEYS = {
    "train/value_loss": "value_loss",
    "train/explained_variance": "explained_variance",
    "train/entropy_loss": "entropy_loss",
    "train/policy_gradient_loss": "policy_loss",
    "train/approx_kl": "approx_kl",
    "train/clip_fraction": "clip_fraction",
}


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

    def __post_init__(self) -> None:
        ints = ("total_timesteps", "n_envs", "n_steps", "batch_size", "n_epochs", "torch_threads")
        for name in ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ppo.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
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
            if not _finite(value) or value <= 0:
                raise ValueError(f"ppo.{name} must be a finite number > 0, got {value!r}")
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if not _finite(value) or not 0.0 < value <= 1.0:
                raise ValueError(f"ppo.{name} must be in (0, 1], got {value!r}")
        for name in ("ent_coef", "vf_coef"):
            value = getattr(self, name)
            if not _finite(value) or value < 0:
                raise ValueError(f"ppo.{name} must be a finite number >= 0, got {value!r}")
        arch = tuple(self.net_arch)
        if not arch or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in arch):
            raise ValueError(f"ppo.net_arch must be a non-empty list of positive layer sizes, got {self.net_arch!r}")
        object.__setattr__(self, "net_arch", arch)
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"ppo.activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"ppo.device must be a torch device name, got {self.device!r}")

    @classmethod
    def from_dict(cls, raw: Mapping) -> PPOConfig:
        """Build from a YAML mapping, refusing unknown keys (a typo must not silently become a default)."""
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"ppo: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        values = dict(raw)
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
        return {k: _json_number(getattr(self, k)) for k in _STAT_FIELDS}


_STAT_FIELDS = tuple(f.name for f in fields(TrainStats))


@dataclass(frozen=True)
class TrainResult:
    """Where the checkpoint landed, its stats and the meta.json written with it."""

    checkpoint_dir: Path
    stats: TrainStats
    meta: dict[str, Any]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))


def _json_number(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def jsonable(value: Any) -> Any:
    """Dataclasses, numpy values, dates, tuples and Paths as plain JSON values (non-finite floats -> None)."""
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.datetime64):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating | np.integer):
        return _json_number(value)
    return value


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with `n` torch intra-op threads, then restore the previous count.

    Small-batch inference and PPO updates on this 2-core box are fastest and steadiest on one thread; two
    OpenMP threads slowed some runs several-fold when another process shared the cores.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def new_run_id() -> str:
    """Sortable unique id: UTC timestamp plus random suffix (never reused, so nothing is overwritten)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def reward_summary(reward: RewardSpec) -> dict[str, Any]:
    """Name, sha256 and components of a reward spec, as saved with checkpoints and reports."""
    return {
        "name": getattr(reward, "name", None),
        "sha256": getattr(reward, "sha256", None),
        "description": getattr(reward, "description", None),
        "components": jsonable(getattr(reward, "components", {})),
    }


def data_summary(days: MarketDays) -> dict[str, Any]:
    """Data version (content hash) and the coverage of a MarketDays."""
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


def _stats_callback():
    """A callback that logs each finished training episode's net P&L and keeps the final update's stats.

    `rollout/ep_net_pnl` and `rollout/ep_round_trips` sit next to SB3's `rollout/ep_rew_mean` in TensorBoard,
    so a reward that rises while P&L falls (seed 004) is visible during training. SB3 dumps its logger
    before each update, so the values of the final update are still pending in `name_to_value` at the end;
    they are read, then flushed so TensorBoard gets them too.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class _TrainingMonitor(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.values: dict[str, float] = {}

        def _on_step(self) -> bool:
            dones = self.locals["dones"]
            if dones.any():
                infos = self.locals["infos"]
                for i in np.flatnonzero(dones).tolist():
                    self.logger.record_mean("rollout/ep_net_pnl", infos[i]["net_pnl"])
                    self.logger.record_mean("rollout/ep_round_trips", infos[i]["round_trips"])
            return True

        def _on_training_end(self) -> None:
            pending = dict(self.model.logger.name_to_value)
            self.values = {name: float(pending[key]) for key, name in _SB3_STAT_KEYS.items() if key in pending}
            self.model.logger.dump(self.model.num_timesteps)

    return _TrainingMonitor()


def build_model(
    days: MarketDays,
    env_cfg: EnvConfig,
    reward: RewardSpec,
    ppo: PPOConfig,
    tensorboard_dir: Path | None = None,
    make_env: EnvFactory | None = None,
) -> MaskablePPO:
    """A fresh MaskablePPO on a seeded batched env (wrapped in VecMonitor for episode stats).

    `make_env` builds the family's VecEnv; without it, the intraday env on `days`.
    """
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import VecMonitor

    if make_env is None:
        from rl.envs.intraday import IntradayVecEnv

        def make_env(n_envs: int, seed: int) -> VecEnv:
            return IntradayVecEnv(days, env_cfg, reward, n_envs=n_envs, seed=seed)

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


def train_policy(
    days: MarketDays,
    env_cfg: EnvConfig,
    reward: RewardSpec,
    ppo: PPOConfig,
    out_dir: Path,
    run_meta: Mapping[str, Any] | None = None,
    tensorboard_dir: Path | None = None,
    progress_bar: bool = False,
    make_env: EnvFactory | None = None,
) -> TrainResult:
    """Train MaskablePPO on `days` and save an atomic checkpoint directory at `out_dir`.

    `out_dir` must not exist yet (checkpoints are never overwritten). `run_meta` (JSON-serialisable,
    typically `{"run_id": ..., "family_config": FamilyConfig.to_dict(), "slice": ...}`) is stored
    verbatim in meta.json. `make_env` builds the family's VecEnv (default: the intraday env on `days`).
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(
            f"checkpoint directory {out_dir.name!r} already exists; checkpoints are never overwritten"
        )
    run_meta = dict(run_meta or {})
    json.dumps(jsonable(run_meta), allow_nan=False)  # fail before training, not after, on unserialisable meta
    run_id = str(run_meta.get("run_id") or new_run_id())

    with torch_threads(ppo.torch_threads):
        model = build_model(days, env_cfg, reward, ppo, tensorboard_dir, make_env)
        callback = _stats_callback()
        start = time.perf_counter()
        model.learn(
            total_timesteps=ppo.total_timesteps,
            callback=callback,
            tb_log_name=run_id,
            progress_bar=progress_bar,
        )
        wall = time.perf_counter() - start
        values = callback.values
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
            "run_meta": jsonable(run_meta),
        }
        checkpoint = save_checkpoint(model, meta, out_dir)
        model.get_env().close()
    return TrainResult(checkpoint_dir=checkpoint, stats=stats, meta=meta)


def save_checkpoint(model: MaskablePPO, meta: Mapping[str, Any], target: Path) -> Path:
    """Write model.zip + meta.json into a temp sibling of `target`, then os.replace it into place.

    On any error the temp dir is removed and `target` does not exist; `meta` gains `model_sha256` and
    `checkpoint_id`.
    """
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"checkpoint directory {target.name!r} already exists; checkpoints are never overwritten")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model.save(tmp / MODEL_FILE)
        digest = hashlib.sha256((tmp / MODEL_FILE).read_bytes()).hexdigest()
        full = dict(meta)
        full["model_sha256"] = digest
        full["checkpoint_id"] = f"{full.get('run_id', 'run')}:{target.name}:{digest[:12]}"
        text = json.dumps(jsonable(full), indent=2, sort_keys=True, allow_nan=False)
        (tmp / META_FILE).write_text(text + "\n")
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if isinstance(meta, dict):
        meta.update({"model_sha256": digest, "checkpoint_id": full["checkpoint_id"]})
    return target


def load_checkpoint(checkpoint_dir: Path, device: str = "cpu") -> tuple[MaskablePPO, dict[str, Any]]:
    """Load a checkpoint directory; refuses a model.zip whose sha256 differs from the one in meta.json."""
    from sb3_contrib import MaskablePPO

    checkpoint_dir = Path(checkpoint_dir)
    meta_path = checkpoint_dir / META_FILE
    model_path = checkpoint_dir / MODEL_FILE
    if not meta_path.is_file() or not model_path.is_file():
        raise FileNotFoundError(f"{checkpoint_dir.name!r} is not a checkpoint (needs {MODEL_FILE} and {META_FILE})")
    meta = json.loads(meta_path.read_text())
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if meta.get("model_sha256") not in (None, digest):
        raise ValueError(f"{checkpoint_dir.name!r}: model.zip sha256 does not match meta.json (corrupt or edited)")
    model = MaskablePPO.load(model_path, device=device)
    return model, meta


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
