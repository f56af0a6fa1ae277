"""Intraday equities (seed 000): one (symbol, NYSE session) per episode over 1-minute features."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from rl.families.intraday.accounting import COMPONENTS
from rl.families.intraday.config import EnvConfig

if TYPE_CHECKING:
    import duckdb

    from rl.core.audit import AuditTarget
    from rl.core.data import MarketDays
    from rl.core.family import FamilyConfig
    from rl.core.policies import Policy
    from rl.core.report import ReportContext
    from rl.core.reward import RewardSpec
    from rl.core.train import EnvFactory
    from rl.core.walkforward import Slice

BASE_COLUMNS = ("symbol", "session_date", "minute", "open", "close", "mean_spread")


class IntradayFamily:
    """Intraday equities: long/flat/short one unit of an equity or ETF within a regular NYSE session."""

    kind = "intraday"
    description = "Intraday equities: one unit long, flat or short in one symbol within a NYSE session."
    env_config = EnvConfig
    evaluation_config = None
    reward_components = tuple(COMPONENTS)
    checks = {"action_collapse": "error", "reward_pnl_alignment": "error"}
    check_descriptions = {
        "action_collapse": "Fails when one chosen position (short, flat or long) takes over 90% of the agent's "
        "held-out decisions (seed 003's collapse).",
        "reward_pnl_alignment": "Fails when Spearman(episode reward, episode net P&L) over the held-out days is "
        "below 0 (seed 004's reward rising while P&L fell).",
    }
    summary_keys = ("total_pnl", "mean_daily_pnl", "sharpe", "max_drawdown", "win_rate", "trades_per_day")
    episode_info_keys = ("net_pnl", "round_trips")
    data_assets = ("features_1m",)
    data_job = "market_data_job"

    def data_partitions(self, cfg: FamilyConfig) -> list[date]:
        return self.expected_dates(cfg)

    def load_data(self, con: duckdb.DuckDBPyConnection, cfg: FamilyConfig) -> pl.DataFrame:
        from warehouse.datasets import load_training_frame

        return load_training_frame(con, cfg.data.symbols, cfg.data.start, cfg.data.end)

    def expected_dates(self, cfg: FamilyConfig) -> list[date]:
        from market.calendar import sessions

        return sessions(cfg.data.start, cfg.data.end)

    def build_days(self, data: pl.DataFrame, cfg: FamilyConfig, expected: Sequence[date]) -> MarketDays:
        """MarketDays from the warehouse feature frame, refusing a range with missing symbol-sessions."""
        from rl.core.data import MarketDays

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
        feature_names = tuple(c for c in data.columns if c not in BASE_COLUMNS)
        return MarketDays.from_frame(data, feature_names)

    def load_days(self, path: Path) -> MarketDays:
        from rl.core.data import MarketDays

        return MarketDays.load_npz(path)

    def env_factory(self, days: MarketDays, env_cfg: EnvConfig, reward: RewardSpec) -> EnvFactory:
        from rl.families.intraday.env import IntradayVecEnv

        return lambda n_envs, seed: IntradayVecEnv(days, env_cfg, reward, n_envs=n_envs, seed=seed)

    def single_env(self, days: MarketDays, env_cfg: EnvConfig, reward: RewardSpec) -> Any:
        from rl.families.intraday.env import IntradayEnv

        return IntradayEnv(days, env_cfg, reward)

    def synthetic_days(self, seed: int) -> MarketDays:
        """A few short random-walk sessions with a learnable order-flow edge (tests and benchmarks)."""
        from rl.core.data import random_walk_days

        return random_walk_days(n_days=6, n_minutes=80, n_features=5, seed=seed, edge=0.5)

    def perturb_after(self, days: MarketDays, t: int) -> MarketDays:
        """The same days with every bar after minute index `t` changed (prices, spreads and features)."""
        from dataclasses import replace

        later = np.arange(days.max_minutes) > t
        return replace(
            days,
            features=np.where(later[None, :, None], days.features + 1.0, days.features).astype(np.float32),
            open=np.where(later, days.open * 1.05, days.open),
            close=np.where(later, days.close * 0.95, days.close),
            spread=np.where(later, days.spread * 3.0, days.spread),
        )

    def audit_target(self, days: MarketDays, cfg: FamilyConfig, reward: RewardSpec) -> AuditTarget:
        from rl.families.intraday.audit import intraday_target

        return intraday_target(days, cfg.env, reward)

    def shadow(self, days: MarketDays, cfg: FamilyConfig, reward: RewardSpec) -> Any:
        """Each (symbol, session) of the partition as one account, under the evaluation's rules."""
        from rl.core.shadow import day_play
        from rl.families.intraday.env import ACTION_NAMES, IntradayVecEnv

        n = days.n_days
        env = IntradayVecEnv(
            days, cfg.env, reward, n_envs=n, seed=cfg.ppo.seed, fixed_days=np.arange(n), auto_reset=False
        )
        return day_play(env, days, ACTION_NAMES)

    def teachers(self, days: MarketDays, cfg: FamilyConfig) -> dict[str, Any]:
        from rl.families.intraday.baselines import baseline_policies

        return {name: (lambda env, p=p: p) for name, p in baseline_policies(days.feature_names, cfg.ppo.seed).items()}

    def evaluate(
        self, agent: Policy, held_out: MarketDays, cfg: FamilyConfig, reward: RewardSpec, agent_name: str
    ) -> dict[str, Any]:
        from rl.families.intraday.evaluate import evaluate_with_baselines

        return evaluate_with_baselines(agent, held_out, cfg.env, reward, seed=cfg.ppo.seed, agent_name=agent_name)

    def concat(self, name: str, results: Sequence[Any]) -> Any:
        from rl.families.intraday.evaluate import EvalResult

        return EvalResult.concat(name, results)

    def metrics(self, result: Any) -> dict[str, float]:
        from rl.families.intraday.metrics import policy_metrics

        return policy_metrics(result)

    def run_checks(self, results: Mapping[str, Any], cfg: FamilyConfig, agent: str) -> dict[str, dict[str, Any]]:
        from rl.families.intraday.metrics import run_checks

        return run_checks(results[agent])

    def episode_rows(self, result: Any, slice_name: str, checkpoint_id: str, agent: str) -> list[dict[str, Any]]:
        from rl.families.intraday.env import ACTION_NAMES

        identity = result.row_identity(slice_name, checkpoint_id, agent)
        return [
            identity
            | {
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
        cfg: FamilyConfig,
    ) -> str:
        from rl.families.intraday.report import build_report

        return build_report(ctx, results, checks, out_dir, agent=agent, slices=slices)
