"""Typed, validated settings of the intraday environment: a bad value fails at load time with a clear message."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rl.core.config import from_dict, is_int, is_number


@dataclass(frozen=True)
class EnvConfig:
    """Trading rules and costs of the intraday environment: one unit long, flat or short.

    A unit is `shares` shares of an equity or ETF, or `contracts` contracts of a future, whose P&L uses the
    instrument's point value (ES: $50 a point) from market/symbols.py.
    """

    shares: int = 100  # shares per unit of position of an equity or ETF; position is -1, 0 or +1 unit
    commission_per_share: float = 0.005  # $ per share traded
    min_commission: float = 1.0  # $ minimum per share order (futures pay per contract, no minimum)
    contracts: int = 1  # contracts per unit of position of a future
    commission_per_contract: float | None = None  # $ per contract traded; None = the instrument's own commission
    loss_cut: float | None = -100.0  # end the day when day net P&L <= this ($); None = off
    profit_lock: float | None = 200.0  # end the day when day net P&L >= this ($); None = off
    warmup_minutes: int = 30  # first decision index (features need history)
    flat_minutes_before_close: int = 5  # last minutes in which only HOLD/CLOSE are allowed
    pnl_scale: float = 100.0  # divisor of $ values in the observation (keeps them O(1))

    def __post_init__(self) -> None:
        for name in ("shares", "contracts"):
            value = getattr(self, name)
            if not is_int(value) or value <= 0:
                raise ValueError(f"EnvConfig.{name} must be a positive integer, got {value!r}")
        if self.commission_per_contract is not None and (
            not is_number(self.commission_per_contract) or self.commission_per_contract < 0
        ):
            raise ValueError(
                f"EnvConfig.commission_per_contract must be a finite number >= 0 or None, "
                f"got {self.commission_per_contract!r}"
            )
        for name in ("commission_per_share", "min_commission"):
            value = getattr(self, name)
            if not is_number(value) or value < 0:
                raise ValueError(f"EnvConfig.{name} must be a finite number >= 0, got {value!r}")
        if self.loss_cut is not None and (not is_number(self.loss_cut) or self.loss_cut >= 0):
            raise ValueError(f"EnvConfig.loss_cut must be a finite negative number or None, got {self.loss_cut!r}")
        if self.profit_lock is not None and (not is_number(self.profit_lock) or self.profit_lock <= 0):
            raise ValueError(
                f"EnvConfig.profit_lock must be a finite positive number or None, got {self.profit_lock!r}"
            )
        for name in ("warmup_minutes", "flat_minutes_before_close"):
            value = getattr(self, name)
            if not is_int(value) or value < 0:
                raise ValueError(f"EnvConfig.{name} must be an integer >= 0, got {value!r}")
        if not is_number(self.pnl_scale) or self.pnl_scale <= 0:
            raise ValueError(f"EnvConfig.pnl_scale must be a finite number > 0, got {self.pnl_scale!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EnvConfig:
        """Build from a YAML mapping; unknown keys raise ValueError."""
        return from_dict(cls, data, where="env")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (the resolved config written next to a checkpoint)."""
        return dataclasses.asdict(self)
