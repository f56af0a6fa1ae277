"""What makes each agent family different, behind one interface; everything else is shared machinery.

A family is an env, a reward YAML and a config. `rl.workflow` (dataset, audit, training, evaluation) and the
Dagster factory in `assets/family.py` only talk to a `Family`: how to turn warehouse data into arrays, build the
batched env, audit the reward, play the baselines, compute metrics and checks, and write the report. The
checkpointing, run versioning, walk-forward slicing and warehouse records are the same code for every family.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from rl.audit import AuditTarget
    from rl.baselines import Policy
    from rl.family import FamilyConfig
    from rl.report import ReportContext
    from rl.reward import RewardSpec
    from rl.train import EnvFactory
    from rl.walkforward import Slice

INTRADAY_BASE_COLUMNS = ("symbol", "session_date", "minute", "open", "close", "mean_spread")


class Family(Protocol):
    """The family-specific half of the pipeline (see the module docstring)."""

    kind: str
    checks: Mapping[str, str]  # evaluation check name -> "error" or "warn"
    summary_keys: tuple[str, ...]  # metrics shown in the evaluation asset's metadata

    def load_reward(self, path: Path) -> RewardSpec: ...
    def expected_dates(self, cfg: FamilyConfig) -> list[date]: ...
    def build_days(self, data: Any, cfg: FamilyConfig, expected: Sequence[date]) -> Any: ...
    def load_days(self, path: Path) -> Any: ...
    def env_factory(self, days: Any, cfg: FamilyConfig, reward: RewardSpec) -> EnvFactory: ...
    def audit_target(self, days: Any, cfg: FamilyConfig, reward: RewardSpec) -> AuditTarget: ...
    def evaluate(
        self, agent: Policy, held_out: Any, cfg: FamilyConfig, reward: RewardSpec, agent_name: str
    ) -> dict[str, Any]: ...
    def concat(self, name: str, results: Sequence[Any]) -> Any: ...
    def metrics(self, result: Any) -> dict[str, float]: ...
    def run_checks(self, agent_result: Any, cfg: FamilyConfig) -> dict[str, dict[str, Any]]: ...
    def episode_rows(self, result: Any, slice_name: str, checkpoint_id: str, agent: str) -> list[dict[str, Any]]: ...
    def report(
        self,
        ctx: ReportContext,
        results: Mapping[str, Mapping[str, Any]],
        checks: Mapping[str, Mapping[str, Any]],
        out_dir: Path,
        agent: str,
        slices: Sequence[Slice],
    ) -> str: ...


class IntradayFamily:
    """Intraday equities (seed 000): one (symbol, NYSE session) per episode over 1-minute features."""

    kind = "intraday"
    checks = {"action_collapse": "error", "reward_pnl_alignment": "error"}
    summary_keys = ("total_pnl", "mean_daily_pnl", "sharpe", "max_drawdown", "win_rate", "trades_per_day")

    def load_reward(self, path: Path) -> RewardSpec:
        from rl.reward import load_reward

        return load_reward(path)

    def expected_dates(self, cfg: FamilyConfig) -> list[date]:
        from market.calendar import sessions

        return sessions(cfg.data.start, cfg.data.end)

    def build_days(self, data: pl.DataFrame, cfg: FamilyConfig, expected: Sequence[date]) -> Any:
        """MarketDays from the warehouse feature frame, refusing a range with missing symbol-sessions."""
        from rl.data import MarketDays

        if not cfg.data.symbols:
            raise ValueError("the intraday family needs an explicit data.symbols list (not 'all')")
        if data.is_empty():
            raise ValueError(
                f"no features for {list(cfg.data.symbols)} between {cfg.data.start} and {cfg.data.end}: "
                "materialize features_1m for these sessions first"
            )
        present = {(s, d) for s, d in data.select("symbol", "session_date").unique().iter_rows()}
        missing = sorted(f"{s} {d.isoformat()}" for s in cfg.data.symbols for d in expected if (s, d) not in present)
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise ValueError(f"{len(missing)} symbol-sessions lack features ({shown}): materialize features_1m first")
        feature_names = tuple(c for c in data.columns if c not in INTRADAY_BASE_COLUMNS)
        return MarketDays.from_frame(data, feature_names)

    def load_days(self, path: Path) -> Any:
        from rl.data import MarketDays

        return MarketDays.load_npz(path)

    def env_factory(self, days: Any, cfg: FamilyConfig, reward: RewardSpec) -> EnvFactory:
        from rl.envs.intraday import IntradayVecEnv

        return lambda n_envs, seed: IntradayVecEnv(days, cfg.env, reward, n_envs=n_envs, seed=seed)

    def audit_target(self, days: Any, cfg: FamilyConfig, reward: RewardSpec) -> AuditTarget:
        from rl.audit import intraday_target

        return intraday_target(days, cfg.env, reward)

    def evaluate(
        self, agent: Policy, held_out: Any, cfg: FamilyConfig, reward: RewardSpec, agent_name: str
    ) -> dict[str, Any]:
        from rl.evaluate import evaluate_with_baselines

        return evaluate_with_baselines(agent, held_out, cfg.env, reward, seed=cfg.ppo.seed, agent_name=agent_name)

    def concat(self, name: str, results: Sequence[Any]) -> Any:
        from rl.evaluate import EvalResult

        return EvalResult.concat(name, results)

    def metrics(self, result: Any) -> dict[str, float]:
        from rl.metrics import policy_metrics

        return policy_metrics(result)

    def run_checks(self, agent_result: Any, cfg: FamilyConfig) -> dict[str, dict[str, Any]]:
        from rl.metrics import run_checks

        return run_checks(agent_result)

    def episode_rows(self, result: Any, slice_name: str, checkpoint_id: str, agent: str) -> list[dict[str, Any]]:
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

    def report(
        self,
        ctx: ReportContext,
        results: Mapping[str, Mapping[str, Any]],
        checks: Mapping[str, Mapping[str, Any]],
        out_dir: Path,
        agent: str,
        slices: Sequence[Slice],
    ) -> str:
        from rl.report import build_report

        return build_report(ctx, results, checks, out_dir, agent=agent, slices=slices)


class FundingFamily:
    """Funding-rate arbitrage (seeds 001, 004): two-leg cross-exchange positions over hourly UTC snapshots."""

    kind = "funding"
    checks = {"reward_pnl_alignment": "error", "action_collapse": "error", "symbol_concentration": "warn"}
    summary_keys = (
        "total_pnl",
        "mean_pnl_pct",
        "win_rate",
        "avg_hold_hours",
        "funding",
        "fees",
        "top_symbol_share",
        "reward_pnl_spearman",
    )

    def load_reward(self, path: Path) -> RewardSpec:
        from rl.funding.config import load_funding_reward

        return load_funding_reward(path)

    def expected_dates(self, cfg: FamilyConfig) -> list[date]:
        n = (cfg.data.end - cfg.data.start).days + 1
        return [cfg.data.start + timedelta(days=i) for i in range(n)]

    def build_days(self, data: tuple[pl.DataFrame, pl.DataFrame], cfg: FamilyConfig, expected: Sequence[date]) -> Any:
        """FundingDays on the hourly UTC grid of [start 00:00, end 23:00] from (rates, marks) warehouse frames."""
        from rl.funding.data import FundingDays

        rates, marks = data
        if marks.is_empty():
            raise ValueError(
                f"no mark prices between {cfg.data.start} and {cfg.data.end}: materialize raw_mark_prices first"
            )
        first = np.datetime64(cfg.data.start.isoformat(), "ns")
        last = np.datetime64(cfg.data.end.isoformat(), "ns") + np.timedelta64(23, "h")
        days = FundingDays.from_frames(rates, marks, start=first, end=last)
        covered = set(days.dates.astype(object).tolist())
        missing = [d for d in expected if d not in covered]
        if missing:
            raise ValueError(f"{len(missing)} day(s) lack funding data (first {missing[0]}): materialize them first")
        return days

    def load_days(self, path: Path) -> Any:
        from rl.funding.data import FundingDays

        return FundingDays.load_npz(path)

    def env_factory(self, days: Any, cfg: FamilyConfig, reward: RewardSpec) -> EnvFactory:
        from rl.funding.env import FundingVecEnv

        return lambda n_envs, seed: FundingVecEnv(days, cfg.env, reward, n_envs=n_envs, seed=seed)

    def audit_target(self, days: Any, cfg: FamilyConfig, reward: RewardSpec) -> AuditTarget:
        from rl.funding.audit import funding_audit_target

        return funding_audit_target(days, cfg.env, reward)

    def evaluate(
        self, agent: Policy, held_out: Any, cfg: FamilyConfig, reward: RewardSpec, agent_name: str
    ) -> dict[str, Any]:
        from rl.funding.baselines import GreedyRule
        from rl.funding.evaluate import evaluate_funding_with_baselines, evaluation_configs

        ev = cfg.evaluation
        rule = GreedyRule(
            min_apr=ev.greedy_min_apr, max_half_spreads_pct=ev.greedy_max_half_spreads_pct, exit_apr=ev.greedy_exit_apr
        )
        return evaluate_funding_with_baselines(
            agent,
            held_out,
            cfg.env,
            reward,
            evaluation_configs(cfg.env.trading),
            rule,
            stride_hours=ev.stride_hours,
            seed=cfg.ppo.seed,
            agent_name=agent_name,
        )

    def concat(self, name: str, results: Sequence[Any]) -> Any:
        from rl.funding.evaluate import FundingEvalResult

        return FundingEvalResult.concat(name, results)

    def metrics(self, result: Any) -> dict[str, float]:
        from rl.funding.metrics import funding_metrics

        return funding_metrics(result)

    def run_checks(self, agent_result: Any, cfg: FamilyConfig) -> dict[str, dict[str, Any]]:
        from rl.funding.metrics import funding_run_checks

        ev = cfg.evaluation
        return funding_run_checks(
            agent_result,
            min_rho=ev.min_reward_pnl_rho,
            max_top_share=ev.max_top_symbol_share,
            max_hhi=ev.max_symbol_hhi,
        )

    def episode_rows(self, result: Any, slice_name: str, checkpoint_id: str, agent: str) -> list[dict[str, Any]]:
        return result.to_rows(slice_name, checkpoint_id, agent)

    def report(
        self,
        ctx: ReportContext,
        results: Mapping[str, Mapping[str, Any]],
        checks: Mapping[str, Mapping[str, Any]],
        out_dir: Path,
        agent: str,
        slices: Sequence[Slice],
    ) -> str:
        from rl.funding.report import build_funding_report

        return build_funding_report(ctx, results, checks, out_dir, agent=agent, slices=slices)


FAMILIES: dict[str, Family] = {"intraday": IntradayFamily(), "funding": FundingFamily()}


def family_of(cfg: FamilyConfig) -> Family:
    """The Family implementation of a config's `kind`."""
    try:
        return FAMILIES[cfg.kind]
    except KeyError:
        raise ValueError(f"unknown family kind {cfg.kind!r}; known: {sorted(FAMILIES)}") from None
