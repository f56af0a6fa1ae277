"""0DTE evaluation: every held-out (underlying, session) played once per policy, start to close, under the same
stop, tiers, cooldown, costs and settlement as training; every dollar from the env's ledger.

Besides the totals each episode keeps what seed 003 wanted to see and could not: how often the stop fired and how
far beyond it a stopped trade filled, which take-profit tiers were reached, calls against puts, the action mix by
hour of the session, and what each reward term paid, so a shaping term that pays while P&L falls is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rl.core.evaluate import EpisodeSet
from rl.core.policies import Policy
from rl.core.rollout import masked_rollout
from rl.families.zerodte.baselines import baseline_policies
from rl.families.zerodte.env import ACTION_NAMES, DONE_REASONS, N_ACTIONS, ZeroDteVecEnv

if TYPE_CHECKING:
    from rl.core.reward import RewardSpec
    from rl.families.zerodte.config import EnvConfig, EvaluationConfig
    from rl.families.zerodte.data import OptionDays

HOURS = 7  # action-mix buckets: each hour of the session since its open (the last holds the final half hour)


@dataclass(frozen=True, eq=False)
class SessionEpisode:
    """One policy on one (underlying, session)."""

    symbol: str
    date: date
    total_reward: float
    net_pnl: float
    gross_pnl: float
    commission: float
    spread_cost: float
    trades: int  # round trips (entry to flat)
    wins: int
    stops: int
    worst_beyond_stop: float  # largest fill beyond the stop, share of the premium paid
    worst_stop_gap: float  # largest part of it already past the stop at the triggering mark
    worst_stop_slippage: float  # largest part of it below the triggering mark (the half spread)
    trade_return_sum: float  # closed trades' net P&L as shares of their premium, summed
    tier_hits: np.ndarray  # [n_tiers] trades that reached each tier
    calls: int
    puts: int
    action_counts: np.ndarray  # [6]
    hourly_actions: np.ndarray  # [HOURS, 6] decisions per action in each hour of the session
    reward_terms: dict[str, float]  # weighted sum of each reward component over the episode
    done_reason: str
    steps: int

    def details(self) -> dict[str, Any]:
        """The per-episode facts beyond the common columns (ml.evaluation_episodes.details_json)."""
        return {
            "stops": self.stops,
            "worst_beyond_stop": self.worst_beyond_stop,
            "worst_stop_gap": self.worst_stop_gap,
            "worst_stop_slippage": self.worst_stop_slippage,
            "tier_hits": self.tier_hits.tolist(),
            "calls": self.calls,
            "puts": self.puts,
            "reward_terms": {k: round(v, 6) for k, v in self.reward_terms.items()},
        }


@dataclass(frozen=True, eq=False)
class EvalResult(EpisodeSet):
    """All sessions of one policy, in the days' order."""

    N_ACTIONS: ClassVar[int] = N_ACTIONS
    episodes: tuple[SessionEpisode, ...] = ()

    def to_rows(self, slice_name: str, checkpoint_id: str | None, agent: str) -> list[dict[str, Any]]:
        """One ml.evaluation_episodes row per session."""
        identity = self.row_identity(slice_name, checkpoint_id, agent)
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
                "n_trades": ep.trades,
                "wins": ep.wins,
                "n_steps": ep.steps,
                "done_reason": ep.done_reason,
                "action_counts_json": dict(zip(ACTION_NAMES, map(int, ep.action_counts), strict=True)),
                "details_json": ep.details(),
            }
            for ep in self.episodes
        ]


def play_sessions(policy: Policy, days: OptionDays, env_cfg: EnvConfig, reward: RewardSpec, name: str,
                  seed: int = 0) -> EvalResult:  # fmt: skip
    """Play every session of `days` exactly once with `policy` in one batched env (env i plays day i)."""
    n = days.n_days
    env = ZeroDteVecEnv(days, env_cfg, reward, n_envs=n, seed=seed, fixed_days=np.arange(n), auto_reset=False)
    core = env.core
    hourly = np.zeros((n, HOURS, N_ACTIONS), dtype=np.int64)
    coefficients = dict(reward.coefficients)
    terms = {k: np.zeros(n) for k in coefficients}

    def before(running: np.ndarray, actions: np.ndarray) -> None:
        hour = np.minimum(core.t[running] // 60, HOURS - 1)
        np.add.at(hourly, (running, hour, actions[running]), 1)

    def after(running: np.ndarray, steps: np.ndarray) -> None:
        for k, c in coefficients.items():
            terms[k][running] += c * env.last_components[k][running]

    roll = masked_rollout(env, policy, name, before_step=before, after_step=after,
                          describe=lambda i: f"{days.symbols[i]} {days.dates[i]}")  # fmt: skip
    led = core.ledger
    episodes = tuple(
        SessionEpisode(
            symbol=str(days.symbols[i]),
            date=days.dates[i].astype("datetime64[D]").astype(date),
            total_reward=float(roll.total_reward[i]),
            net_pnl=float(led.equity[i]),
            gross_pnl=float(led.gross[i]),
            commission=float(led.commission[i]),
            spread_cost=float(led.spread_cost[i]),
            trades=int(led.round_trips[i]),
            wins=int(led.wins[i]),
            stops=int(core.stops[i]),
            worst_beyond_stop=float(core.worst_beyond_stop[i]),
            worst_stop_gap=float(core.worst_stop_gap[i]),
            worst_stop_slippage=float(core.worst_stop_slippage[i]),
            trade_return_sum=float(core.trade_return_sum[i]),
            tier_hits=core.tier_hits[i].copy(),
            calls=int(core.entries_call[i]),
            puts=int(core.entries_put[i]),
            action_counts=roll.action_counts[i].copy(),
            hourly_actions=hourly[i].copy(),
            reward_terms={k: float(v[i]) for k, v in terms.items()},
            done_reason=DONE_REASONS[int(roll.done_code[i])],
            steps=int(roll.steps[i]),
        )
        for i in range(n)
    )
    return EvalResult(name=name, episodes=episodes)


def evaluate_with_baselines(
    agent: Policy,
    held_out: OptionDays,
    env_cfg: EnvConfig,
    evaluation: EvaluationConfig,
    reward: RewardSpec,
    seed: int = 0,
    agent_name: str = "agent",
) -> dict[str, EvalResult]:
    """The agent and the three baselines on the same held-out sessions."""
    policies = {agent_name: agent} | baseline_policies(
        held_out.feature_names, env_cfg.window, evaluation.breakout_feature, evaluation.breakout_level, seed
    )
    return {name: play_sessions(p, held_out, env_cfg, reward, name, seed) for name, p in policies.items()}
