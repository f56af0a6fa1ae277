"""Prop-firm futures (seed 002): an E-mini account's life across CME trading days under a funded-account rule book."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from rl.families.propfirm.config import EnvConfig, EvaluationConfig
from rl.families.propfirm.env import COMPONENTS

if TYPE_CHECKING:
    import duckdb

    from rl.core.audit import AuditTarget
    from rl.core.family import FamilyConfig
    from rl.core.policies import Policy
    from rl.core.report import ReportContext
    from rl.core.reward import RewardSpec
    from rl.core.train import EnvFactory
    from rl.core.walkforward import Slice
    from rl.families.propfirm.data import FuturesDays


class PropFirmFamily:
    """Prop-firm futures: 1..N E-mini contracts long or short, an account judged by a rule book until it passes or
    breaches."""

    kind = "propfirm"
    description = "Prop-firm futures: an E-mini account under a funded-account rule book, day after day."
    env_config = EnvConfig
    evaluation_config = EvaluationConfig
    reward_components = tuple(COMPONENTS)
    checks = {"pass_rate_beats_baselines": "error", "action_mix": "warn"}
    check_descriptions = {
        "pass_rate_beats_baselines": "Fails unless the agent's accounts pass more often than every baseline's "
        "(flat, random-valid, opening-range breakout, trend) on the same held-out start days.",
        "action_mix": "Warns when the agent never trades, or trades one side only (under 5% of its trading "
        "decisions on the other): a policy stuck in HOLD and BUY is visible.",
    }
    summary_keys = ("pass_rate", "pass_rate_low", "pass_rate_high", "breach_rate", "days_to_pass", "mean_net_pnl")
    episode_info_keys = ("net_pnl", "days", "passed", "breached")
    data_assets = ("features_1m",)
    data_job = "market_data_job"
    gated_phase = "entries"  # its checkpoint must beat the flat baseline on validation days before phase 2

    def data_partitions(self, cfg: FamilyConfig) -> list[date]:
        return self.expected_dates(cfg)

    def load_data(self, con: duckdb.DuckDBPyConnection, cfg: FamilyConfig) -> pl.DataFrame:
        from warehouse.datasets import load_futures_frame

        return load_futures_frame(con, cfg.data.symbols, cfg.data.start, cfg.data.end)

    def expected_dates(self, cfg: FamilyConfig) -> list[date]:
        from market.calendar import CME_EQUITY, sessions

        return sessions(cfg.data.start, cfg.data.end, CME_EQUITY)

    def build_days(self, data: pl.DataFrame, cfg: FamilyConfig, expected: Sequence[date]) -> FuturesDays:
        """FuturesDays from the warehouse frame, refusing a range where a root misses a trading day."""
        from rl.families.propfirm.data import BASE_COLUMNS, FuturesDays

        if not cfg.data.symbols:
            raise ValueError("the propfirm family needs an explicit data.symbols list of futures roots (ES, NQ)")
        present = set(data.select("root", "session_date").unique().iter_rows())
        missing = sorted(f"{r} {d.isoformat()}" for r in cfg.data.symbols for d in expected if (r, d) not in present)
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise ValueError(
                f"{len(missing)} root-days lack their front contract's bars and features ({shown}): "
                "materialize raw_ticks, bars_1m and features_1m for these days"
            )
        return FuturesDays.from_frame(data, tuple(c for c in data.columns if c not in BASE_COLUMNS))

    def load_days(self, path: Path) -> FuturesDays:
        from rl.families.propfirm.data import FuturesDays

        return FuturesDays.load_npz(path)

    def env_factory(self, days: FuturesDays, env_cfg: EnvConfig, reward: RewardSpec) -> EnvFactory:
        from rl.families.propfirm.env import PropFirmVecEnv

        return lambda n_envs, seed: PropFirmVecEnv(days, env_cfg, reward, n_envs=n_envs, seed=seed)

    def single_env(self, days: FuturesDays, env_cfg: EnvConfig, reward: RewardSpec) -> Any:
        from rl.families.propfirm.env import PropFirmEnv

        return PropFirmEnv(days, env_cfg, reward)

    def synthetic_days(self, seed: int) -> FuturesDays:
        """Four short ES days, 08:30-10:29 ET, with a learnable order-flow signal (tests and benchmarks)."""
        from rl.families.propfirm.data import synthetic_futures_days

        return synthetic_futures_days(n_days=4, n_minutes=120, first_bar="2024-03-04T13:30", seed=seed)

    def perturb_after(self, days: FuturesDays, t: int) -> FuturesDays:
        """The same days with every bar after index `t` changed (prices scaled together, spreads, features)."""
        later = np.arange(days.bars.max_minutes) > t
        scale = np.where(later, 1.05, 1.0)
        bars = replace(
            days.bars,
            features=np.where(later[None, :, None], days.bars.features + 1.0, days.bars.features).astype(np.float32),
            open=days.bars.open * scale,
            close=days.bars.close * scale,
            spread=np.where(later, days.bars.spread * 3.0, days.bars.spread),
        )
        return replace(days, bars=bars, high=days.high * scale, low=days.low * scale)

    def audit_target(self, days: FuturesDays, cfg: FamilyConfig, reward: RewardSpec) -> AuditTarget:
        from rl.families.propfirm.audit import propfirm_target

        return propfirm_target(days, cfg.env, reward)

    def shadow(self, days: Any, cfg: FamilyConfig, reward: RewardSpec) -> Any:
        """A fresh account per root opening on the partition's trading day, under the evaluation's rule book."""
        from rl.core.shadow import day_play
        from rl.families.propfirm.env import PropFirmVecEnv

        n = days.n_days
        env = PropFirmVecEnv(
            days, cfg.env, reward, n_envs=n, seed=cfg.ppo.seed, fixed_days=np.arange(n), auto_reset=False
        )
        top = env.core.max_pos
        names = [f"target_{k - top:+d}" if k != top else "target_0" for k in range(2 * top + 1)]
        return day_play(env, days, names, days.minute_ns)

    def teachers(self, days: Any, cfg: FamilyConfig) -> dict[str, Any]:
        from rl.families.propfirm.baselines import baseline_factories

        return dict(baseline_factories(cfg.evaluation, cfg.ppo.seed))

    def evaluate(
        self, agent: Policy, held_out: FuturesDays, cfg: FamilyConfig, reward: RewardSpec, agent_name: str
    ) -> dict[str, Any]:
        from rl.families.propfirm.evaluate import evaluate_with_baselines

        return evaluate_with_baselines(agent, held_out, cfg.env, cfg.evaluation, reward, cfg.ppo.seed, agent_name)

    def concat(self, name: str, results: Sequence[Any]) -> Any:
        from rl.families.propfirm.evaluate import EvalResult

        return EvalResult.concat(name, results)

    def metrics(self, result: Any) -> dict[str, float]:
        from rl.families.propfirm.metrics import policy_metrics

        return policy_metrics(result)

    def run_checks(self, results: Mapping[str, Any], cfg: FamilyConfig, agent: str) -> dict[str, dict[str, Any]]:
        from rl.families.propfirm.metrics import run_checks

        return run_checks(results, agent, cfg.evaluation.confidence)

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
        from rl.families.propfirm.report import build_report

        return build_report(
            ctx, results, checks, out_dir, agent=agent, slices=slices, drawdown=cfg.env.rulebook.trailing_drawdown,
            confidence=cfg.evaluation.confidence,
        )  # fmt: skip
