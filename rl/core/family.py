"""An agent family's config: env rules, PPO hyperparameters, training phases, walk-forward slicing, data range,
reward file, evaluation settings, training-health thresholds and the promotion gate's threshold.

One YAML (e.g. `configs/intraday.yaml`) per family, loaded into frozen, validated dataclasses so that a typo
fails at load time and the exact resolved values can be saved with every checkpoint (`to_dict`). `kind` names
the family in the registry, which gives the env and evaluation config types; everything else is shared.

Each section has a version, the sha256 of its resolved values (`section_versions`): a comment or a reordering
changes nothing, while an edited value names exactly which stage of the pipeline must be rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

from rl.core.config import as_date, config_dir, is_int, known_keys, read_yaml
from rl.core.health import HealthConfig
from rl.core.promotion import PromotionConfig
from rl.core.registry import get_family
from rl.core.search import HpoConfig
from rl.core.train import PPOConfig
from rl.core.walkforward import WalkForwardConfig
from rl.core.warmstart import WarmStartConfig

_TOP_KEYS = (
    "name",
    "kind",
    "env",
    "ppo",
    "seeds",
    "phases",
    "walk_forward",
    "data",
    "reward",
    "evaluation",
    "health",
    "warm_start",
    "hpo",
    "promotion",
)
ALL_SYMBOLS = "all"
# Which sections each model-side stage reads: a change to one rebuilds that stage and what is downstream of it.
DATA_SECTIONS = ("data",)
TRAINING_SECTIONS = ("env", "ppo", "seeds", "warm_start", "phases", "walk_forward", "reward")
EVALUATION_SECTIONS = ("evaluation", "promotion")  # the promotion gate judges the evaluation, so it re-runs too
# The `health` section is in none of these: its thresholds are read by checks on the policy, which re-run alone.
# Nor is `hpo`: a search's result reaches the policy as an input (when `hpo.use`), so a new result retrains.


def _sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class DataRange:
    """Which sessions and traded symbols the family's dataset covers (inclusive range)."""

    start: date  # first session date
    end: date  # last session date
    symbols: tuple[str, ...]  # traded symbols; "all" (stored as ()) = every symbol the warehouse holds

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_date(self.start, "data.start"))
        object.__setattr__(self, "end", as_date(self.end, "data.end"))
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
        values = known_keys(cls, raw, where="data")
        missing = sorted({"start", "end", "symbols"} - set(values))
        if missing:
            raise ValueError(f"data: missing keys {missing}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "symbols": list(self.symbols) or "all"}


@dataclass(frozen=True)
class PhaseConfig:
    """One phase of a training curriculum: its step budget and the env settings it overrides."""

    name: str  # shown in logs, TensorBoard and the checkpoint's meta.json
    timesteps: int  # env steps of this phase
    env: Mapping[str, Any]  # env keys that differ from the family's `env` section during this phase
    validation_days: int = 0  # the family's gated phase: the last days of each training window it does not train
    # on, where its checkpoint must beat the flat baseline before the next phase starts

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"phases: a phase name must be an identifier, got {self.name!r}")
        if not is_int(self.timesteps) or self.timesteps < 1:
            raise ValueError(f"phases.{self.name}.timesteps must be a positive integer, got {self.timesteps!r}")
        if not isinstance(self.env, Mapping):
            raise ValueError(f"phases.{self.name}.env must be a mapping of env settings, got {self.env!r}")
        if not is_int(self.validation_days) or self.validation_days < 0:
            raise ValueError(
                f"phases.{self.name}.validation_days must be an integer >= 0, got {self.validation_days!r}"
            )
        object.__setattr__(self, "env", dict(self.env))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PhaseConfig:
        values = known_keys(cls, raw, where="phases")
        if "name" not in values or "timesteps" not in values:
            raise ValueError(f"phases: each phase needs name and timesteps, got {dict(raw)!r}")
        return cls(
            name=values["name"],
            timesteps=values["timesteps"],
            env=values.get("env") or {},
            validation_days=values.get("validation_days", 0),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "timesteps": self.timesteps, "env": dict(self.env)}
        if self.validation_days:
            out["validation_days"] = self.validation_days
        return out


@dataclass(frozen=True)
class FamilyConfig:
    """Everything that defines one agent family's training and evaluation, except the data itself."""

    name: str  # family name: prefixes the Dagster assets and run ids
    kind: str  # the registered family: which env, baselines, checks and report
    env: Any  # trading rules and costs: the family's env config type
    ppo: PPOConfig  # MaskablePPO hyperparameters
    walk_forward: WalkForwardConfig  # train/test slicing of the sessions
    data: DataRange  # sessions and traded symbols
    reward: str  # reward YAML path relative to the configs folder, e.g. rewards/intraday.yaml
    evaluation: Any = None  # the family's evaluation settings (None for a family without any)
    phases: tuple[PhaseConfig, ...] = ()  # a training curriculum; empty = one phase of ppo.total_timesteps
    health: HealthConfig = HealthConfig()  # thresholds of the training-health checks on the policy
    seeds: tuple[int, ...] = ()  # one policy per seed and slice; empty = ppo.seed alone
    warm_start: WarmStartConfig = WarmStartConfig()  # behaviour cloning of a baseline before PPO; off by default
    hpo: HpoConfig = HpoConfig()  # the hyperparameter search's budgets and space, and whether the policy uses it
    promotion: PromotionConfig = PromotionConfig()  # what a new policy needs to replace the promoted one

    def __post_init__(self) -> None:
        family = get_family(self.kind)
        env_type, eval_type = family.env_config, family.evaluation_config
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
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError(f"phases: names must be unique, got {names}")
        seeds = (self.seeds,) if is_int(self.seeds) else tuple(self.seeds)
        if any(not is_int(v) or v < 0 for v in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be a list of distinct non-negative integers, got {self.seeds!r}")
        object.__setattr__(self, "seeds", seeds)
        for phase in self.phases:
            self.phase_env(phase)
        gated = getattr(family, "gated_phase", None)
        if gated is not None and not 0 < self.phases[self.gate_index()].validation_days < self.walk_forward.train_days:
            raise ValueError(
                f"phases.{gated}.validation_days must be between 1 and walk_forward.train_days - 1: its checkpoint "
                "must beat the flat baseline on days it did not train on"
            )

    def gate_index(self) -> int:
        """The index of the family's gated phase (its checkpoint must pass the gate before the next phase starts);
        ValueError when the config does not declare it before another phase."""
        gated = getattr(get_family(self.kind), "gated_phase", None)
        names = [p.name for p in self.phases]
        if gated not in names[:-1]:
            raise ValueError(
                f"phases: the {self.kind} family gates its phase {gated!r}, which must be declared before the last "
                f"phase (declared: {names})"
            )
        return names.index(gated)

    def phase_env(self, phase: PhaseConfig) -> Any:
        """The env settings of `phase`: the family's `env` section with the phase's overrides, validated."""
        try:
            return type(self.env).from_dict({**self.env.to_dict(), **phase.env})
        except ValueError as exc:
            raise ValueError(f"phases.{phase.name}: {exc}") from exc

    def training_seeds(self) -> tuple[int, ...]:
        """The seeds a policy is trained with on each slice: `seeds`, or `ppo.seed` alone."""
        return self.seeds or (self.ppo.seed,)

    def training_phases(self) -> list[tuple[str, int, Any]]:
        """(name, timesteps, env settings) of each training phase; one `train` phase when none are declared."""
        if not self.phases:
            return [("train", self.ppo.total_timesteps, self.env)]
        return [(p.name, p.timesteps, self.phase_env(p)) for p in self.phases]

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
            "data": self.data.to_dict(),
            "reward": self.reward,
        }
        if self.seeds:
            out["seeds"] = list(self.seeds)
        if self.phases:
            out["phases"] = [p.to_dict() for p in self.phases]
        if self.evaluation is not None:
            out["evaluation"] = self.evaluation.to_dict()
        out["health"] = self.health.to_dict()
        out["warm_start"] = self.warm_start.to_dict()
        out["hpo"] = self.hpo.to_dict()
        out["promotion"] = self.promotion.to_dict()
        return out

    def section_versions(self) -> dict[str, str]:
        """sha256 of each resolved section (absent sections hash as null): what each stage's lineage keys on."""
        resolved = self.to_dict()
        return {section: _sha256(resolved.get(section)) for section in _TOP_KEYS}

    def version(self, sections: Sequence[str]) -> str:
        """One sha256 over the named sections' resolved values (e.g. TRAINING_SECTIONS)."""
        versions = self.section_versions()
        return _sha256({s: versions[s] for s in sections})

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FamilyConfig:
        """Validate a YAML-shaped mapping; every section refuses unknown keys."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"family config: expected a mapping, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(_TOP_KEYS))
        if unknown:
            raise ValueError(f"family config: unknown keys {unknown}; known: {list(_TOP_KEYS)}")
        missing = [k for k in ("name", "kind", "data", "reward") if k not in raw]
        if missing:
            raise ValueError(f"family config: missing keys {missing}")
        family = get_family(raw["kind"])
        eval_type = family.evaluation_config
        if eval_type is None and raw.get("evaluation") is not None:
            raise ValueError(f"a {raw['kind']} family takes no evaluation section")
        for section in ("env", "ppo", "walk_forward", "evaluation", "health", "warm_start", "hpo", "promotion"):
            if raw.get(section) is not None and not isinstance(raw[section], Mapping):
                raise ValueError(f"{section}: expected a mapping, got {type(raw[section]).__name__}")
        phases = raw.get("phases") or []
        if not isinstance(phases, list):
            raise ValueError(f"phases: expected a list of phases, got {type(phases).__name__}")
        return cls(
            name=raw["name"],
            kind=raw["kind"],
            env=family.env_config.from_dict(raw.get("env") or {}),
            ppo=PPOConfig.from_dict(raw.get("ppo") or {}),
            walk_forward=WalkForwardConfig.from_dict(raw.get("walk_forward") or {}),
            data=DataRange.from_dict(raw["data"]),
            reward=raw["reward"],
            evaluation=eval_type.from_dict(raw.get("evaluation") or {}) if eval_type is not None else None,
            phases=tuple(PhaseConfig.from_dict(p) for p in phases),
            health=HealthConfig.from_dict(raw.get("health") or {}),
            seeds=() if raw.get("seeds") is None else raw["seeds"],
            warm_start=WarmStartConfig.from_dict(raw.get("warm_start") or {}),
            hpo=HpoConfig.from_dict(raw.get("hpo") or {}),
            promotion=PromotionConfig.from_dict(raw.get("promotion") or {}),
        )


def load_family(path: str | Path) -> FamilyConfig:
    """Load and validate a family YAML; problems are ValueErrors naming the file and the key."""
    path = Path(path)
    raw = read_yaml(path, "family config")
    try:
        with config_dir(path.parent):
            return FamilyConfig.from_dict(raw)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path.name}: {exc}") from exc
