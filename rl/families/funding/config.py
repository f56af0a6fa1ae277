"""Typed, validated settings of the funding-arbitrage env: a bad value fails at construction with a clear message.

`TradingConfig` is the user's account setting (leverage, utilisation, slots, costs). The env samples one per
episode (`TradingConfig.sample`) and shows it in the observation, so one model serves any user config (seed 001).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rl.core.config import from_dict, is_int, is_number
from rl.core.reward import RewardSpec, load_reward
from rl.families.funding.accounting import COMPONENTS as FUNDING_COMPONENTS

MAX_LEVERAGE = 10.0
UTILIZATION_RANGE = (0.3, 0.8)
MAX_POSITIONS = 5


@dataclass(frozen=True)
class TradingConfig:
    """Account rules: how large each two-leg position is, how many, and what trading costs."""

    leverage: float = 3.0  # notional / margin of each leg, 1..10
    target_utilization: float = 0.5  # share of equity committed as margin when all slots are full, 0.3..0.8
    max_positions: int = 3  # simultaneous two-leg positions, 1..5
    liquidation_buffer: float = 0.2  # a leg is liquidated when its loss exceeds margin * (1 - buffer), (0, 1)
    taker_fee_bps: float = 5.0  # taker fee per leg per trade, basis points of notional, 0..100
    liquidation_fee_bps: float = 50.0  # extra fee charged on a liquidated leg's notional, bps, 0..1000
    initial_equity: float = 10_000.0  # account equity at the start of an episode ($)

    def __post_init__(self) -> None:
        if not is_number(self.leverage) or not 1.0 <= self.leverage <= MAX_LEVERAGE:
            raise ValueError(f"TradingConfig.leverage must be in [1, {MAX_LEVERAGE:g}], got {self.leverage!r}")
        lo, hi = UTILIZATION_RANGE
        if not is_number(self.target_utilization) or not lo <= self.target_utilization <= hi:
            raise ValueError(
                f"TradingConfig.target_utilization must be in [{lo}, {hi}], got {self.target_utilization!r}"
            )
        if not is_int(self.max_positions) or not 1 <= self.max_positions <= MAX_POSITIONS:
            raise ValueError(
                f"TradingConfig.max_positions must be an integer in [1, {MAX_POSITIONS}], got {self.max_positions!r}"
            )
        if not is_number(self.liquidation_buffer) or not 0.0 < self.liquidation_buffer < 1.0:
            raise ValueError(f"TradingConfig.liquidation_buffer must be in (0, 1), got {self.liquidation_buffer!r}")
        if not is_number(self.taker_fee_bps) or not 0.0 <= self.taker_fee_bps <= 100.0:
            raise ValueError(f"TradingConfig.taker_fee_bps must be in [0, 100], got {self.taker_fee_bps!r}")
        if not is_number(self.liquidation_fee_bps) or not 0.0 <= self.liquidation_fee_bps <= 1000.0:
            raise ValueError(
                f"TradingConfig.liquidation_fee_bps must be in [0, 1000], got {self.liquidation_fee_bps!r}"
            )
        if not is_number(self.initial_equity) or self.initial_equity <= 0:
            raise ValueError(f"TradingConfig.initial_equity must be a finite number > 0, got {self.initial_equity!r}")

    @property
    def leg_notional_fraction(self) -> float:
        """Notional of one leg as a fraction of equity: utilization / max_positions * leverage."""
        return self.target_utilization / self.max_positions * self.leverage

    def sample(self, rng: np.random.Generator) -> TradingConfig:
        """A random valid config (leverage, utilisation, max_positions drawn; costs and equity kept from self)."""
        lo, hi = UTILIZATION_RANGE
        return dataclasses.replace(
            self,
            leverage=float(rng.uniform(1.0, MAX_LEVERAGE)),
            target_utilization=float(rng.uniform(lo, hi)),
            max_positions=int(rng.integers(1, MAX_POSITIONS + 1)),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TradingConfig:
        """Build from a YAML mapping; unknown keys raise ValueError."""
        return from_dict(cls, data, where="trading")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FundingEnvConfig:
    """Episode shape and action layout of the funding env (fixed per model; the TradingConfig varies)."""

    episode_hours: int = 72  # decisions per episode (seed 004: 72 hourly steps)
    top_k: int = 8  # opportunities offered per step (actions 1..K)
    slots: int = MAX_POSITIONS  # position slots in the action space (actions K+1..K+P); > max_positions masked
    sample_config: bool = True  # draw a TradingConfig per episode from `trading.sample`; False = use `trading`
    wipeout_fraction: float = 0.1  # terminate when equity <= this fraction of initial equity
    trading: TradingConfig = field(default_factory=TradingConfig)

    def __post_init__(self) -> None:
        for name in ("episode_hours", "top_k"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"FundingEnvConfig.{name} must be an integer >= 1, got {value!r}")
        if not is_int(self.slots) or not 1 <= self.slots <= MAX_POSITIONS:
            raise ValueError(f"FundingEnvConfig.slots must be an integer in [1, {MAX_POSITIONS}], got {self.slots!r}")
        if not isinstance(self.sample_config, bool):
            raise ValueError(f"FundingEnvConfig.sample_config must be true or false, got {self.sample_config!r}")
        if not is_number(self.wipeout_fraction) or not 0.0 <= self.wipeout_fraction < 1.0:
            raise ValueError(f"FundingEnvConfig.wipeout_fraction must be in [0, 1), got {self.wipeout_fraction!r}")
        if not isinstance(self.trading, TradingConfig):
            raise ValueError(f"FundingEnvConfig.trading must be a TradingConfig, got {type(self.trading).__name__}")
        if self.trading.max_positions > self.slots:
            raise ValueError(
                f"trading.max_positions={self.trading.max_positions} exceeds FundingEnvConfig.slots={self.slots}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FundingEnvConfig:
        """Build from a YAML mapping (with a nested `trading:` mapping); unknown keys raise ValueError."""
        data = dict(data or {})
        if "trading" in data:
            data["trading"] = TradingConfig.from_dict(data["trading"])
        return from_dict(cls, data, where="funding_env")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (nested trading dict)."""
        return dataclasses.asdict(self)


def load_funding_reward(path: str | Path) -> RewardSpec:
    """A reward YAML checked against the funding family's components; any problem is a ValueError."""
    return load_reward(path, components=FUNDING_COMPONENTS)


@dataclass(frozen=True)
class FundingEvaluationConfig:
    """How held-out funding days are played and judged: episode starts, the greedy baseline's rule, check limits.

    The greedy thresholds are fixed here, before any agent is trained, so the baseline cannot be tuned to lose.
    """

    stride_hours: int = 24  # a held-out episode starts every this many hours (each played under every eval config)
    greedy_min_apr: float = 0.2  # greedy baseline: enter the best opportunity when its APR exceeds this ...
    greedy_max_half_spreads_pct: float = 0.1  # ... and both legs' half-spreads sum below this (percent of price)
    greedy_exit_apr: float = 0.05  # greedy baseline: exit a position when its pair's APR falls below this
    max_top_symbol_share: float = 0.6  # concentration check: top symbol's share of entries
    max_symbol_hhi: float = 0.5  # concentration check: Herfindahl index of entries over symbols
    min_reward_pnl_rho: float = 0.0  # alignment check: Spearman(episode reward, episode net P&L)

    def __post_init__(self) -> None:
        if not is_int(self.stride_hours) or self.stride_hours < 1:
            raise ValueError(f"evaluation.stride_hours must be an integer >= 1, got {self.stride_hours!r}")
        for name in ("greedy_min_apr", "greedy_max_half_spreads_pct", "greedy_exit_apr", "min_reward_pnl_rho"):
            if not is_number(getattr(self, name)):
                raise ValueError(f"evaluation.{name} must be a finite number, got {getattr(self, name)!r}")
        if self.greedy_exit_apr >= self.greedy_min_apr:
            raise ValueError(
                f"evaluation.greedy_exit_apr ({self.greedy_exit_apr}) must be below greedy_min_apr "
                f"({self.greedy_min_apr}), or the greedy baseline exits what it just entered"
            )
        if self.greedy_max_half_spreads_pct <= 0:
            raise ValueError("evaluation.greedy_max_half_spreads_pct must be > 0")
        for name in ("max_top_symbol_share", "max_symbol_hhi"):
            value = getattr(self, name)
            if not is_number(value) or not 0.0 < value <= 1.0:
                raise ValueError(f"evaluation.{name} must be in (0, 1], got {value!r}")
        if not -1.0 <= self.min_reward_pnl_rho <= 1.0:
            raise ValueError(f"evaluation.min_reward_pnl_rho must be in [-1, 1], got {self.min_reward_pnl_rho!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FundingEvaluationConfig:
        """Build from the YAML `evaluation:` mapping; unknown keys raise ValueError."""
        return from_dict(cls, data, where="evaluation")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field."""
        return dataclasses.asdict(self)
