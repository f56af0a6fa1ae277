"""The family registry: a kind names the module that holds its family, imported only when first asked for.

A family is the family-specific half of the pipeline (env, accounting, baselines, evaluation, report) behind the
`Family` protocol below. Its batched env (an `rl.core.vecenv.BatchedVecEnv`) reports each env's current time index
as `get_attr("t")`, and env i of `env_factory(...)(n, seed)` plays exactly what `single_env(...)` plays after
`reset(seed=seed + i)`. The contract tests (tests/core/test_family_contract.py) hold every family to this, to
Gymnasium's checks and to no look-ahead, using the family's `synthetic_days` and `perturb_after`.

Everything else is the core's and is the same for every family: config loading, the reward audit, training,
checkpoints, walk-forward slicing, the rollout loop, run records and the Dagster assets, jobs and sensors, which
are all built from this registry. Adding a family is a folder under `rl/families/` whose `__init__` exposes
`FAMILY`, plus one line in `FAMILY_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import duckdb
    import gymnasium as gym

    from rl.core.audit import AuditTarget
    from rl.core.family import FamilyConfig
    from rl.core.policies import Policy
    from rl.core.report import ReportContext
    from rl.core.reward import RewardSpec
    from rl.core.shadow import ShadowPlay
    from rl.core.train import EnvFactory
    from rl.core.walkforward import Slice

# kind -> module whose `FAMILY` is the family; one line per family.
FAMILY_MODULES: dict[str, str] = {
    "intraday": "rl.families.intraday",
    "funding": "rl.families.funding",
    "propfirm": "rl.families.propfirm",
    "zerodte": "rl.families.zerodte",
}


class Family(Protocol):
    """What a family supplies; the core does the rest (see the module docstring)."""

    kind: str  # registry key, asset prefix and config file name (configs/<kind>.yaml)
    description: str  # one sentence: what the agent trades
    env_config: type  # frozen dataclass of the env settings, with from_dict / to_dict
    evaluation_config: type | None  # frozen dataclass of the evaluation settings, or None
    reward_components: Sequence[str]  # component names its ledger computes (what a reward YAML may weigh)
    checks: Mapping[str, str]  # evaluation check name -> "error" or "warn"
    check_descriptions: Mapping[str, str]  # evaluation check name -> one sentence: what it guards, its threshold
    summary_keys: tuple[str, ...]  # metrics shown in the evaluation asset's metadata
    episode_info_keys: tuple[str, ...]  # finished-episode info values logged to TensorBoard (net_pnl first)
    data_assets: tuple[str, ...]  # upstream warehouse asset keys the dataset reads
    data_job: str  # the job that fills those assets' partitions
    # Optional `gated_phase: str`: a curriculum phase whose checkpoints must beat the flat baseline on validation
    # days before the later phases train (a blocking check between two assets); absent = no gate.
    # Optional `teachers(days, cfg) -> {baseline name: (env -> Policy)}`: the baselines a warm start can clone.
    # Optional `shadow_warmup_days(cfg) -> int`: days before a partition its shadow account trades through first
    # (default 0: a partition's accounts start flat on it, as a session's do).

    def data_partitions(self, cfg: FamilyConfig) -> list[date]: ...
    def load_data(self, con: duckdb.DuckDBPyConnection, cfg: FamilyConfig) -> Any: ...
    def expected_dates(self, cfg: FamilyConfig) -> list[date]: ...
    def build_days(self, data: Any, cfg: FamilyConfig, expected: Sequence[date]) -> Any: ...
    def load_days(self, path: Path) -> Any: ...
    def env_factory(self, days: Any, env_cfg: Any, reward: RewardSpec) -> EnvFactory: ...
    def single_env(self, days: Any, env_cfg: Any, reward: RewardSpec) -> gym.Env: ...
    def synthetic_days(self, seed: int) -> Any: ...
    def perturb_after(self, days: Any, t: int) -> Any: ...
    def audit_target(self, days: Any, cfg: FamilyConfig, reward: RewardSpec) -> AuditTarget: ...
    def shadow(self, days: Any, cfg: FamilyConfig, reward: RewardSpec) -> ShadowPlay: ...
    def evaluate(
        self, agent: Policy, held_out: Any, cfg: FamilyConfig, reward: RewardSpec, agent_name: str
    ) -> dict[str, Any]: ...
    def concat(self, name: str, results: Sequence[Any]) -> Any: ...
    def metrics(self, result: Any) -> dict[str, float]: ...
    def run_checks(self, results: Mapping[str, Any], cfg: FamilyConfig, agent: str) -> dict[str, dict[str, Any]]: ...
    def episode_rows(self, result: Any, slice_name: str, checkpoint_id: str, agent: str) -> list[dict[str, Any]]: ...
    def report(
        self,
        ctx: ReportContext,
        results: Mapping[str, Mapping[str, Any]],
        checks: Mapping[str, Mapping[str, Any]],
        out_dir: Path,
        agent: str,
        slices: Sequence[Slice],
        cfg: FamilyConfig,
    ) -> str: ...


_registered: dict[str, Family] = {}  # families added at run time (tests, plug-ins), by kind
_loaded: dict[str, Family] = {}


def kinds() -> tuple[str, ...]:
    """Every registered kind, the built-in ones first."""
    return (*FAMILY_MODULES, *(k for k in _registered if k not in FAMILY_MODULES))


def get_family(kind: str) -> Family:
    """The family of `kind`, importing its module on first use."""
    if kind in _registered:
        return _registered[kind]
    if kind not in FAMILY_MODULES:
        raise ValueError(f"unknown family kind {kind!r}; known: {list(kinds())}")
    if kind not in _loaded:
        family = importlib.import_module(FAMILY_MODULES[kind]).FAMILY
        if family.kind != kind:
            raise ValueError(f"{FAMILY_MODULES[kind]}.FAMILY has kind {family.kind!r}, registered as {kind!r}")
        _loaded[kind] = family
    return _loaded[kind]


def family_of(cfg: FamilyConfig) -> Family:
    """The family of a config's `kind`."""
    return get_family(cfg.kind)


@contextmanager
def registered(family: Family) -> Iterator[Family]:
    """Register `family` for the duration of a block (a test family, a plug-in tried out), then remove it."""
    if family.kind in kinds():
        raise ValueError(f"family kind {family.kind!r} is already registered")
    _registered[family.kind] = family
    try:
        yield family
    finally:
        _registered.pop(family.kind, None)
