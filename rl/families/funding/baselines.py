"""Reference policies a funding agent is judged against on the same held-out episodes and user configs.

A trained agent is only interesting if it beats doing nothing (`never_trade`), chance among the valid actions
(`random_valid`) and the obvious rule a person would write (`greedy`: hold the best liquid pair while its APR
lasts). All are batched `rl.core.policies.Policy` callables `(obs [N, obs_dim], masks [N, 1 + K + P]) -> actions [N]`
and only ever return valid actions. `greedy` reads its inputs by column name from `observation_names`, so a change
of the observation layout breaks it loudly instead of silently reading the wrong column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl.core.config import from_dict, is_number
from rl.core.policies import Policy, random_valid
from rl.families.funding.config import FundingEnvConfig

HOLD = 0  # rl.families.funding.env.HOLD; not imported from there, which would pull in SB3 and torch (~1.5 s)
ACTION_KINDS: tuple[str, ...] = ("HOLD", "ENTER", "EXIT")  # action 0; 1..K; K+1..K+P


def action_kinds(actions: np.ndarray, top_k: int) -> np.ndarray:
    """Index into ACTION_KINDS of each action (0 hold, 1 enter an opportunity, 2 exit a slot)."""
    a = np.asarray(actions, dtype=np.int64)
    return np.where(a == HOLD, 0, np.where(a <= top_k, 1, 2)).astype(np.int64)


@dataclass(frozen=True)
class GreedyRule:
    """Thresholds of the greedy baseline, fixed before any agent is trained so it cannot be tuned to lose."""

    min_apr: float = 0.2  # enter an opportunity only when its quoted APR (fraction per year) exceeds this ...
    max_half_spreads_pct: float = 0.1  # ... and both legs' half-spreads sum below this (percent of price)
    exit_apr: float = 0.05  # exit a position once its pair's current APR falls below this

    def __post_init__(self) -> None:
        for name in ("min_apr", "max_half_spreads_pct", "exit_apr"):
            if not is_number(getattr(self, name)):
                raise ValueError(f"GreedyRule.{name} must be a finite number, got {getattr(self, name)!r}")
        if self.max_half_spreads_pct <= 0:
            raise ValueError(f"GreedyRule.max_half_spreads_pct must be > 0, got {self.max_half_spreads_pct!r}")
        if self.exit_apr >= self.min_apr:
            raise ValueError(
                f"GreedyRule.exit_apr ({self.exit_apr}) must be below min_apr ({self.min_apr}), "
                "or the rule exits what it just entered"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> GreedyRule:
        """Build from a mapping; unknown keys raise ValueError."""
        return from_dict(cls, data, where="greedy")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field."""
        return dataclasses.asdict(self)


def never_trade() -> Policy:
    """Always HOLD: zero P&L, the bar any agent must clear after costs."""

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.zeros(len(masks), dtype=np.int64)

    return policy


def greedy(cfg: FundingEnvConfig, rule: GreedyRule) -> Policy:
    """Exit the first open slot whose pair's APR fell below `exit_apr`; otherwise enter the best-ranked
    opportunity (opp0 has the highest APR) that quotes APR > `min_apr`, half-spreads < `max_half_spreads_pct`
    and whose symbol is not already held; otherwise HOLD. Every choice is checked against the mask."""
    from rl.families.funding.env import n_actions, observation_names

    names = {name: i for i, name in enumerate(observation_names(cfg))}
    k, p = cfg.top_k, cfg.slots

    def cols(fmt: str, n: int) -> np.ndarray:
        return np.array([names[fmt.format(i)] for i in range(n)], dtype=np.int64)

    slot_active, slot_apr = cols("slot{}_active", p), cols("slot{}_apr_now", p)
    opp_valid, opp_apr = cols("opp{}_valid", k), cols("opp{}_apr", k)
    opp_spread, opp_held = cols("opp{}_half_spreads_pct", k), cols("opp{}_symbol_held", k)
    width = n_actions(cfg)

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        o = np.asarray(obs)
        m = np.asarray(masks, dtype=bool)
        if m.ndim != 2 or m.shape[1] != width:
            raise ValueError(f"greedy expects masks of shape [N, {width}], got {m.shape}")
        leave = (o[:, slot_active] > 0.5) & (o[:, slot_apr] < rule.exit_apr) & m[:, 1 + k :]
        take = (
            (o[:, opp_valid] > 0.5)
            & (o[:, opp_apr] > rule.min_apr)
            & (o[:, opp_spread] < rule.max_half_spreads_pct)
            & (o[:, opp_held] < 0.5)
            & m[:, 1 : 1 + k]
        )
        actions = np.full(len(m), HOLD, dtype=np.int64)
        enter = take.any(axis=1)
        actions[enter] = 1 + np.argmax(take[enter], axis=1)
        leaving = leave.any(axis=1)
        actions[leaving] = 1 + k + np.argmax(leave[leaving], axis=1)
        return actions

    return policy


def funding_baselines(cfg: FundingEnvConfig, rule: GreedyRule, seed: int = 0) -> dict[str, Policy]:
    """The three baselines by report name (random_valid seeded with `seed`, its own generator)."""
    return {"never_trade": never_trade(), "greedy": greedy(cfg, rule), "random_valid": random_valid(seed)}
