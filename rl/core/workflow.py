"""The plain-Python steps behind every family's assets: dataset, reward audit, training, evaluation.

Each step takes values and returns a small frozen record that Dagster passes to the next asset, so the
lineage is carried by inputs, never by "the latest file on disk". Each record names the config version it was
built with, and the next step refuses a config whose relevant sections changed since (an edit between the audit
and the training is never used silently). What differs between families (arrays, env, baselines, metrics,
checks, report) comes from the family registry; this module is the same for all of them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rl.core import intervals
from rl.core.family import DATA_SECTIONS, TRAINING_SECTIONS, FamilyConfig
from rl.core.mismatch import CHECK as MISMATCH_CHECK
from rl.core.registry import family_of, get_family
from rl.core.reward import RewardSpec
from rl.core.walkforward import Slice, walk_forward_slices
from warehouse.runs import new_run_id


def _check_version(what: str, built_with: str, cfg: FamilyConfig, sections: tuple[str, ...]) -> None:
    """Refuse a config whose `sections` differ from those `what` was built with."""
    if built_with != cfg.version(sections):
        raise ValueError(
            f"{cfg.name}.yaml's {', '.join(sections)} section(s) changed after the {what} was built; "
            f"materialize the {what} again"
        )


@dataclass(frozen=True)
class DatasetManifest:
    """Where a family's training arrays are, what they hold, and how they are sliced walk-forward."""

    family: str
    kind: str
    path: str
    data_version: str
    symbols: tuple[str, ...]
    dates: tuple[date, ...]
    feature_names: tuple[str, ...]
    config_version: str  # sha256 of the config's data section it was built from

    def load(self) -> Any:
        """The family's arrays (MarketDays, FundingDays), refused if the file no longer matches the version."""
        days = get_family(self.kind).load_days(Path(self.path))
        if days.content_hash() != self.data_version:
            raise ValueError(f"{self.path} no longer matches data version {self.data_version[:12]}")
        return days

    def summary(self) -> dict[str, Any]:
        return {
            "data_version": self.data_version,
            "symbols": list(self.symbols),
            "sessions": len(self.dates),
            "first_session": self.dates[0].isoformat(),
            "last_session": self.dates[-1].isoformat(),
            "features": len(self.feature_names),
            "config_version": self.config_version,
        }

    def slices(self, cfg: FamilyConfig) -> list[Slice]:
        """The walk-forward slices of these dates under `cfg` (the config this dataset's data section matches)."""
        _check_version("dataset", self.config_version, cfg, DATA_SECTIONS)
        return walk_forward_slices(list(self.dates), cfg.walk_forward)


def _teacher(family: Any, days: Any, cfg: FamilyConfig) -> Any:
    """The warm start's teacher (a baseline of the family, played on these training days), or None when off."""
    name = cfg.warm_start.teacher
    if name is None:
        return None
    teachers = family.teachers(days, cfg) if hasattr(family, "teachers") else {}
    if name not in teachers:
        raise ValueError(f"{cfg.name}.yaml: warm_start.teacher {name!r} is not a baseline of the {cfg.kind} family; "
                         f"known: {sorted(teachers)}")  # fmt: skip
    return teachers[name]


def partial_dir(checkpoints_dir: Path, key: str, ident: tuple[Any, ...]) -> Path:
    """Where a training of run `key` saves the partial state it resumes from after a kill (see `rl.core.resume`):
    named by a hash of everything that made it (`ident`), so a retry of the same training resumes and a training
    with any input changed starts afresh."""
    import hashlib
    import json

    from rl.core.resume import PARTIAL_DIR

    digest = hashlib.sha256(json.dumps(list(ident), sort_keys=True, default=str).encode()).hexdigest()[:16]
    return checkpoints_dir / PARTIAL_DIR / f"{key.replace('/', '-')}-{digest}"


def training_runs(cfg: FamilyConfig, slices: list[Slice]) -> list[tuple[str, Slice, int]]:
    """(run key, slice, seed) of every policy a training trains: one per slice and seed. The key is the slice's
    name with one seed (`slice_0`), and `<slice>/seed_<seed>` with several."""
    seeds = cfg.training_seeds()
    if len(seeds) == 1:
        return [(s.name, s, seeds[0]) for s in slices]
    return [(f"{s.name}/seed_{seed}", s, seed) for s in slices for seed in seeds]


def slices_summary(slices: list[Slice]) -> dict[str, Any]:
    """First and last train and test date of each slice, for metadata and records."""
    return {
        s.name: {
            "train": [s.train_dates[0].isoformat(), s.train_dates[-1].isoformat()],
            "test": [s.test_dates[0].isoformat(), s.test_dates[-1].isoformat()],
        }
        for s in slices
    }


def build_dataset(
    data: Any, cfg: FamilyConfig, out_dir: Path, expected_dates: list[date] | None = None
) -> DatasetManifest:
    """Turn warehouse data into the family's arrays, named by their content hash; a range with gaps is refused.

    `expected_dates` defaults to the family's calendar over `cfg.data` (NYSE sessions, or every UTC day).
    """
    family = family_of(cfg)
    expected = family.expected_dates(cfg) if expected_dates is None else expected_dates
    days = family.build_days(data, cfg, expected)
    version = days.content_hash()
    path = out_dir / f"{version[:20]}.npz"
    if not path.exists():
        days.save_npz(path)
    dates = tuple(sorted({d.astype(date) for d in np.asarray(days.dates).astype("datetime64[D]")}))
    return DatasetManifest(
        family=cfg.name,
        kind=cfg.kind,
        path=str(path),
        data_version=version,
        symbols=tuple(sorted({str(s) for s in days.symbols})),
        dates=dates,
        feature_names=tuple(days.feature_names),
        config_version=cfg.version(DATA_SECTIONS),
    )


@dataclass(frozen=True)
class AuditOutcome:
    """The reward-scale audit of one reward file on a family's training days."""

    reward_name: str
    reward_sha256: str
    passed: bool
    problems: tuple[str, ...]
    report: dict[str, Any]
    config_version: str  # sha256 of the config's training sections it audited under

    def summary(self) -> dict[str, Any]:
        return {
            "reward": self.reward_name,
            "reward_sha256": self.reward_sha256,
            "config_version": self.config_version,
            "passed": self.passed,
            "problems": list(self.problems),
            "audit": self.report,
        }


def audit_family(manifest: DatasetManifest, cfg: FamilyConfig, reward: RewardSpec) -> AuditOutcome:
    """Roll out random and simple policies on the first slice's training days and judge every component's scale."""
    from rl.core.audit import audit_target

    days = manifest.load().select_dates(manifest.slices(cfg)[0].train_dates)
    target = family_of(cfg).audit_target(days, cfg, reward)
    audit = audit_target(target, reward, seed=cfg.ppo.seed)
    problems = tuple(audit.problems(reward.audit))
    return AuditOutcome(
        reward.name, reward.sha256, not problems, problems, audit.to_dict(), cfg.version(TRAINING_SECTIONS)
    )


@dataclass(frozen=True)
class PolicyArtifact:
    """One training run: a checkpoint per walk-forward slice, with what made it."""

    family: str
    run_id: str
    reward_name: str
    reward_sha256: str
    data_version: str
    code_version: str
    checkpoints: dict[str, str]
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    config_version: str = ""  # sha256 of the config's training sections it was trained under
    config: dict[str, Any] = field(default_factory=dict)  # the resolved family config it was trained with
    slices: dict[str, Any] = field(default_factory=dict)  # slice name -> train and test date ranges
    episodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # slice -> how its last phase's episodes ended
    parents: dict[str, str] = field(default_factory=dict)  # slice -> the gated stage's checkpoint it continued
    gate: dict[str, Any] = field(default_factory=dict)  # the gated stage's verdict (its own, or its parent's)
    updates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # slice -> each PPO update, in order

    def health(self, cfg: FamilyConfig) -> dict[str, dict[str, Any]]:
        """The training-health checks of every slice's updates under `cfg.health` (see `rl.core.health`)."""
        from rl.core.health import training_health

        return training_health(self.updates, cfg.health)

    def with_gate(self, gate: Mapping[str, Any]) -> PolicyArtifact:
        """This artifact with its gate verdict recorded."""
        return replace(self, gate=dict(gate))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "reward_sha256": self.reward_sha256,
            "config_version": self.config_version,
            "data_version": self.data_version,
            "code_version": self.code_version,
            "checkpoints": self.checkpoints,
            "slices": self.slices,
        }
        if self.parents:
            out["parents"] = self.parents
        if self.gate:
            out["gate_passed"] = bool(self.gate.get("passed"))
        for slice_name, stats in self.stats.items():
            for key in ("steps_per_s", "value_loss", "explained_variance", "entropy_loss"):
                if key in stats:
                    out[f"{slice_name}/{key}"] = float(stats[key])
        return out

    def training_rows(self) -> list[dict[str, Any]]:
        """One ml.training_runs row per slice: which data, reward, config and code made which checkpoint."""
        return [
            {
                "run_id": self.run_id,
                "slice": slice_name,
                "family": self.family,
                "created_at": datetime.now(UTC).replace(tzinfo=None),
                "checkpoint_id": Path(path).name,
                "data_version": self.data_version,
                "reward_name": self.reward_name,
                "reward_sha256": self.reward_sha256,
                "code_version": self.code_version,
                "timesteps": int(self.stats.get(slice_name, {}).get("timesteps", 0)),
                "wall_s": self.stats.get(slice_name, {}).get("wall_s"),
                "steps_per_s": self.stats.get(slice_name, {}).get("steps_per_s"),
                "stats_json": self.stats.get(slice_name, {}),
                "config_json": self.config,
            }
            for slice_name, path in self.checkpoints.items()
        ]


@dataclass(frozen=True)
class TrainingPlan:
    """One training stage before any run trains: its id, what it continues, and the run keys it will train.

    Everything a run needs beyond this is read again from the dataset, config and reward it names, so each run can
    train in a process (or on a machine) of its own and the results still assemble into one artifact.
    """

    run_id: str
    stage: str
    code_version: str
    keys: tuple[str, ...]
    preset: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunOutcome:
    """What one (slice, seed) run left: its checkpoint folder, statistics, last episodes and PPO updates."""

    key: str
    checkpoint: str
    stats: dict[str, float]
    episodes: dict[str, Any]
    updates: list[dict[str, Any]]


def _stage_phases(cfg: FamilyConfig, stage: str) -> tuple[list, int, int]:
    """The stage's (phase plan, index of its first phase, validation days held out of training)."""
    plan = cfg.training_phases()
    if stage == "gated":
        k = cfg.gate_index()
        return plan[: k + 1], 0, cfg.phases[k].validation_days
    if stage == "rest":
        first = cfg.gate_index() + 1
        return plan[first:], first, 0
    if stage != "all":
        raise ValueError(f"stage must be all, gated or rest, got {stage!r}")
    return plan, 0, 0


def plan_training(
    manifest: DatasetManifest,
    cfg: FamilyConfig,
    reward: RewardSpec,
    audit: AuditOutcome,
    stage: str = "all",
    start: PolicyArtifact | None = None,
    preset: Mapping[str, Any] | None = None,
) -> TrainingPlan:
    """Refuse a failed or stale audit and a gate not passed, then name the runs: one per slice and seed."""
    from rl.core.versioning import code_version

    if not audit.passed:
        raise ValueError(f"reward '{reward.name}' failed its scale audit: {'; '.join(audit.problems)}")
    if audit.reward_sha256 != reward.sha256:
        raise ValueError("the reward file changed after its audit; materialize the reward audit again")
    _check_version("reward audit", audit.config_version, cfg, TRAINING_SECTIONS)
    _stage_phases(cfg, stage)
    if stage == "rest":
        if start is None or not start.gate.get("passed"):
            raise ValueError("the later phases continue a gated stage whose checkpoints passed their gate")
        _check_version("gated stage", start.config_version, cfg, TRAINING_SECTIONS)
        if preset is not None:
            raise ValueError("the later phases keep the gated stage's hyperparameter preset; pass none")
        preset = start.config.get("hpo_preset")
    keys = tuple(key for key, _, _ in training_runs(cfg, manifest.slices(cfg)))
    run_id = new_run_id(cfg.name if stage == "all" else f"{cfg.name}-{stage}")
    return TrainingPlan(run_id, stage, code_version(), keys, dict(preset) if preset else None)


def train_run(
    plan: TrainingPlan,
    key: str,
    manifest: DatasetManifest,
    cfg: FamilyConfig,
    reward: RewardSpec,
    audit: AuditOutcome,
    checkpoints_dir: Path,
    tensorboard_dir: Path | None = None,
    log: Callable[[str], None] = print,
    start: PolicyArtifact | None = None,
    days: Any = None,
) -> RunOutcome:
    """Train the plan's run `key` (one slice and seed) through the stage's phases on its training days only;
    `days` is the loaded dataset when the caller has it already."""
    from rl.core.train import TrainPhase, train_policy

    if audit.reward_sha256 != reward.sha256:  # each run reads the files again: refuse an edit since the plan
        raise ValueError("the reward file changed after its audit; materialize the reward audit again")
    _check_version("reward audit", audit.config_version, cfg, TRAINING_SECTIONS)
    family = family_of(cfg)
    runs = {k: (s, seed) for k, s, seed in training_runs(cfg, manifest.slices(cfg))}
    if key not in runs or key not in plan.keys:
        raise ValueError(f"{key!r} is not a run of training {plan.run_id}; its runs: {', '.join(plan.keys)}")
    s, seed = runs[key]
    phase_plan, first, holdout = _stage_phases(cfg, plan.stage)
    preset, code, stage = plan.preset, plan.code_version, plan.stage
    meta = {
        "run_id": plan.run_id,
        "slice": s.name,
        "seed": seed,
        "family_config": cfg.to_dict(),
        "config_version": audit.config_version,
        "reward": {"name": reward.name, "sha256": reward.sha256, "spec": reward.to_dict()},
        "data_version": manifest.data_version,
        "train_dates": [d.isoformat() for d in s.train_dates],
        "test_dates": [d.isoformat() for d in s.test_dates],
        "code_version": code,
        "stage": stage,
    }
    if preset:
        meta["hpo_preset"] = dict(preset)
    dates = s.train_dates[: len(s.train_dates) - holdout]
    if holdout:
        meta["validation_dates"] = [d.isoformat() for d in s.train_dates[-holdout:]]
    if start is not None:
        meta["parent"] = {"run_id": start.run_id, "checkpoint": Path(start.checkpoints[key]).name}
        meta["gate"] = start.gate
    train_days = (days if days is not None else manifest.load()).select_dates(dates)
    teacher = _teacher(family, train_days, cfg) if start is None else None
    phases = [
        TrainPhase(name, steps, family.env_factory(train_days, env_cfg, reward)) for name, steps, env_cfg in phase_plan
    ]
    total = sum(p.timesteps for p in phases)
    log(f"training {cfg.name} {key} (seed {seed}): {len(dates)} days, {total:,} steps in {len(phases)} phase(s)")
    parent = Path(start.checkpoints[key]).name if start is not None else None
    ident = (cfg.name, stage, key, seed, audit.config_version, manifest.data_version, reward.sha256, code, parent)
    result = train_policy(
        train_days,
        cfg.env,
        reward,
        replace(cfg.ppo, **{**dict(preset or {}), "seed": seed}),
        out_dir=checkpoints_dir / plan.run_id / key,
        partial_dir=partial_dir(checkpoints_dir, key, ident),
        warm_start=(cfg.warm_start, teacher) if teacher is not None else None,
        phases=phases,
        run_meta=meta,
        tensorboard_dir=tensorboard_dir / plan.run_id / key if tensorboard_dir else None,
        progress_bar=sys.stderr.isatty(),
        log=lambda line, name=key: log(f"{cfg.name} {name}, {line}"),
        info_keys=family.episode_info_keys,
        init_from=Path(start.checkpoints[key]) if start is not None else None,
        phase_offset=first,
    )
    stats = {k: float(v) for k, v in result.stats.items() if isinstance(v, int | float)}
    log(f"{key}: {stats.get('steps_per_s', float('nan')):,.0f} env-steps/s")
    return RunOutcome(
        key,
        str(result.checkpoint_dir),
        stats,
        dict(result.phases[-1].get("episodes", {})) if result.phases else {},
        [{"phase": p["name"], **u} for p in result.phases for u in p.get("updates", [])],
    )


def assemble_policy(
    plan: TrainingPlan,
    outcomes: list[RunOutcome],
    manifest: DatasetManifest,
    cfg: FamilyConfig,
    reward: RewardSpec,
    audit: AuditOutcome,
    start: PolicyArtifact | None = None,
) -> PolicyArtifact:
    """The stage's artifact from every run's outcome, in the plan's order; a missing or foreign run is refused."""
    by_key = {o.key: o for o in outcomes}
    if sorted(by_key) != sorted(plan.keys) or len(outcomes) != len(plan.keys):
        raise ValueError(f"training {plan.run_id} expected runs {list(plan.keys)}, got {[o.key for o in outcomes]}")
    ordered = [by_key[k] for k in plan.keys]
    return PolicyArtifact(
        cfg.name,
        plan.run_id,
        reward.name,
        reward.sha256,
        manifest.data_version,
        plan.code_version,
        {o.key: o.checkpoint for o in ordered},
        {o.key: o.stats for o in ordered},
        config_version=audit.config_version,
        config={**cfg.to_dict(), **({"hpo_preset": dict(plan.preset)} if plan.preset else {})},
        slices=slices_summary(manifest.slices(cfg)),
        episodes={o.key: o.episodes for o in ordered},
        parents={k: str(v) for k, v in start.checkpoints.items()} if start is not None else {},
        gate=start.gate if start is not None else {},
        updates={o.key: o.updates for o in ordered},
    )


def train_family(
    manifest: DatasetManifest,
    cfg: FamilyConfig,
    reward: RewardSpec,
    audit: AuditOutcome,
    checkpoints_dir: Path,
    tensorboard_dir: Path | None = None,
    log: Callable[[str], None] = print,
    stage: str = "all",
    start: PolicyArtifact | None = None,
    preset: Mapping[str, Any] | None = None,
) -> PolicyArtifact:
    """Train one MaskablePPO per walk-forward slice on its training days only, through the config's phases, one
    run after another in this process (a fanned-out training runs the same three steps as separate steps).

    `stage` splits a curriculum at the family's gated phase: "gated" trains the phases up to it on each training
    window without its last `validation_days` (where `gate_family` judges the checkpoints); "rest" continues the
    `start` artifact's checkpoints through the phases after it, on the whole window; "all" runs every phase.
    `preset` (a search's best ppo settings, see `rl.core.search`) replaces those ppo values in every training and
    is recorded with every checkpoint; "rest" keeps the one its `start` was trained with.
    """
    plan = plan_training(manifest, cfg, reward, audit, stage, start, preset)
    days = manifest.load()
    outcomes = [
        train_run(plan, key, manifest, cfg, reward, audit, checkpoints_dir, tensorboard_dir, log, start, days)
        for key in plan.keys
    ]
    return assemble_policy(plan, outcomes, manifest, cfg, reward, audit, start)


def search_family(
    manifest: DatasetManifest,
    cfg: FamilyConfig,
    reward: RewardSpec,
    audit: AuditOutcome,
    home: Path,
    presets_dir: Path,
    log: Callable[[str], None] = print,
    max_trials: int | None = None,
) -> Any:
    """The family's hyperparameter search (`rl.core.search`) on its slices' validation days, after a passed audit;
    `max_trials` caps the trials run by this call (one per step when fanned out, 0 to read the finished study)."""
    from rl.core.search import run_search

    if not audit.passed or audit.reward_sha256 != reward.sha256:
        raise ValueError(f"reward '{reward.name}' has no passed audit of its current file; materialize the audit again")
    _check_version("reward audit", audit.config_version, cfg, TRAINING_SECTIONS)
    days, slices = manifest.load(), manifest.slices(cfg)
    return run_search(family_of(cfg), days, cfg, reward, slices, home, presets_dir, log, max_trials)


def gate_family(manifest: DatasetManifest, artifact: PolicyArtifact, cfg: FamilyConfig, reward: RewardSpec) -> dict:
    """The gated stage's check: on every slice, its checkpoint must beat the flat baseline's net P&L on that slice's
    validation days (the end of its training window, which the stage did not train on), playing the gated phase's
    own kind of episode. With several seeds, every seed's checkpoint must."""
    from rl.core.evaluate import load_agent
    from rl.core.train import torch_threads

    _check_version("gated stage", artifact.config_version, cfg, TRAINING_SECTIONS)
    family = family_of(cfg)
    k = cfg.gate_index()
    phase = cfg.phases[k]
    phase_cfg = replace(cfg, env=cfg.phase_env(phase))
    days = manifest.load()
    per_slice: dict[str, dict[str, float]] = {}
    for key, s, _ in training_runs(cfg, manifest.slices(cfg)):
        validation = days.select_dates(s.train_dates[-phase.validation_days :])
        policy, threads = load_agent(Path(artifact.checkpoints[key]), validation.dates)
        with torch_threads(threads):
            results = family.evaluate(policy, validation, phase_cfg, reward, "agent")
        if "flat" not in results:
            raise ValueError(f"the {cfg.kind} family's evaluation has no flat baseline to gate against")
        per_slice[key] = {p: family.metrics(results[p])["total_pnl"] for p in ("agent", "flat")}
    passed = all(v["agent"] > v["flat"] for v in per_slice.values())
    margin = min(v["agent"] - v["flat"] for v in per_slice.values())
    return {
        "passed": passed,
        "value": margin,
        "threshold": "> 0 on every slice",
        "detail": "; ".join(f"{n}: agent {v['agent']:+,.0f} vs flat {v['flat']:+,.0f}" for n, v in per_slice.items())
        + f" (net P&L over the last {phase.validation_days} training days, phase {phase.name})",
        "slices": per_slice,
        "phase": phase.name,
    }


def _mismatch(artifact: PolicyArtifact, rows: list[dict[str, Any]], cfg: FamilyConfig, agent: str) -> dict[str, Any]:
    """The train/eval mismatch check over all slices: training's last phase against the agent's evaluation."""
    from rl.core.mismatch import episode_mismatch, episode_summary, merge

    mine = [r for r in rows if r["policy"] == agent]
    evaluation = episode_summary([str(r.get("done_reason") or "") for r in mine], [int(r["n_steps"]) for r in mine])
    training = merge(list(artifact.episodes.values())) if artifact.episodes else None
    settings = cfg.evaluation
    return episode_mismatch(
        training,
        evaluation,
        float(getattr(settings, "mismatch_share", 0.5)),
        float(getattr(settings, "rare_share", 0.05)),
    )


@dataclass(frozen=True)
class EvaluationOutcome:
    """A run-versioned walk-forward evaluation: episodes of the agent and baselines, metrics, checks and report."""

    run_id: str
    family: str
    policy_run_id: str
    episodes: pl.DataFrame
    metrics: dict[str, Any]
    checks: dict[str, dict[str, Any]]
    report_md: str
    report_path: str
    config: dict[str, Any]
    intervals: dict[str, Any] = field(default_factory=dict)  # the seeds x slices IQM comparison (rl.core.intervals)

    def record(self) -> dict[str, Any]:
        """The rows for the warehouse's insert-only ml.evaluation_* tables."""
        run = {
            "run_id": self.run_id,
            "family": self.family,
            "created_at": datetime.now(UTC).replace(tzinfo=None),
            "training_run_id": self.policy_run_id,
            "data_version": self.config["data_version"],
            "reward_name": self.config["reward_name"],
            "reward_sha256": self.config["reward_sha256"],
            "code_version": self.config["code_version"],
            "report_path": self.report_path,
            "summary_json": self.summary(),
            "config_json": self.config,
        }
        metrics = [
            {"slice": slice_name, "policy": policy, "metric": metric, "value": float(value)}
            for slice_name, per_policy in self.metrics.items()
            for policy, values in per_policy.items()
            for metric, value in values.items()
        ]
        return {"run": run, "episodes": self.episodes.to_dicts(), "metrics": metrics}

    def summary(self) -> dict[str, Any]:
        overall = self.metrics.get("all", {})
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "policy_run_id": self.policy_run_id,
            "report_path": self.report_path,
        }
        keys = get_family(self.config["family_config"]["kind"]).summary_keys
        for policy, values in overall.items():
            for key in keys:
                value = values.get(key)
                if value is not None and np.isfinite(value):
                    out[f"{policy}/{key}"] = float(value)
        if self.intervals:
            mine = self.intervals["agent"]
            out.update({"agent/iqm_day_pnl": mine["iqm"], "agent/iqm_low": mine["low"], "agent/iqm_high": mine["high"]})
            out["agent_run_scores"] = self.intervals["agent_runs"]  # per slice, one per seed: what promotion compares
        out["checks"] = {k: bool(v["passed"]) for k, v in self.checks.items()}
        return out


def evaluate_family(
    manifest: DatasetManifest,
    artifact: PolicyArtifact,
    cfg: FamilyConfig,
    reward: RewardSpec,
    reports_dir: Path,
    agent: str = "agent",
) -> EvaluationOutcome:
    """Each slice's checkpoint and the baselines on that slice's held-out days, then metrics, checks and report."""
    from rl.core.evaluate import load_agent
    from rl.core.report import REPORT_FILE, ReportContext, write_report
    from rl.core.train import torch_threads

    if artifact.data_version != manifest.data_version:
        raise ValueError("the policy was trained on another data version than this dataset; retrain it first")
    if artifact.reward_sha256 != reward.sha256:
        raise ValueError("the reward file changed after the policy was trained; materialize the policy again")
    _check_version("policy", artifact.config_version, cfg, TRAINING_SECTIONS)
    family = family_of(cfg)
    slices = manifest.slices(cfg)
    days = manifest.load()
    run_id = new_run_id(f"{cfg.name}-eval")
    results: dict[str, dict[str, Any]] = {}  # slice -> policy -> result; the agent's pools every seed
    runs: dict[str, list[Any]] = {}  # slice -> each seed's agent result
    seed_metrics: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for key, s, _ in training_runs(cfg, slices):
        held_out = days.select_dates(s.test_dates)
        policy, threads = load_agent(Path(artifact.checkpoints[key]), held_out.dates)
        with torch_threads(threads):
            played = family.evaluate(policy, held_out, cfg, reward, agent)
        first = s.name not in results
        results.setdefault(s.name, played)  # the baselines play the same episodes under every seed
        runs.setdefault(s.name, []).append(played[agent])
        if key != s.name:
            seed_metrics[key] = {agent: family.metrics(played[agent])}
        for result in played.values():  # an agent's rows are stored under its run key (the slice and seed)
            if result.name == agent:
                rows += family.episode_rows(result, key, key, agent)
            elif first:
                rows += family.episode_rows(result, s.name, key, agent)
    for name, per_seed in runs.items():
        results[name] = {
            agent: family.concat(agent, per_seed),
            **{p: r for p, r in results[name].items() if p != agent},
        }
    policies = list(next(iter(results.values())))
    overall = {p: family.concat(p, [per[p] for per in results.values()]) for p in policies}
    metrics = {name: {p: family.metrics(r) for p, r in per.items()} for name, per in results.items()}
    metrics.update(seed_metrics)
    metrics["all"] = {p: family.metrics(r) for p, r in overall.items()}
    checks = family.run_checks(overall, cfg, agent)
    checks[MISMATCH_CHECK] = _mismatch(artifact, rows, cfg, agent)
    comparison = _seed_comparison(family, results, runs, slices, agent, cfg.ppo.seed)
    checks[intervals.CHECK] = intervals.beats_baselines(comparison)
    ctx = ReportContext(
        family=cfg.name,
        run_id=run_id,
        policy_run_id=artifact.run_id,
        checkpoint_ids={k: Path(v).name for k, v in artifact.checkpoints.items()},
        reward_name=reward.name,
        reward_sha256=reward.sha256,
        data_version=manifest.data_version,
        code_version=artifact.code_version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    out_dir = reports_dir / run_id
    report_md = family.report(ctx, results, checks, out_dir, agent, slices, cfg)
    report_md = write_report(out_dir, [report_md, "", *intervals.report_lines(comparison)])
    config = {
        "family_config": cfg.to_dict(),
        "data_version": manifest.data_version,
        "reward_name": reward.name,
        "reward_sha256": reward.sha256,
        "code_version": artifact.code_version,
        "config_version": artifact.config_version,
        "slices": slices_summary(slices),
    }
    return EvaluationOutcome(
        run_id=run_id,
        family=cfg.name,
        policy_run_id=artifact.run_id,
        episodes=pl.DataFrame(rows, infer_schema_length=None),
        metrics=metrics,
        checks=checks,
        report_md=report_md,
        report_path=str(out_dir / REPORT_FILE),
        config=config,
        intervals=comparison,
    )


def _seed_comparison(
    family: Any,
    results: Mapping[str, Mapping[str, Any]],
    runs: Mapping[str, list[Any]],
    slices: list[Slice],
    agent: str,
    seed: int,
) -> dict[str, Any]:
    """The agent's runs (one per seed) and each baseline's against it: IQM and intervals of each run's mean net
    P&L per held-out day (every symbol and episode of the day), slices as strata."""
    days = {s.name: len(s.test_dates) for s in slices}

    def score(slice_name: str, result: Any) -> float:
        return intervals.day_score(family.metrics(result), days[slice_name])

    mine = {name: [score(name, r) for r in per_seed] for name, per_seed in runs.items()}
    baselines = [p for p in next(iter(results.values())) if p != agent]
    theirs = {p: {name: [score(name, per[p])] for name, per in results.items()} for p in baselines}
    return intervals.seed_comparison(mine, theirs, seed=seed)


def promotion_candidate(artifact: PolicyArtifact, evaluation: Mapping[str, Any]) -> Any:
    """A trained and evaluated policy as the gate and the shadow see it (a `PromotedPolicy`), with its held-out IQM,
    interval and run scores."""
    from rl.core.promotion import PromotedPolicy

    figures = {"evaluation_run_id": evaluation["run_id"], "runs": evaluation["agent_run_scores"]}
    figures |= {k: evaluation.get(f"agent/iqm_{s}") for k, s in (("iqm", "day_pnl"), ("low", "low"), ("high", "high"))}
    return PromotedPolicy(artifact.run_id, dict(artifact.checkpoints), dict(artifact.config), dict(artifact.slices),
                          figures)  # fmt: skip


def incumbent_scores(
    incumbent: Any, manifest: DatasetManifest, cfg: FamilyConfig, reward: RewardSpec
) -> tuple[dict[str, list[float]] | None, str]:
    """The promoted policy's runs played on this dataset's held-out days under `cfg` (one score per checkpoint,
    as the evaluation scores the candidate's), or None and why it cannot be judged there."""
    from rl.core.evaluate import load_agent
    from rl.core.train import torch_threads

    family = family_of(cfg)
    days = manifest.load()
    out: dict[str, list[float]] = {}
    for s in manifest.slices(cfg):
        keys = incumbent.slice_keys(s.name)
        if not keys:
            return None, f"the promoted policy {incumbent.run_id} has no checkpoint for {s.name}"
        held_out = days.select_dates(s.test_dates)
        for key in keys:
            try:
                policy, threads = load_agent(Path(incumbent.checkpoints[key]), held_out.dates)
                with torch_threads(threads):
                    played = family.evaluate(policy, held_out, cfg, reward, "agent")
            except (ValueError, RuntimeError, FileNotFoundError) as exc:
                return None, f"the promoted policy {incumbent.run_id} cannot play {s.name}'s held-out days ({exc})"
            out.setdefault(s.name, []).append(intervals.day_score(family.metrics(played["agent"]), len(s.test_dates)))
    return out, ""


def promote_family(
    manifest: DatasetManifest,
    artifact: PolicyArtifact,
    evaluation: Mapping[str, Any],
    cfg: FamilyConfig,
    reward: RewardSpec,
    current: Any | None,
) -> Any:
    """The promotion gate (`rl.core.promotion`): the candidate's held-out runs against the promoted policy's
    (`current`, a Promotion's policy, or None), replayed on the same days under the same config."""
    from rl.core.promotion import NOT_TRADING, Promotion, decide

    if evaluation.get("policy_run_id") != artifact.run_id:
        raise ValueError("the evaluation judged another policy than this one; materialize the evaluation again")
    candidate = promotion_candidate(artifact, evaluation)
    runs = {k: list(v) for k, v in evaluation["agent_run_scores"].items()}
    incumbent, note = None, ""
    if current is not None and current.run_id == artifact.run_id:
        evidence = decide(runs, None, cfg.promotion, NOT_TRADING, "re-judged: this policy is already the promoted one")
        evidence |= {"promoted": True, "detail": f"already the promoted policy; {evidence['measured']}"}
    else:
        if current is not None:
            incumbent, note = incumbent_scores(current, manifest, cfg, reward)
        name = f"promoted {current.run_id}" if incumbent is not None else NOT_TRADING
        evidence = decide(runs, incumbent, cfg.promotion, name, note)
    promoted = bool(evidence["promoted"])
    return Promotion(
        run_id=new_run_id(f"{cfg.name}-promotion"),
        family=cfg.name,
        candidate_run_id=artifact.run_id,
        evaluation_run_id=evaluation.get("run_id"),
        incumbent_run_id=current.run_id if current is not None else None,
        promoted=promoted,
        policy=candidate if promoted else current,
        evidence=evidence,
    )


def shadow_config(policy: Any, day: date) -> FamilyConfig:
    """The promoted policy's own config over the data window its shadow of partition `day` plays (the family's
    `shadow_warmup_days` before it, and the day)."""
    from datetime import timedelta

    raw = {k: v for k, v in policy.config.items() if k != "hpo_preset"}
    cfg = FamilyConfig.from_dict(raw)
    family = family_of(cfg)
    warmup = int(family.shadow_warmup_days(cfg)) if hasattr(family, "shadow_warmup_days") else 0
    return replace(cfg, data=replace(cfg.data, start=day - timedelta(days=warmup), end=day))


def shadow_family(policy: Any, data: Any, cfg: FamilyConfig, reward: RewardSpec, day: date) -> pl.DataFrame:
    """Every decision the promoted policy's latest-slice checkpoints (each seed) take on partition `day`, from
    warehouse `data` loaded for `cfg` (a `shadow_config`); refuses days a checkpoint trained on."""
    from rl.core import shadow
    from rl.core.evaluate import load_model
    from rl.core.train import torch_threads

    family = family_of(cfg)
    days = family.build_days(data, cfg, family.expected_dates(cfg))
    frames = []
    for key in policy.latest_keys():
        model, threads = load_model(Path(policy.checkpoints[key]), np.asarray(days.dates))
        with torch_threads(threads):
            frames.append(shadow.play(model, family.shadow(days, cfg, reward), key))
    return pl.concat(frames, how="vertical")
