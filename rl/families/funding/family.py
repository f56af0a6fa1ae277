"""Funding-rate arbitrage (seeds 001, 004): two-leg cross-exchange positions over hourly UTC snapshots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from rl.families.funding.accounting import COMPONENTS
from rl.families.funding.config import FundingEnvConfig, FundingEvaluationConfig

if TYPE_CHECKING:
    import duckdb

    from rl.core.audit import AuditTarget
    from rl.core.family import FamilyConfig
    from rl.core.policies import Policy
    from rl.core.report import ReportContext
    from rl.core.reward import RewardSpec
    from rl.core.train import EnvFactory
    from rl.core.walkforward import Slice
    from rl.families.funding.data import FundingDays


class FundingFamily:
    """Funding-rate arbitrage: long one exchange's perpetual, short another's, collecting the funding spread."""

    kind = "funding"
    description = "Funding-rate arbitrage: two-leg cross-exchange perpetual positions, rebalanced hourly."
    env_config = FundingEnvConfig
    evaluation_config = FundingEvaluationConfig
    reward_components = tuple(COMPONENTS)
    checks = {"reward_pnl_alignment": "error", "action_collapse": "error", "symbol_concentration": "warn"}
    check_descriptions = {
        "reward_pnl_alignment": "Fails when Spearman(episode reward, episode net P&L) is below "
        "evaluation.min_reward_pnl_rho (0), or the total reward is positive while net P&L is negative (seed 004).",
        "action_collapse": "Fails when no position is open after more than 95% of the agent's held-out decisions "
        "(the never-trade collapse).",
        "symbol_concentration": "Warns when one symbol takes more than evaluation.max_top_symbol_share (60%) of "
        "entries or their HHI exceeds evaluation.max_symbol_hhi (0.5) (seed 004's one-symbol bonus farming).",
    }
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
    episode_info_keys = ("net_pnl",)
    data_assets = ("raw_funding_rates", "raw_mark_prices")
    data_job = "funding_data_job"

    def data_partitions(self, cfg: FamilyConfig) -> list[date]:
        """Every UTC day of the range, plus the days before it whose rates are still the latest at hour 0."""
        from warehouse.funding import RATE_LOOKBACK_DAYS

        first = cfg.data.start - timedelta(days=RATE_LOOKBACK_DAYS)
        return [first + timedelta(days=i) for i in range((cfg.data.end - first).days + 1)]

    def load_data(self, con: duckdb.DuckDBPyConnection, cfg: FamilyConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
        from warehouse.funding import load_funding_frames

        return load_funding_frames(con, cfg.data.start, cfg.data.end, cfg.data.symbols or None)

    def expected_dates(self, cfg: FamilyConfig) -> list[date]:
        n = (cfg.data.end - cfg.data.start).days + 1
        return [cfg.data.start + timedelta(days=i) for i in range(n)]

    def build_days(
        self, data: tuple[pl.DataFrame, pl.DataFrame], cfg: FamilyConfig, expected: Sequence[date]
    ) -> FundingDays:
        """FundingDays on the hourly UTC grid of [start 00:00, end 23:00] from (rates, marks) warehouse frames."""
        from rl.families.funding.data import FundingDays

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

    def load_days(self, path: Path) -> FundingDays:
        from rl.families.funding.data import FundingDays

        return FundingDays.load_npz(path)

    def env_factory(self, days: FundingDays, env_cfg: FundingEnvConfig, reward: RewardSpec) -> EnvFactory:
        from rl.families.funding.env import FundingVecEnv

        return lambda n_envs, seed: FundingVecEnv(days, env_cfg, reward, n_envs=n_envs, seed=seed)

    def single_env(self, days: FundingDays, env_cfg: FundingEnvConfig, reward: RewardSpec) -> Any:
        from rl.families.funding.env import FundingEnv

        return FundingEnv(days, env_cfg, reward)

    def synthetic_days(self, seed: int) -> FundingDays:
        """Five days of hourly rates on four symbols and three exchanges, one with a planted spread."""
        from rl.families.funding.data import random_funding_days

        return random_funding_days(n_hours=120, n_symbols=4, seed=seed, planted_spread_apr=0.3, anomalous=1)

    def perturb_after(self, days: FundingDays, t: int) -> FundingDays:
        """The same hours with every snapshot after hour index `t` changed (prices, rates, volumes)."""
        from dataclasses import replace

        later = (np.arange(days.n_hours) > t)[:, None, None]
        return replace(
            days,
            mark=np.where(later, days.mark * 1.05, days.mark),
            bid=np.where(later, days.bid * 1.05, days.bid),
            ask=np.where(later, days.ask * 1.06, days.ask),
            funding_paid=np.where(later, days.funding_paid + 0.001, days.funding_paid),
            rate_now=np.where(later, days.rate_now + 0.001, days.rate_now),
            volume_24h=np.where(later, days.volume_24h * 2.0, days.volume_24h),
        )

    def audit_target(self, days: FundingDays, cfg: FamilyConfig, reward: RewardSpec) -> AuditTarget:
        from rl.families.funding.audit import funding_audit_target

        return funding_audit_target(days, cfg.env, reward)

    def shadow_warmup_days(self, cfg: FamilyConfig) -> int:
        """Days before a partition its shadow account trades through first: one whole episode, as a continuously
        running account would have."""
        return -(-(cfg.env.episode_hours + 1) // 24)

    def shadow(self, days: FundingDays, cfg: FamilyConfig, reward: RewardSpec) -> Any:
        """One account under the user's trading config, its episode ending with the window's last hour; only the
        decisions on the last UTC day (the partition) are kept."""
        from rl.core.shadow import ShadowPlay
        from rl.families.funding.env import FundingVecEnv

        start = days.n_hours - 1 - cfg.env.episode_hours
        env = FundingVecEnv(days, cfg.env, reward, n_envs=1, seed=cfg.ppo.seed, fixed_starts=[start], auto_reset=False)
        env.set_options([{"trading": cfg.env.trading}])
        hours = np.asarray(days.timeline, dtype="datetime64[ns]").astype(np.int64)
        names = ("HOLD", *(f"ENTER_{k}" for k in range(cfg.env.top_k)), *(f"EXIT_{j}" for j in range(cfg.env.slots)))
        day_start = np.datetime64(np.datetime64(days.timeline[-1], "D"), "ns").astype(np.int64)
        return ShadowPlay(env, np.array(["default"]), lambda idx: hours[env._core.t[idx]], names, int(day_start))

    def teachers(self, days: Any, cfg: FamilyConfig) -> dict[str, Any]:
        from rl.families.funding.baselines import GreedyRule, funding_baselines

        ev = cfg.evaluation
        rule = GreedyRule(
            min_apr=ev.greedy_min_apr, max_half_spreads_pct=ev.greedy_max_half_spreads_pct, exit_apr=ev.greedy_exit_apr
        )
        return {name: (lambda env, p=p: p) for name, p in funding_baselines(cfg.env, rule, cfg.ppo.seed).items()}

    def evaluate(
        self, agent: Policy, held_out: FundingDays, cfg: FamilyConfig, reward: RewardSpec, agent_name: str
    ) -> dict[str, Any]:
        from rl.families.funding.baselines import GreedyRule
        from rl.families.funding.evaluate import evaluate_funding_with_baselines, evaluation_configs

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
        from rl.families.funding.evaluate import FundingEvalResult

        return FundingEvalResult.concat(name, results)

    def metrics(self, result: Any) -> dict[str, float]:
        from rl.families.funding.metrics import funding_metrics

        return funding_metrics(result)

    def run_checks(self, results: Mapping[str, Any], cfg: FamilyConfig, agent: str) -> dict[str, dict[str, Any]]:
        from rl.families.funding.metrics import funding_run_checks

        ev = cfg.evaluation
        return funding_run_checks(
            results[agent],
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
        cfg: FamilyConfig,
    ) -> str:
        from rl.families.funding.report import build_funding_report

        return build_funding_report(ctx, results, checks, out_dir, agent=agent, slices=slices)
