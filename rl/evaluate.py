"""Evaluation of any policy on held-out days: every (symbol, session) played exactly once, start to end.

Seed 002 judged a policy on one slice unlike its training and kept only the latest numbers. Here the
batched env runs in evaluation mode (`fixed_days = arange(D)`, no auto-reset) so each held-out day is one
complete episode under the same rules (loss cut, profit lock, end-of-day liquidation) as training, and every
dollar comes from the env's ledger (`rl.accounting`), the same code that computes the reward.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import polars as pl

from rl.baselines import ACTION_NAMES, Policy, baseline_policies

POSITION_NAMES: tuple[str, ...] = ("SHORT", "FLAT", "LONG")
# Position an action asks for (HOLD keeps the current one, entry 0 unused): BUY +1, SELL -1, CLOSE 0.
_TARGET_OF_ACTION = np.array([0, 1, -1, 0], dtype=np.int64)

if TYPE_CHECKING:
    from rl.config import EnvConfig
    from rl.data import MarketDays
    from rl.reward import RewardSpec


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
class EpisodeSet:
    """One policy's episodes, in play order: the per-episode arrays every family's checks and report read.

    Subclasses say how many action kinds their episodes count (`N_ACTIONS`)."""

    N_ACTIONS: ClassVar[int]
    name: str
    episodes: tuple[Any, ...]

    @classmethod
    def concat(cls, name: str, results: Sequence[EpisodeSet]) -> Self:
        """One policy's episodes over several slices (e.g. all walk-forward test windows) as one result."""
        return cls(name=name, episodes=tuple(ep for r in results for ep in r.episodes))

    @property
    def net_pnl(self) -> np.ndarray:
        """Net P&L per episode ($)."""
        return np.array([ep.net_pnl for ep in self.episodes], dtype=np.float64)

    @property
    def total_reward(self) -> np.ndarray:
        """Total reward per episode."""
        return np.array([ep.total_reward for ep in self.episodes], dtype=np.float64)

    @property
    def action_counts(self) -> np.ndarray:
        """Decisions per action kind summed over episodes [N_ACTIONS]."""
        if not self.episodes:
            return np.zeros(self.N_ACTIONS, dtype=np.int64)
        return np.sum([ep.action_counts for ep in self.episodes], axis=0).astype(np.int64)


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
    from rl.envs.intraday import IntradayVecEnv

    n = days.n_days
    env = IntradayVecEnv(days, env_cfg, reward, n_envs=n, seed=seed, fixed_days=np.arange(n), auto_reset=False)
    ledger = env.ledger
    obs = env.reset()
    max_steps = days.max_minutes
    equity = np.zeros((n, max_steps), dtype=np.float64)
    total_reward = np.zeros(n, dtype=np.float64)
    steps = np.zeros(n, dtype=np.int64)
    action_counts = np.zeros((n, len(ACTION_NAMES)), dtype=np.int64)
    position_counts = np.zeros((n, 3), dtype=np.int64)
    done_reason = [""] * n
    rows = np.arange(n)
    while not env.done_mask.all():
        active = ~env.done_mask
        masks = env.action_masks()
        actions = np.asarray(policy(obs, masks)).reshape(-1)
        if actions.shape != (n,):
            raise ValueError(f"policy {name!r} returned {actions.shape} actions for {n} envs")
        actions = actions.astype(np.int64)
        invalid = active & ((actions < 0) | (actions >= len(ACTION_NAMES)))
        invalid |= active & ~masks[rows, np.clip(actions, 0, len(ACTION_NAMES) - 1)]
        if invalid.any():
            i = int(np.flatnonzero(invalid)[0])
            raise ValueError(
                f"policy {name!r} chose masked action {int(actions[i])} on {days.symbols[i]} {days.dates[i]} "
                f"(valid: {np.flatnonzero(masks[i]).tolist()})"
            )
        actions = np.where(active, actions, 0)
        act = np.flatnonzero(active)
        chosen = np.where(actions == 0, ledger.pos, _TARGET_OF_ACTION[actions])
        np.add.at(action_counts, (act, actions[act]), 1)
        np.add.at(position_counts, (act, chosen[act] + 1), 1)
        obs, rewards, dones, infos = env.step(actions)
        total_reward[act] += rewards[act]
        equity[act, steps[act]] = ledger.equity[act]
        steps[act] += 1
        for i in np.flatnonzero(dones).tolist():
            done_reason[i] = str(infos[i].get("done_reason", ""))
    env.close()
    episodes = tuple(
        EpisodeResult(
            symbol=str(days.symbols[i]),
            date=np.datetime64(days.dates[i], "D").item(),
            total_reward=float(total_reward[i]),
            net_pnl=float(ledger.equity[i]),
            gross_pnl=float(ledger.gross[i]),
            commission=float(ledger.commission[i]),
            spread_cost=float(ledger.spread_cost[i]),
            round_trips=int(ledger.round_trips[i]),
            wins=int(ledger.wins[i]),
            action_counts=tuple(int(c) for c in action_counts[i]),
            position_counts=tuple(int(c) for c in position_counts[i]),
            done_reason=done_reason[i],
            steps=int(steps[i]),
            equity=equity[i, : steps[i]].copy(),
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


def load_agent(checkpoint_dir: Path, held_out_dates: np.ndarray) -> tuple[Policy, int]:
    """A checkpoint as a deterministic Policy and its torch thread count, refusing look-ahead.

    Every held-out date must be later than the last date the checkpoint was trained on (its meta.json).
    """
    from rl.baselines import agent
    from rl.train import load_checkpoint

    model, meta = load_checkpoint(checkpoint_dir)
    last_train = (meta.get("data") or {}).get("last_date")
    if last_train is not None:
        first_test = np.asarray(held_out_dates).astype("datetime64[D]").min()
        if first_test <= np.datetime64(last_train, "D"):
            raise ValueError(
                f"held-out days start {first_test} but checkpoint {Path(checkpoint_dir).name!r} saw "
                f"training data up to {last_train}: evaluation days must be strictly later"
            )
    threads = int(((meta.get("config") or {}).get("ppo") or {}).get("torch_threads", 1))
    return agent(model), threads


def evaluate_checkpoint(
    checkpoint_dir: Path,
    held_out: MarketDays,
    env_cfg: EnvConfig,
    reward: RewardSpec,
    seed: int = 0,
    agent_name: str = "agent",
) -> dict[str, EvalResult]:
    """Load a checkpoint and evaluate it with the baselines on `held_out`, refusing look-ahead (`load_agent`)."""
    from rl.train import torch_threads

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
