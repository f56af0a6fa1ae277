"""Intraday evaluation of any policy on held-out days: every (symbol, session) played exactly once, start to end.

Seed 002 judged a policy on one slice unlike its training and kept only the latest numbers. Here the
batched env runs in evaluation mode (`fixed_days = arange(D)`, no auto-reset) so each held-out day is one
complete episode under the same rules (loss cut, profit lock, end-of-day liquidation) as training, and every
dollar comes from the env's ledger (`rl.families.intraday.accounting`), the same code that computes the reward.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import polars as pl

from rl.core.evaluate import EpisodeSet, load_agent
from rl.core.policies import Policy
from rl.core.rollout import masked_rollout
from rl.families.intraday.accounting import DONE_REASONS
from rl.families.intraday.baselines import ACTION_NAMES, baseline_policies

POSITION_NAMES: tuple[str, ...] = ("SHORT", "FLAT", "LONG")
# Position an action asks for (HOLD keeps the current one, entry 0 unused): BUY +1, SELL -1, CLOSE 0.
_TARGET_OF_ACTION = np.array([0, 1, -1, 0], dtype=np.int64)

if TYPE_CHECKING:
    from rl.core.data import MarketDays
    from rl.core.reward import RewardSpec
    from rl.families.intraday.config import EnvConfig


@dataclass(frozen=True, eq=False)
class EpisodeResult:
    """One policy on one (symbol, session): totals from the ledger and the minute-by-minute net equity."""

    symbol: str
    date: date
    total_reward: float  # sum of the step rewards the agent would have been trained on
    net_pnl: float  # day net P&L ($) = gross_pnl + commission + spread_cost
    gross_pnl: float
    commission: float  # <= 0
    spread_cost: float  # <= 0
    round_trips: int
    wins: int  # round trips closed with positive net P&L
    action_counts: tuple[int, int, int, int]  # decisions per action: HOLD, BUY, SELL, CLOSE
    position_counts: tuple[int, int, int]  # decisions whose chosen position is short, flat, long
    done_reason: str  # loss_cut, profit_lock or end_of_data
    steps: int
    equity: np.ndarray  # day net P&L after each step, float64 [steps]


@dataclass(frozen=True, eq=False)
class EvalResult(EpisodeSet):
    """All intraday episodes of one policy on a set of days, in the days' order."""

    N_ACTIONS: ClassVar[int] = len(ACTION_NAMES)
    episodes: tuple[EpisodeResult, ...]

    @property
    def position_counts(self) -> np.ndarray:
        """Decisions per chosen position (SHORT, FLAT, LONG) summed over episodes [3]."""
        if not self.episodes:
            return np.zeros(len(POSITION_NAMES), dtype=np.int64)
        return np.sum([ep.position_counts for ep in self.episodes], axis=0).astype(np.int64)

    def to_frame(self, slice_name: str | None = None) -> pl.DataFrame:
        """One row per episode (no equity curve): what the warehouse's evaluation_episodes table stores."""
        rows = []
        for ep in self.episodes:
            row = {
                "policy": self.name,
                "slice": slice_name,
                "symbol": ep.symbol,
                "session_date": ep.date,
                "total_reward": ep.total_reward,
                "net_pnl": ep.net_pnl,
                "gross_pnl": ep.gross_pnl,
                "commission": ep.commission,
                "spread_cost": ep.spread_cost,
                "round_trips": ep.round_trips,
                "wins": ep.wins,
                "steps": ep.steps,
                "done_reason": ep.done_reason,
            }
            row.update({f"n_{a.lower()}": int(c) for a, c in zip(ACTION_NAMES, ep.action_counts, strict=True)})
            rows.append(row)
        schema = {
            "policy": pl.Utf8,
            "slice": pl.Utf8,
            "symbol": pl.Utf8,
            "session_date": pl.Date,
            "total_reward": pl.Float64,
            "net_pnl": pl.Float64,
            "gross_pnl": pl.Float64,
            "commission": pl.Float64,
            "spread_cost": pl.Float64,
            "round_trips": pl.Int64,
            "wins": pl.Int64,
            "steps": pl.Int64,
            "done_reason": pl.Utf8,
            **{f"n_{a.lower()}": pl.Int64 for a in ACTION_NAMES},
        }
        return pl.DataFrame(rows, schema=schema)


def evaluate_policy_on_days(
    policy: Policy,
    days: MarketDays,
    env_cfg: EnvConfig,
    reward: RewardSpec,
    name: str,
    seed: int = 0,
) -> EvalResult:
    """Play every day of `days` exactly once with `policy` in one batched env (env i plays day i).

    A policy that picks a masked (invalid) action for a running env is a bug and raises ValueError rather
    than being silently reinterpreted by the env.
    """
    from rl.families.intraday.env import IntradayVecEnv

    n = days.n_days
    env = IntradayVecEnv(days, env_cfg, reward, n_envs=n, seed=seed, fixed_days=np.arange(n), auto_reset=False)
    ledger = env.ledger
    equity = np.zeros((n, days.max_minutes), dtype=np.float64)
    position_counts = np.zeros((n, len(POSITION_NAMES)), dtype=np.int64)

    def count_positions(running: np.ndarray, actions: np.ndarray) -> None:
        chosen = np.where(actions == 0, ledger.pos, _TARGET_OF_ACTION[actions])
        np.add.at(position_counts, (running, chosen[running] + 1), 1)

    def mark(running: np.ndarray, steps: np.ndarray) -> None:
        equity[running, steps[running]] = ledger.equity[running]

    run = masked_rollout(
        env,
        policy,
        name,
        before_step=count_positions,
        after_step=mark,
        describe=lambda i: f"{days.symbols[i]} {days.dates[i]}",
    )
    env.close()
    episodes = tuple(
        EpisodeResult(
            symbol=str(days.symbols[i]),
            date=np.datetime64(days.dates[i], "D").item(),
            total_reward=float(run.total_reward[i]),
            net_pnl=float(ledger.equity[i]),
            gross_pnl=float(ledger.gross[i]),
            commission=float(ledger.commission[i]),
            spread_cost=float(ledger.spread_cost[i]),
            round_trips=int(ledger.round_trips[i]),
            wins=int(ledger.wins[i]),
            action_counts=tuple(int(c) for c in run.action_counts[i]),
            position_counts=tuple(int(c) for c in position_counts[i]),
            done_reason=DONE_REASONS[int(run.done_code[i])],
            steps=int(run.steps[i]),
            equity=equity[i, : run.steps[i]].copy(),
        )
        for i in range(n)
    )
    return EvalResult(name=name, episodes=episodes)


def evaluate_policies(
    policies: Mapping[str, Policy],
    days: MarketDays,
    env_cfg: EnvConfig,
    reward: RewardSpec,
    seed: int = 0,
) -> dict[str, EvalResult]:
    """Each named policy on the same days."""
    return {
        name: evaluate_policy_on_days(policy, days, env_cfg, reward, name=name, seed=seed)
        for name, policy in policies.items()
    }


def evaluate_checkpoint(
    checkpoint_dir: Path,
    held_out: MarketDays,
    env_cfg: EnvConfig,
    reward: RewardSpec,
    seed: int = 0,
    agent_name: str = "agent",
) -> dict[str, EvalResult]:
    """Load a checkpoint and evaluate it with the baselines on `held_out`, refusing look-ahead (`load_agent`)."""
    from rl.core.train import torch_threads

    policy, threads = load_agent(checkpoint_dir, held_out.dates)
    with torch_threads(threads):
        return evaluate_with_baselines(policy, held_out, env_cfg, reward, seed=seed, agent_name=agent_name)


def evaluate_with_baselines(
    agent_policy: Policy,
    days: MarketDays,
    env_cfg: EnvConfig,
    reward: RewardSpec,
    seed: int = 0,
    agent_name: str = "agent",
) -> dict[str, EvalResult]:
    """The agent and the four baselines (random_valid seeded with `seed`) on the same held-out days."""
    policies: dict[str, Policy] = {agent_name: agent_policy}
    policies.update(baseline_policies(days.feature_names, seed=seed))
    return evaluate_policies(policies, days, env_cfg, reward, seed=seed)
