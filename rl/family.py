"""An agent family's config: env rules, PPO hyperparameters, walk-forward slicing, data range and reward file.

One YAML (e.g. `configs/intraday.yaml`) per family, loaded into frozen, validated dataclasses so that a typo
fails at load time and the exact resolved values can be saved with every checkpoint (`to_dict`). `kind` picks
the env and evaluation config types (`intraday`, `funding`); everything else is shared by every family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from rl.config import EnvConfig
from rl.train import PPOConfig
from rl.walkforward import WalkForwardConfig

_TOP_KEYS = ("name", "kind", "env", "ppo", "walk_forward", "data", "reward", "evaluation")
ALL_SYMBOLS = "all"


def _config_types(kind: str) -> tuple[type, type | None]:
    """(env config type, evaluation config type or None) of a family kind."""
    if kind == "intraday":
        return EnvConfig, None
    if kind == "funding":
        from rl.funding.config import FundingEnvConfig, FundingEvaluationConfig

        return FundingEnvConfig, FundingEvaluationConfig
    raise ValueError(f"kind must be one of ['funding', 'intraday'], got {kind!r}")


def _as_date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{where} must be a date like 2024-01-02, got {value!r}")


@dataclass(frozen=True)
class DataRange:
    """Which sessions and traded symbols the family's dataset covers (inclusive range)."""

    start: date  # first session date
    end: date  # last session date
    symbols: tuple[str, ...]  # traded symbols; "all" (stored as ()) = every symbol the warehouse holds

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _as_date(self.start, "data.start"))
        object.__setattr__(self, "end", _as_date(self.end, "data.end"))
        if self.end < self.start:
            raise ValueError(f"data.end ({self.end}) is before data.start ({self.start})")
        if self.symbols == ALL_SYMBOLS or self.symbols == ():
            object.__setattr__(self, "symbols", ())
            return
        symbols = (self.symbols,) if isinstance(self.symbols, str) else tuple(self.symbols)
        if not symbols or any(not isinstance(s, str) or not s for s in symbols):
            raise ValueError(f"data.symbols must be 'all' or a non-empty list of symbol names, got {self.symbols!r}")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"data.symbols has duplicates: {list(symbols)}")
        object.__setattr__(self, "symbols", symbols)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DataRange:
        """Build from the YAML `data:` mapping; unknown or missing keys raise ValueError."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"data: expected a mapping, got {type(raw).__name__}")
        known = {"start", "end", "symbols"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"data: unknown keys {unknown}; known: {sorted(known)}")
        missing = sorted(known - set(raw))
        if missing:
            raise ValueError(f"data: missing keys {missing}")
        return cls(start=raw["start"], end=raw["end"], symbols=raw["symbols"])


@dataclass(frozen=True)
class FamilyConfig:
    """Everything that defines one agent family's training and evaluation, except the data itself."""

    name: str  # family name: prefixes the Dagster assets and run ids
    env: Any  # trading rules and costs: EnvConfig (intraday) or FundingEnvConfig (funding)
    ppo: PPOConfig  # MaskablePPO hyperparameters
    walk_forward: WalkForwardConfig  # train/test slicing of the sessions
    data: DataRange  # sessions and traded symbols
    reward: str  # reward YAML path relative to the configs folder, e.g. rewards/intraday.yaml
    kind: str = "intraday"  # which env, baselines and checks: intraday or funding
    evaluation: Any = None  # family-specific evaluation settings (funding: FundingEvaluationConfig)

    def __post_init__(self) -> None:
        env_type, eval_type = _config_types(self.kind)
        if not isinstance(self.env, env_type):
            raise ValueError(f"env of a {self.kind} family must be a {env_type.__name__}")
        if eval_type is not None and self.evaluation is None:
            object.__setattr__(self, "evaluation", eval_type())
        if eval_type is None and self.evaluation is not None:
            raise ValueError(f"a {self.kind} family takes no evaluation section")
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"family name must be an identifier (used in asset keys), got {self.name!r}")
        reward = PurePosixPath(str(self.reward))
        if (
            not str(self.reward)
            or reward.is_absolute()
            or ".." in reward.parts
            or reward.suffix not in (".yaml", ".yml")
        ):
            raise ValueError(f"reward must be a relative .yaml path inside the configs folder, got {self.reward!r}")

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain YAML/JSON values (saved with checkpoints and evaluation runs)."""
        out = {
            "name": self.name,
            "kind": self.kind,
            "env": self.env.to_dict(),
            "ppo": self.ppo.to_dict(),
            "walk_forward": {
                "train_days": self.walk_forward.train_days,
                "test_days": self.walk_forward.test_days,
                "slices": self.walk_forward.slices,
                "step_days": self.walk_forward.step_days,
            },
            "data": {
                "start": self.data.start.isoformat(),
                "end": self.data.end.isoformat(),
                "symbols": list(self.data.symbols) or ALL_SYMBOLS,
            },
            "reward": self.reward,
        }
        if self.evaluation is not None:
            out["evaluation"] = self.evaluation.to_dict()
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FamilyConfig:
        """Validate a YAML-shaped mapping; every section refuses unknown keys."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"family config: expected a mapping, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(_TOP_KEYS))
        if unknown:
            raise ValueError(f"family config: unknown keys {unknown}; known: {list(_TOP_KEYS)}")
        missing = [k for k in ("name", "data", "reward") if k not in raw]
        if missing:
            raise ValueError(f"family config: missing keys {missing}")
        kind = raw.get("kind", "intraday")
        env_type, eval_type = _config_types(kind)
        if eval_type is None and raw.get("evaluation") is not None:
            raise ValueError(f"a {kind} family takes no evaluation section")
        for section in ("env", "ppo", "walk_forward", "evaluation"):
            if raw.get(section) is not None and not isinstance(raw[section], Mapping):
                raise ValueError(f"{section}: expected a mapping, got {type(raw[section]).__name__}")
        return cls(
            name=raw["name"],
            kind=kind,
            env=env_type.from_dict(raw.get("env") or {}),
            ppo=PPOConfig.from_dict(raw.get("ppo") or {}),
            walk_forward=WalkForwardConfig.from_dict(raw.get("walk_forward") or {}),
            data=DataRange.from_dict(raw["data"]),
            reward=raw["reward"],
            evaluation=eval_type.from_dict(raw.get("evaluation") or {}) if eval_type is not None else None,
        )


def load_family(path: str | Path) -> FamilyConfig:
    """Load and validate a family YAML; problems are ValueErrors naming the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"family config not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path.name} is not valid YAML: {exc}") from exc
    if raw is None:
        raise ValueError(f"{path.name} is empty")
    try:
        return FamilyConfig.from_dict(raw)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path.name}: {exc}") from exc
