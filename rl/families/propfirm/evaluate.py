"""Prop-firm evaluation: account episodes from several start days of each held-out slice, agent and baselines alike.

Seed 002 judged a policy on one deterministic slice, so every evaluation had zero variance and said nothing about
how often the account would pass. Here each held-out slice opens `starts_per_slice` accounts per root on evenly
spaced start days; each lives under the full rule book until it passes, breaches or the slice ends (`end_of_data`,
a truncation). Every policy plays the same accounts; every dollar comes from the env's ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rl.core.evaluate import EpisodeSet
from rl.core.policies import Policy
from rl.core.rollout import masked_rollout
from rl.families.propfirm.baselines import PolicyFactory, baseline_factories
from rl.families.propfirm.env import DONE_REASONS, EVENTS, PASSED, PropFirmVecEnv
from rl.families.propfirm.rules import best_day_share

if TYPE_CHECKING:
    from rl.core.reward import RewardSpec
    from rl.families.propfirm.config import EnvConfig, EvaluationConfig
    from rl.families.propfirm.data import FuturesDays


@dataclass(frozen=True, eq=False)
class AccountEpisode:
    """One policy's account opened on one start day: how it ended and what happened on the way."""

    root: str
    contract: str  # traded on the start day
    start_date: date
    total_reward: float
    net_pnl: float
    gross_pnl: float
    commission: float
    spread_cost: float
    round_trips: int
    wins: int
    steps: int
    done_reason: str
    days: int  # trading days the account lived
    trading_days: int  # of which it traded
    min_room: float  # least balance above the drawdown threshold at a bar's close ($; breaches are judged on lows)
    room_by_day: np.ndarray  # balance above the threshold after each day ($)
    day_pnl: np.ndarray  # each day's net P&L ($)
    events: dict[str, int]  # rule events: cutoff_flatten, daily_loss_pause, invalid_action
    action_counts: np.ndarray  # decisions per action (target -N..N contracts)
    holds: int  # decisions that kept the position unchanged

    @property
    def passed(self) -> bool:
        return self.done_reason == DONE_REASONS[PASSED]

    @property
    def breached(self) -> bool:
        return self.done_reason in ("trailing_drawdown", "daily_loss")

    @property
    def best_day_share(self) -> float:
        return best_day_share(self.day_pnl)

    def details(self) -> dict[str, Any]:
        """The per-episode facts beyond the common columns (ml.evaluation_episodes.details_json)."""
        return {
            "contract": self.contract,
            "days": self.days,
            "trading_days": self.trading_days,
            "min_room": self.min_room,
            "room_by_day": self.room_by_day.round(2).tolist(),
            "day_pnl": self.day_pnl.round(2).tolist(),
            "best_day_share": self.best_day_share if np.isfinite(self.best_day_share) else None,
            "events": dict(self.events),
            "holds": self.holds,
        }


@dataclass(frozen=True, eq=False)
class EvalResult(EpisodeSet):
    """All account episodes of one policy, in play order."""

    N_ACTIONS: ClassVar[int] = 0  # set by the episodes (2N + 1 targets)
    episodes: tuple[AccountEpisode, ...] = field(default=())

    @property
    def action_counts(self) -> np.ndarray:
        if not self.episodes:
            return np.zeros(0, dtype=np.int64)
        return np.sum([ep.action_counts for ep in self.episodes], axis=0).astype(np.int64)

    def to_rows(self, slice_name: str, checkpoint_id: str | None, agent: str) -> list[dict[str, Any]]:
        """One ml.evaluation_episodes row per account: symbol is the root, session_date the start day."""
        identity = self.row_identity(slice_name, checkpoint_id, agent)
        names = action_names(len(self.action_counts) // 2)
        return [
            identity
            | {
                "symbol": ep.root,
                "session_date": ep.start_date,
                "reward": ep.total_reward,
                "net_pnl": ep.net_pnl,
                "gross_pnl": ep.gross_pnl,
                "commission": ep.commission,
                "spread_cost": ep.spread_cost,
                "n_trades": ep.round_trips,
                "wins": ep.wins,
                "n_steps": ep.steps,
                "done_reason": ep.done_reason,
                "action_counts_json": dict(zip(names, map(int, ep.action_counts), strict=True)),
                "details_json": ep.details(),
            }
            for ep in self.episodes
        ]


def action_names(max_pos: int) -> tuple[str, ...]:
    """Report names of the targets -N..N: short_2, short_1, flat, long_1, long_2."""
    return tuple("flat" if k == 0 else f"{'long' if k > 0 else 'short'}_{abs(k)}" for k in range(-max_pos, max_pos + 1))


def start_days(days: FuturesDays, per_root: int, min_days_left: int) -> np.ndarray:
    """Row indices of evenly spaced start days per root, each leaving at least `min_days_left` of its days."""
    out: list[int] = []
    for root in dict.fromkeys(days.roots.tolist()):
        rows = np.flatnonzero(days.roots == root)
        usable = rows[: max(len(rows) - min_days_left + 1, 1)]
        picks = np.unique(np.round(np.linspace(0, len(usable) - 1, min(per_root, len(usable)))).astype(np.int64))
        out += usable[picks].tolist()
    return np.array(out, dtype=np.int64)


def play_accounts(
    make_policy: PolicyFactory,
    days: FuturesDays,
    env_cfg: EnvConfig,
    reward: RewardSpec,
    starts: np.ndarray,
    name: str,
    seed: int = 0,
) -> EvalResult:
    """One account per start day, played to its end by the policy `make_policy(env)` builds."""
    env = PropFirmVecEnv(days, env_cfg, reward, n_envs=len(starts), seed=seed, fixed_days=starts, auto_reset=False)
    core = env.core
    n = len(starts)
    book = env_cfg.rulebook
    min_room = np.full(n, book.trailing_drawdown)
    room_days: list[list[float]] = [[] for _ in range(n)]
    holds = np.zeros(n, dtype=np.int64)
    seen_days = np.zeros(n, dtype=np.int64)

    def room(idx: np.ndarray) -> np.ndarray:
        return book.start_balance + core.ledger.equity[idx] - core.threshold[idx]

    def before(running: np.ndarray, actions: np.ndarray) -> None:
        holds[running] += actions[running] - core.max_pos == core.ledger.pos[running]

    def after(running: np.ndarray, steps: np.ndarray) -> None:
        r = room(running)
        min_room[running] = np.minimum(min_room[running], r)
        moved = running[core.days_done[running] > seen_days[running]]
        for i, value in zip(moved.tolist(), room(moved).tolist(), strict=True):
            room_days[i].append(value)
        seen_days[moved] = core.days_done[moved]

    roll = masked_rollout(env, make_policy(env), name=name, before_step=before, after_step=after)
    led = core.ledger
    episodes = []
    for i, d in enumerate(starts.tolist()):
        k = int(core.days_done[i])
        episodes.append(
            AccountEpisode(
                root=str(days.roots[d]),
                contract=str(days.contracts[d]),
                start_date=days.dates[d].astype(date),
                total_reward=float(roll.total_reward[i]),
                net_pnl=float(led.equity[i]),
                gross_pnl=float(led.gross[i]),
                commission=float(led.commission[i]),
                spread_cost=float(led.spread_cost[i]),
                round_trips=int(led.round_trips[i]),
                wins=int(led.wins[i]),
                steps=int(roll.steps[i]),
                done_reason=DONE_REASONS[int(roll.done_code[i])],
                days=k,
                trading_days=int(core.trading_days[i]),
                min_room=float(min_room[i]),
                room_by_day=np.array(room_days[i], dtype=np.float64),
                day_pnl=core.day_pnl[i, :k].copy(),
                events={e: int(core.events[i, j]) for j, e in enumerate(EVENTS)},
                action_counts=roll.action_counts[i].copy(),
                holds=int(holds[i]),
            )
        )
    return EvalResult(name=name, episodes=tuple(episodes))


def evaluate_with_baselines(
    agent: Policy,
    held_out: FuturesDays,
    env_cfg: EnvConfig,
    evaluation: EvaluationConfig,
    reward: RewardSpec,
    seed: int = 0,
    agent_name: str = "agent",
) -> dict[str, EvalResult]:
    """The agent and every baseline on the same accounts of one held-out slice."""
    starts = start_days(held_out, evaluation.starts_per_slice, evaluation.min_days_left)
    factories: Mapping[str, PolicyFactory] = {agent_name: lambda env: agent, **baseline_factories(evaluation, seed)}
    return {
        name: play_accounts(make, held_out, env_cfg, reward, starts, name, seed) for name, make in factories.items()
    }
