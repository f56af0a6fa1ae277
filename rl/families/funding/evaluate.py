"""Evaluation of any policy on held-out funding hours: every (start hour, user config) played exactly once.

Seed 001 trained one config-aware model "for any user config" but judged it on one; seed 004 reported a mean
reward of +8,112 next to a P&L of -1.39% and found only by hand that one illiquid symbol took its trades. Here
one batched env in evaluation mode (`fixed_starts`, no auto-reset) plays an episode from every `stride_hours`
start under each named TradingConfig, and each episode keeps what is needed to see such failures: the reward
split into its components, the money split into funding, taker fees, spreads and liquidations, and every closed
trip's P&L and holding time by symbol. Every dollar comes from `FundingLedger`, the code that computes the reward.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rl.core.evaluate import EpisodeSet
from rl.core.policies import Policy
from rl.core.rollout import Rollout, masked_rollout
from rl.families.funding.accounting import DONE_REASONS
from rl.families.funding.baselines import ACTION_KINDS, GreedyRule, action_kinds, funding_baselines
from rl.families.funding.config import MAX_LEVERAGE, MAX_POSITIONS, UTILIZATION_RANGE, FundingEnvConfig, TradingConfig

if TYPE_CHECKING:
    from rl.core.reward import RewardSpec
    from rl.families.funding.data import FundingDays

PORTFOLIO_SYMBOL = "*"  # an episode trades a multi-symbol portfolio, not one symbol
# Users of seed 001 chose leverage 1-10x, utilisation 30-80%, 1-5 positions; the agent is judged on its default
# and on both ends of that range.
_CONSERVATIVE = {"leverage": 2.0, "target_utilization": 0.4, "max_positions": 2}
_AGGRESSIVE = {"leverage": 5.0, "target_utilization": 0.7, "max_positions": 5}


def _clipped(trading: TradingConfig, leverage: float, target_utilization: float, max_positions: int) -> TradingConfig:
    lo, hi = UTILIZATION_RANGE
    return dataclasses.replace(
        trading,
        leverage=float(min(max(leverage, 1.0), MAX_LEVERAGE)),
        target_utilization=float(min(max(target_utilization, lo), hi)),
        max_positions=int(min(max(max_positions, 1), MAX_POSITIONS)),
    )


def evaluation_configs(trading: TradingConfig) -> dict[str, TradingConfig]:
    """The user configs every policy is judged on: `trading` itself, a conservative and an aggressive one.

    Costs, liquidation buffer and equity are kept from `trading`; the sizes are clipped to the valid ranges.
    """
    return {
        "default": trading,
        "conservative": _clipped(trading, **_CONSERVATIVE),
        "aggressive": _clipped(trading, **_AGGRESSIVE),
    }


def evaluation_starts(n_hours: int, episode_hours: int, stride_hours: int = 24) -> np.ndarray:
    """Start hours 0, stride, 2*stride, ... of every complete episode: s + episode_hours <= n_hours - 1."""
    for name, value in (("n_hours", n_hours), ("episode_hours", episode_hours), ("stride_hours", stride_hours)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    latest = n_hours - 1 - episode_hours
    if latest < 0:
        raise ValueError(f"{n_hours} hours hold no complete {episode_hours}-hour episode (need {episode_hours + 1})")
    return np.arange(0, latest + 1, stride_hours, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class FundingEpisode:
    """One policy from one start hour under one user config: totals from the ledger, trips and the equity path."""

    start_time: str  # ISO UTC time of the first decision
    config_name: str  # key of the TradingConfig in the evaluation's configs
    total_reward: float  # sum of the step rewards the agent would have been trained on
    reward_parts: dict[str, float]  # component -> sum of weight * scale * raw over the episode (sums to the reward)
    net_pnl: float  # equity change ($) = gross + fees
    pnl_pct: float  # net_pnl / initial equity * 100
    gross: float  # mark-to-market of all legs, funding included ($)
    funding: float  # funding received minus paid ($), part of gross
    fees: float  # taker fees + half-spreads + liquidation fees (<= 0)
    spread: float  # the half-spread part of fees (<= 0)
    liquidations: int
    round_trips: int  # positions closed (exit, liquidation or the episode's end)
    wins: int  # closed positions with net P&L > 0
    hold_hours: tuple[float, ...]  # hours each closed position was held
    symbol_pnl: dict[str, float]  # net P&L of closed positions by symbol (sums to net_pnl)
    symbol_entries: dict[str, int]  # positions entered by symbol
    action_counts: tuple[int, int, int]  # decisions: HOLD, ENTER, EXIT
    invested_hours: int  # decisions after which >= 1 position was open, i.e. hours exposed to funding and prices
    done_reason: str  # end_of_episode or wipeout
    steps: int
    equity: np.ndarray  # equity change ($) after each step, float64 [steps]

    @property
    def session_date(self) -> date:
        """UTC date of the first decision."""
        return datetime.fromisoformat(self.start_time).date()

    @property
    def commission(self) -> float:
        """Taker and liquidation fees (<= 0): `fees` without the half-spreads."""
        return self.fees - self.spread


@dataclass(frozen=True, eq=False)
class FundingEvalResult(EpisodeSet):
    """All episodes of one policy on a set of hours and user configs, config by config in start order."""

    N_ACTIONS: ClassVar[int] = len(ACTION_KINDS)  # HOLD, ENTER, EXIT
    episodes: tuple[FundingEpisode, ...]

    @property
    def pnl_pct(self) -> np.ndarray:
        """Net P&L per episode in percent of its initial equity."""
        return np.array([ep.pnl_pct for ep in self.episodes], dtype=np.float64)

    @property
    def config_names(self) -> tuple[str, ...]:
        """The user configs played, in first-seen order."""
        return tuple(dict.fromkeys(ep.config_name for ep in self.episodes))

    def for_config(self, config_name: str) -> FundingEvalResult:
        """The episodes played under one user config."""
        return FundingEvalResult(self.name, tuple(ep for ep in self.episodes if ep.config_name == config_name))

    def to_rows(self, slice_name: str, checkpoint_id: str | None, agent: str) -> list[dict[str, Any]]:
        """One row per episode for the warehouse's ml.evaluation_episodes table.

        Its primary key is (run_id, slice, policy, symbol, session_date) and it has no config column, while this
        family plays several configs (and, with stride_hours < 24, several starts) per date. So `symbol` holds
        the episode's key: "*@<config>" ("*" = the whole multi-symbol portfolio), plus "@<HH>h" for a start
        that is not at 00:00 UTC. `commission` is taker + liquidation fees, `spread_cost` the half-spreads, so
        net_pnl = gross_pnl + commission + spread_cost as for the intraday family.
        """
        identity = self.row_identity(slice_name, checkpoint_id, agent)
        rows = []
        for ep in self.episodes:
            hour = datetime.fromisoformat(ep.start_time).hour
            key = f"{PORTFOLIO_SYMBOL}@{ep.config_name}" + (f"@{hour:02d}h" if hour else "")
            rows.append(
                identity
                | {
                    "symbol": key,
                    "session_date": ep.session_date,
                    "reward": ep.total_reward,
                    "net_pnl": ep.net_pnl,
                    "gross_pnl": ep.gross,
                    "commission": ep.commission,
                    "spread_cost": ep.spread,
                    "n_trades": ep.round_trips,
                    "wins": ep.wins,
                    "n_steps": ep.steps,
                    "done_reason": ep.done_reason,
                    "action_counts_json": dict(zip(ACTION_KINDS, map(int, ep.action_counts), strict=True)),
                }
            )
        return rows


def _fit(trading: TradingConfig, env_cfg: FundingEnvConfig) -> TradingConfig:
    """A config the env can play: at most `env_cfg.slots` positions (the action space has no more)."""
    if trading.max_positions <= env_cfg.slots:
        return trading
    return dataclasses.replace(trading, max_positions=env_cfg.slots)


class _Tally:
    """What a funding evaluation records per env beyond the rollout's totals, filled by the rollout's hooks."""

    def __init__(self, env: Any, days: FundingDays, env_cfg: FundingEnvConfig, reward: RewardSpec) -> None:
        n = env.num_envs
        self.env, self.ledger, self.top_k = env, env.ledger, env_cfg.top_k
        self.coefficients = reward.coefficients
        self.symbols = [str(s) for s in days.symbols]
        self.equity = np.zeros((n, env_cfg.episode_hours), dtype=np.float64)
        self.parts = {comp: np.zeros(n, dtype=np.float64) for comp, _ in self.coefficients}
        self.action_counts = np.zeros((n, len(ACTION_KINDS)), dtype=np.int64)
        self.invested = np.zeros(n, dtype=np.int64)
        self.hold_hours: list[list[float]] = [[] for _ in range(n)]
        self.symbol_pnl: list[dict[str, float]] = [{} for _ in range(n)]
        self.symbol_entries: list[dict[str, int]] = [{} for _ in range(n)]

    def before(self, running: np.ndarray, actions: np.ndarray) -> None:
        kinds = action_kinds(actions, self.top_k)
        np.add.at(self.action_counts, (running, kinds[running]), 1)
        # Valid actions always take effect, so the positions held over the coming hour are known now.
        open_after = self.ledger.n_open() + (kinds == 1) - (kinds == 2)
        self.invested[running] += open_after[running] > 0

    def after(self, running: np.ndarray, steps: np.ndarray) -> None:
        led, comps = self.ledger, self.env.last_components
        for comp, coef in self.coefficients:
            self.parts[comp][running] += coef * comps[comp][running]
        self.equity[running, steps[running]] = led.equity[running] - led.equity0[running]
        for i in np.flatnonzero(led.entered_sym >= 0).tolist():
            s = self.symbols[led.entered_sym[i]]
            self.symbol_entries[i][s] = self.symbol_entries[i].get(s, 0) + 1
        closed = np.isfinite(led.closed_net)
        if closed.any():
            for i, j in zip(*np.nonzero(closed), strict=True):
                s = self.symbols[led.sym[i, j]]
                self.symbol_pnl[i][s] = self.symbol_pnl[i].get(s, 0.0) + float(led.closed_net[i, j])
                self.hold_hours[i].append(float(led.closed_hours[i, j]))

    def episode(self, i: int, run: Rollout, start_time: str, config_name: str) -> FundingEpisode:
        """Env i's episode, from the ledger's totals, the rollout's and this tally's."""
        led = self.ledger
        net = float(led.equity[i] - led.equity0[i])
        return FundingEpisode(
            start_time=start_time,
            config_name=config_name,
            total_reward=float(run.total_reward[i]),
            reward_parts={comp: float(v[i]) for comp, v in self.parts.items()},
            net_pnl=net,
            pnl_pct=net / float(led.equity0[i]) * 100.0,
            gross=float(led.gross[i]),
            funding=float(led.funding[i]),
            fees=float(led.fees[i]),
            spread=float(led.spread[i]),
            liquidations=int(led.liquidations[i]),
            round_trips=int(led.round_trips[i]),
            wins=int(led.wins[i]),
            hold_hours=tuple(self.hold_hours[i]),
            symbol_pnl=self.symbol_pnl[i],
            symbol_entries=self.symbol_entries[i],
            action_counts=tuple(int(c) for c in self.action_counts[i]),
            invested_hours=int(self.invested[i]),
            done_reason=DONE_REASONS[int(run.done_code[i])],
            steps=int(run.steps[i]),
            equity=self.equity[i, : run.steps[i]].copy(),
        )


def evaluate_funding_policy(
    policy: Policy,
    days: FundingDays,
    env_cfg: FundingEnvConfig,
    reward: RewardSpec,
    name: str,
    configs: Mapping[str, TradingConfig],
    stride_hours: int = 24,
    seed: int = 0,
) -> FundingEvalResult:
    """Play every (start in `evaluation_starts`, config in `configs`) exactly once with `policy` in one batched env.

    Env i plays config i // n_starts from start i % n_starts; the episodes come back in that order. A config
    with more positions than `env_cfg.slots` is played with `slots`. A policy that picks a masked (invalid)
    action for a running env is a bug and raises ValueError rather than being silently reinterpreted.
    """
    from rl.families.funding.env import FundingVecEnv

    if not configs:
        raise ValueError("evaluate_funding_policy needs at least one TradingConfig")
    starts = evaluation_starts(days.n_hours, env_cfg.episode_hours, stride_hours)
    config_names = list(configs)
    env_config = np.repeat(np.arange(len(config_names)), len(starts))
    env_start = np.tile(starts, len(config_names))
    fitted = [_fit(configs[c], env_cfg) for c in config_names]
    env = FundingVecEnv(
        days, env_cfg, reward, n_envs=len(env_start), seed=seed, fixed_starts=env_start, auto_reset=False
    )
    env.set_options([{"trading": fitted[c]} for c in env_config.tolist()])
    tally = _Tally(env, days, env_cfg, reward)

    def describe(i: int) -> str:
        return f"hour {int(env.get_attr('t', i)[0])} under config {config_names[env_config[i]]!r}"

    run = masked_rollout(env, policy, name, before_step=tally.before, after_step=tally.after, describe=describe)
    env.close()
    episodes = tuple(
        tally.episode(i, run, str(np.datetime64(days.timeline[env_start[i]], "s")), config_names[env_config[i]])
        for i in range(len(env_start))
    )
    return FundingEvalResult(name=name, episodes=episodes)


def evaluate_funding_with_baselines(
    agent_policy: Policy,
    days: FundingDays,
    env_cfg: FundingEnvConfig,
    reward: RewardSpec,
    configs: Mapping[str, TradingConfig],
    rule: GreedyRule,
    stride_hours: int = 24,
    seed: int = 0,
    agent_name: str = "agent",
) -> dict[str, FundingEvalResult]:
    """The agent, then never_trade, greedy and random_valid (seeded with `seed`), on the same episodes."""
    policies: dict[str, Policy] = {agent_name: agent_policy}
    policies.update(funding_baselines(env_cfg, rule, seed=seed))
    return {
        name: evaluate_funding_policy(policy, days, env_cfg, reward, name, configs, stride_hours, seed)
        for name, policy in policies.items()
    }
