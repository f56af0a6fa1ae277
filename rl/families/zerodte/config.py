"""Typed, validated settings of the 0DTE options env: a bad value fails at load time, naming it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from rl.core.config import is_int, is_number, known_keys
from rl.families.zerodte.rules import ContractRule, RiskRules


def _section(value: Any, kind: type, where: str) -> Any:
    if isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        return kind.from_dict(value)
    raise ValueError(f"env.{where} must be a mapping of {kind.__name__} settings, got {value!r}")


@dataclass(frozen=True)
class EnvConfig:
    """How the agent scalps one underlying's same-day options within a session (seed 003).

    A buy takes the contract `contract` picks from the decision minute's chain, and fills at the next minute's ask;
    sells fill at the next minute's bid. The risk rules (`risk`) trim, stop and settle. A buy's size is
    `premium_budget` dollars of premium at the decision minute's ask, between 1 and `contracts` contracts, so one
    SPX contract (about ten times SPY's premium) is not traded like ten; without a budget it is `contracts`.
    """

    risk: Any = None  # RiskRules: take-profit tiers and their exits, the hard stop, cooldown, settlement
    contract: Any = None  # ContractRule: target delta, minimum premium and volume
    contracts: int = 10  # most contracts per buy (trims sell shares of them)
    premium_budget: float | None = None  # $ of premium per buy (None: always `contracts`)
    commission_per_contract: float = 0.65  # $ a side
    warmup_minutes: int = 30  # first decision minute (the momentum features are complete from minute 30)
    entry_cutoff_minutes: int = 30  # no new buy this many minutes (or fewer) before the close
    window: int = 20  # rows of the underlying's features in the observation (seed 003's 20 x 23)
    setup_minutes: int = 15  # a breakout: the close beyond the trailing high (low) of this many minutes
    chase_minutes: int = 15  # a chase: a buy after the underlying already moved ...
    chase_return_pct: float = 0.25  # ... at least this many percent its way over `chase_minutes`
    pnl_scale: float = 100.0  # divisor of $ values in the observation

    def __post_init__(self) -> None:
        object.__setattr__(self, "risk", _section(self.risk if self.risk is not None else {}, RiskRules, "risk"))
        object.__setattr__(
            self, "contract", _section(self.contract if self.contract is not None else {}, ContractRule, "contract")
        )
        positive = ("contracts", "window", "setup_minutes", "chase_minutes")
        for name in positive:
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"EnvConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("warmup_minutes", "entry_cutoff_minutes"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"EnvConfig.{name} must be an integer >= 0, got {getattr(self, name)!r}")
        if self.warmup_minutes + 1 < self.window:
            raise ValueError(
                f"EnvConfig.window ({self.window}) needs at least that many bars before the first decision: "
                f"warmup_minutes must be >= window - 1"
            )
        for name in ("commission_per_contract", "chase_return_pct"):
            if not is_number(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"EnvConfig.{name} must be a number >= 0, got {getattr(self, name)!r}")
        if self.premium_budget is not None and (not is_number(self.premium_budget) or self.premium_budget <= 0):
            raise ValueError(f"EnvConfig.premium_budget must be a number > 0 or null, got {self.premium_budget!r}")
        if not is_number(self.pnl_scale) or self.pnl_scale <= 0:
            raise ValueError(f"EnvConfig.pnl_scale must be a number > 0, got {self.pnl_scale!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EnvConfig:
        """Build from a YAML mapping; unknown keys raise ValueError."""
        return cls(**known_keys(cls, data, where="env"))

    def to_dict(self) -> dict[str, Any]:
        """Every setting, the risk and contract rules as their resolved values."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("risk", "contract")}
        risk = {f.name: getattr(self.risk, f.name) for f in fields(self.risk)}
        risk["tiers"], risk["tier_exits"] = list(self.risk.tiers), list(self.risk.tier_exits)
        contract = {f.name: getattr(self.contract, f.name) for f in fields(self.contract)}
        return {"risk": risk, "contract": contract, **out}


@dataclass(frozen=True)
class EvaluationConfig:
    """How held-out sessions are judged: the momentum baseline's signal, the collapse and stop thresholds."""

    breakout_feature: str = "range_pos_30"  # the momentum baseline buys a call when this feature of the last
    breakout_level: float = 0.95  # minute is >= level, a put when it is <= -level (the same stop and tiers)
    max_hold_share: float = 0.87  # HOLD above this share of decisions, while a baseline trades profitably ...
    collapse_trade_share: float = 0.5  # ... and the agent trades under this share of its trades: collapse
    stop_slippage: float = 0.10  # a stopped trade may sell this share of premium below its triggering mark
    confidence: float = 0.9  # of the intervals on mean session P&L
    mismatch_share: float = 0.5  # the train/eval mismatch check (rl.core.mismatch)
    rare_share: float = 0.05

    def __post_init__(self) -> None:
        if not isinstance(self.breakout_feature, str) or not self.breakout_feature:
            raise ValueError(f"evaluation.breakout_feature must name a feature, got {self.breakout_feature!r}")
        if not is_number(self.breakout_level) or self.breakout_level <= 0:
            raise ValueError(f"evaluation.breakout_level must be a number > 0, got {self.breakout_level!r}")
        for name in ("max_hold_share", "collapse_trade_share", "confidence", "mismatch_share", "rare_share"):
            if not is_number(getattr(self, name)) or not 0 < getattr(self, name) < 1:
                raise ValueError(f"evaluation.{name} must be in (0, 1), got {getattr(self, name)!r}")
        if not is_number(self.stop_slippage) or not 0 <= self.stop_slippage < 1:
            raise ValueError(f"evaluation.stop_slippage must be in [0, 1), got {self.stop_slippage!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EvaluationConfig:
        return cls(**known_keys(cls, data, where="evaluation"))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
