"""Declarative rewards: a YAML names raw-unit components (each family's ledger computes them), a weight and a scale.

Keeping the reward a weighted sum of named, audited components is what lets `rl.core.audit` catch a reward that is
mis-scaled by orders of magnitude (seed 000) before any training time is spent on it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

__all__ = ["AuditLimits", "RewardComponent", "RewardSpec", "combine", "load_reward"]

_TOP_KEYS = ("name", "description", "components", "audit")


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class AuditLimits:
    """Bounds a reward must meet before training (see rl/audit.py); a YAML `audit:` section overrides them."""

    max_step_p99: float = 10.0  # p99 of |total reward per step|
    max_episode_abs_mean: float = 1_000.0  # |mean episode return|, worst audit policy
    max_value_target: float = 1_000.0  # p99 of |discounted return| (what the value net must fit)
    require_fee_parity: bool = True  # fees must weigh at least as much as gross P&L when `pnl` is rewarded

    def __post_init__(self) -> None:
        for name in ("max_step_p99", "max_episode_abs_mean", "max_value_target"):
            if _finite(getattr(self, name), f"audit.{name}") <= 0:
                raise ValueError(f"audit.{name} must be > 0")
        if not isinstance(self.require_fee_parity, bool):
            raise ValueError("audit.require_fee_parity must be true or false")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> AuditLimits:
        """Build from the YAML `audit:` mapping; unknown keys raise ValueError."""
        data = dict(data or {})
        known = ("max_step_p99", "max_episode_abs_mean", "max_value_target", "require_fee_parity")
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"audit: unknown key(s) {unknown}; known: {list(known)}")
        return cls(**data)


@dataclass(frozen=True)
class RewardComponent:
    """One term of the reward: weight * scale * raw component (raw units: the family ledger's COMPONENTS)."""

    weight: float
    scale: float = 1.0

    @property
    def coefficient(self) -> float:
        """The multiplier applied to the raw component."""
        return self.weight * self.scale


@dataclass(frozen=True)
class RewardSpec:
    """A loaded reward: components by name, audit limits and the sha256 of the file it came from."""

    name: str
    description: str
    components: dict[str, RewardComponent]
    audit: AuditLimits = field(default_factory=AuditLimits)
    sha256: str = ""
    # The family's component names (its ledger's registry): always given, there is no default family.
    known: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.known:
            raise ValueError(f"reward '{self.name}': the family's component names must be given")
        if not self.components:
            raise ValueError(f"reward '{self.name}': no components")
        unknown = sorted(set(self.components) - set(self.known))
        if unknown:
            raise ValueError(f"reward '{self.name}': unknown component(s) {unknown}; known: {sorted(self.known)}")

    @cached_property
    def coefficients(self) -> tuple[tuple[str, float], ...]:
        """(component, weight * scale) pairs with a non-zero coefficient, in file order."""
        return tuple((n, c.coefficient) for n, c in self.components.items() if c.coefficient != 0.0)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], components: Iterable[str], sha256: str | None = None) -> RewardSpec:
        """Validate a YAML-shaped mapping against a family's `components`; `sha256` defaults to a hash of its
        canonical JSON."""
        known = tuple(components)
        if not isinstance(data, Mapping):
            raise ValueError(f"reward: expected a mapping at the top level, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_TOP_KEYS))
        if unknown:
            raise ValueError(f"reward: unknown top-level key(s) {unknown}; known: {list(_TOP_KEYS)}")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("reward: 'name' must be a non-empty string")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise ValueError(f"reward '{name}': 'description' must be a string")
        raw = data.get("components")
        if not isinstance(raw, Mapping) or not raw:
            raise ValueError(f"reward '{name}': 'components' must be a non-empty mapping of name -> weight/scale")
        unknown = sorted(set(map(str, raw)) - set(known))
        if unknown:
            raise ValueError(f"reward '{name}': unknown component(s) {unknown}; known: {sorted(known)}")
        components = {}
        for comp, body in raw.items():
            if not isinstance(body, Mapping) or "weight" not in body:
                raise ValueError(f"reward '{name}': component '{comp}' needs a mapping with 'weight' (and 'scale')")
            extra = sorted(set(body) - {"weight", "scale"})
            if extra:
                raise ValueError(f"reward '{name}': component '{comp}' has unknown key(s) {extra}")
            components[str(comp)] = RewardComponent(
                weight=_finite(body["weight"], f"reward '{name}': {comp}.weight"),
                scale=_finite(body.get("scale", 1.0), f"reward '{name}': {comp}.scale"),
            )
        audit = AuditLimits.from_dict(data.get("audit"))
        if sha256 is None:
            sha256 = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
        return cls(name=name, description=description, components=components, audit=audit, sha256=sha256, known=known)

    def to_dict(self) -> dict[str, Any]:
        """YAML-shaped dict plus the sha256 (what a checkpoint records)."""
        return {
            "name": self.name,
            "description": self.description,
            "components": {n: {"weight": c.weight, "scale": c.scale} for n, c in self.components.items()},
            "audit": {
                "max_step_p99": self.audit.max_step_p99,
                "max_episode_abs_mean": self.audit.max_episode_abs_mean,
                "max_value_target": self.audit.max_value_target,
                "require_fee_parity": self.audit.require_fee_parity,
            },
            "sha256": self.sha256,
        }


def load_reward(path: str | Path, components: Iterable[str]) -> RewardSpec:
    """Load and validate a reward YAML against a family's `components`; its sha256 is that of its values (canonical
    JSON), so a comment or a reordering is the same reward. Any problem
    (missing file, bad YAML, unknown name, NaN) is a ValueError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"reward file not found: {path}") from None
    except OSError as exc:
        raise ValueError(f"cannot read reward file {path}: {exc}") from exc
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ValueError(f"reward file {path.name} is not valid YAML: {exc}") from exc
    if data is None:
        raise ValueError(f"reward file {path.name} is empty")
    try:
        return RewardSpec.from_dict(data, components=components)
    except ValueError as exc:
        raise ValueError(f"{path.name}: {exc}") from exc


def combine(spec: RewardSpec, comps: Mapping[str, np.ndarray]) -> np.ndarray:
    """Total reward = sum over the spec's components of weight * scale * raw component (vectorised)."""
    total: np.ndarray | None = None
    for name, coef in spec.coefficients:
        try:
            values = comps[name]
        except KeyError:
            raise ValueError(f"component '{name}' missing from the computed components") from None
        term = coef * np.asarray(values, dtype=np.float64)
        total = term if total is None else total + term
    if total is None:
        shape = np.shape(next(iter(comps.values()))) if comps else ()
        return np.zeros(shape, dtype=np.float64)
    return total
