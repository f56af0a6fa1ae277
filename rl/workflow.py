"""The plain-Python steps behind every family's assets: dataset, reward audit, training, evaluation.

Each step takes values and returns a small frozen record that Dagster passes to the next asset, so the
lineage is carried by inputs, never by "the latest file on disk".
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rl.data import MarketDays
from rl.family import FamilyConfig
from rl.reward import RewardSpec
from rl.walkforward import Slice, walk_forward_slices

BASE_COLUMNS = ("symbol", "session_date", "minute", "open", "close", "mean_spread")


def new_run_id(kind: str) -> str:
    """Sortable, unique run ids: runs are keyed by them and never overwritten."""
    return f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class DatasetManifest:
    """Where a family's training arrays are, what they hold, and how they are sliced walk-forward."""

    family: str
    path: str
    data_version: str
    symbols: tuple[str, ...]
    dates: tuple[date, ...]
    feature_names: tuple[str, ...]
    slices: tuple[Slice, ...]

    def load(self) -> MarketDays:
        days = MarketDays.load_npz(self.path)
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
            "slices": {
                s.name: {
                    "train": [s.train_dates[0].isoformat(), s.train_dates[-1].isoformat()],
                    "test": [s.test_dates[0].isoformat(), s.test_dates[-1].isoformat()],
                }
                for s in self.slices
            },
        }


def build_dataset(
    frame: pl.DataFrame, cfg: FamilyConfig, out_dir: Path, expected_sessions: list[date]
) -> DatasetManifest:
    """Turn the warehouse frame into arrays named by their content hash, refusing a range with missing sessions."""
    if frame.is_empty():
        raise ValueError(
            f"no features for {list(cfg.data.symbols)} between {cfg.data.start} and {cfg.data.end}: "
            "materialize features_1m for these sessions first"
        )
    present = {(s, d) for s, d in frame.select("symbol", "session_date").unique().iter_rows()}
    missing = sorted(
        f"{s} {d.isoformat()}" for s in cfg.data.symbols for d in expected_sessions if (s, d) not in present
    )
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ValueError(f"{len(missing)} symbol-sessions lack features ({shown}): materialize features_1m first")
    feature_names = tuple(c for c in frame.columns if c not in BASE_COLUMNS)
    days = MarketDays.from_frame(frame, feature_names)
    version = days.content_hash()
    path = out_dir / f"{version[:20]}.npz"
    if not path.exists():
        days.save_npz(path)
    dates = tuple(sorted({d.astype(date) for d in days.dates}))
    return DatasetManifest(
        family=cfg.name,
        path=str(path),
        data_version=version,
        symbols=tuple(sorted({str(s) for s in days.symbols})),
        dates=dates,
        feature_names=feature_names,
        slices=tuple(walk_forward_slices(list(dates), cfg.walk_forward)),
    )


@dataclass(frozen=True)
class AuditOutcome:
    """The reward-scale audit of one reward file on a family's training days."""

    reward_name: str
    reward_sha256: str
    passed: bool
    problems: tuple[str, ...]
    report: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return {
            "reward": self.reward_name,
            "reward_sha256": self.reward_sha256,
            "passed": self.passed,
            "problems": list(self.problems),
            "audit": self.report,
        }


def audit_family(manifest: DatasetManifest, cfg: FamilyConfig, reward: RewardSpec) -> AuditOutcome:
    """Roll out random and simple policies on the first slice's training days and judge every component's scale."""
    from rl.audit import audit_reward

    days = manifest.load().select_dates(manifest.slices[0].train_dates)
    audit = audit_reward(days, cfg.env, reward, seed=cfg.ppo.seed)
    problems = tuple(audit.problems(reward.audit))
    return AuditOutcome(reward.name, reward.sha256, not problems, problems, audit.to_dict())


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

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "reward_sha256": self.reward_sha256,
            "data_version": self.data_version,
            "code_version": self.code_version,
            "checkpoints": self.checkpoints,
        }
        for slice_name, stats in self.stats.items():
            for key in ("steps_per_s", "value_loss", "explained_variance", "entropy_loss"):
                if key in stats:
                    out[f"{slice_name}/{key}"] = float(stats[key])
        return out

    def training_rows(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """One ml.training_runs row per slice: which data, reward and code made which checkpoint."""
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
                "config_json": config,
            }
            for slice_name, path in self.checkpoints.items()
        ]


def train_family(
    manifest: DatasetManifest,
    cfg: FamilyConfig,
    reward: RewardSpec,
    audit: AuditOutcome,
    checkpoints_dir: Path,
    tensorboard_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> PolicyArtifact:
    """Train one MaskablePPO per walk-forward slice on its training days only."""
    from rl.train import train_policy
    from rl.versioning import code_version

    if not audit.passed:
        raise ValueError(f"reward '{reward.name}' failed its scale audit: {'; '.join(audit.problems)}")
    if audit.reward_sha256 != reward.sha256:
        raise ValueError("the reward file changed after its audit; materialize the reward audit again")
    days = manifest.load()
    run_id = new_run_id(cfg.name)
    code = code_version()
    checkpoints: dict[str, str] = {}
    stats: dict[str, dict[str, float]] = {}
    for s in manifest.slices:
        meta = {
            "run_id": run_id,
            "slice": s.name,
            "family_config": cfg.to_dict(),
            "reward": {"name": reward.name, "sha256": reward.sha256, "spec": reward.to_dict()},
            "data_version": manifest.data_version,
            "train_dates": [d.isoformat() for d in s.train_dates],
            "test_dates": [d.isoformat() for d in s.test_dates],
            "code_version": code,
        }
        log(f"training {cfg.name} slice {s.name}: {len(s.train_dates)} sessions, {cfg.ppo.total_timesteps} steps")
        result = train_policy(
            days.select_dates(s.train_dates),
            cfg.env,
            reward,
            cfg.ppo,
            out_dir=checkpoints_dir / run_id / s.name,
            run_meta=meta,
            tensorboard_dir=tensorboard_dir / run_id / s.name if tensorboard_dir else None,
            progress_bar=sys.stderr.isatty(),
        )
        checkpoints[s.name] = str(result.checkpoint_dir)
        stats[s.name] = {k: float(v) for k, v in result.stats.items() if isinstance(v, int | float)}
        log(f"slice {s.name}: {stats[s.name].get('steps_per_s', float('nan')):.0f} env-steps/s")
    return PolicyArtifact(cfg.name, run_id, reward.name, reward.sha256, manifest.data_version, code, checkpoints, stats)


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
        for policy, values in overall.items():
            for key in (
                "total_pnl",
                "mean_daily_pnl",
                "sharpe",
                "max_drawdown",
                "win_rate",
                "trades_per_day",
            ):
                value = values.get(key)
                if value is not None and np.isfinite(value):
                    out[f"{policy}/{key}"] = float(value)
        out["checks"] = {k: bool(v["passed"]) for k, v in self.checks.items()}
        return out


def _episode_rows(result: Any, slice_name: str, checkpoint_id: str | None, agent: str) -> list[dict[str, Any]]:
    from rl.envs.intraday import ACTION_NAMES

    return [
        {
            "slice": slice_name,
            "checkpoint_id": checkpoint_id if result.name == agent else None,
            "policy": result.name,
            "policy_kind": "agent" if result.name == agent else "baseline",
            "symbol": ep.symbol,
            "session_date": ep.date,
            "reward": ep.total_reward,
            "net_pnl": ep.net_pnl,
            "gross_pnl": ep.gross_pnl,
            "commission": ep.commission,
            "spread_cost": ep.spread_cost,
            "n_trades": ep.round_trips,
            "wins": ep.wins,
            "n_steps": ep.steps,
            "done_reason": ep.done_reason,
            "action_counts_json": dict(zip(ACTION_NAMES, map(int, ep.action_counts), strict=True)),
        }
        for ep in result.episodes
    ]


def evaluate_family(
    manifest: DatasetManifest,
    artifact: PolicyArtifact,
    cfg: FamilyConfig,
    reward: RewardSpec,
    reports_dir: Path,
    agent: str = "agent",
) -> EvaluationOutcome:
    """Each slice's checkpoint and the baselines on that slice's held-out days, then metrics, checks and report."""
    from rl.evaluate import concat_results, evaluate_checkpoint
    from rl.metrics import policy_metrics, run_checks
    from rl.report import ReportContext, build_report

    if artifact.data_version != manifest.data_version:
        raise ValueError("the policy was trained on another data version than this dataset; retrain it first")
    days = manifest.load()
    run_id = new_run_id(f"{cfg.name}-eval")
    results: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for s in manifest.slices:
        checkpoint = Path(artifact.checkpoints[s.name])
        held_out = days.select_dates(s.test_dates)
        results[s.name] = evaluate_checkpoint(
            checkpoint, held_out, cfg.env, reward, seed=cfg.ppo.seed, agent_name=agent
        )
        for result in results[s.name].values():
            rows += _episode_rows(result, s.name, checkpoint.name, agent)
    policies = list(next(iter(results.values())))
    overall = {p: concat_results(p, [per[p] for per in results.values()]) for p in policies}
    metrics = {name: {p: policy_metrics(r) for p, r in per.items()} for name, per in results.items()}
    metrics["all"] = {p: policy_metrics(r) for p, r in overall.items()}
    checks = run_checks(overall[agent])
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
    report_md = build_report(ctx, results, checks, out_dir, agent=agent, slices=manifest.slices)
    config = {
        "family_config": cfg.to_dict(),
        "data_version": manifest.data_version,
        "reward_name": reward.name,
        "reward_sha256": reward.sha256,
        "code_version": artifact.code_version,
        "slices": manifest.summary()["slices"],
    }
    return EvaluationOutcome(
        run_id=run_id,
        family=cfg.name,
        policy_run_id=artifact.run_id,
        episodes=pl.DataFrame(rows, infer_schema_length=None),
        metrics=metrics,
        checks=checks,
        report_md=report_md,
        report_path=str(out_dir / "report.md"),
        config=config,
    )
