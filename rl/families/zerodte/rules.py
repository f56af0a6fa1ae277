"""Seed 003's risk rules for a same-day option position, as small pure functions over numpy arrays.

A position is bought at `entry` premium. Its take-profit tiers are gains on that premium (+20%, +30%, ... +200%):
each tier is hit once, the first bar whose best premium reaches it, and a tier may carry an automatic partial
exit (sell that share of what is still held). A hard stop sells everything once the premium's low reaches
`-stop` of entry. After an exit, the symbol rests for `cooldown_minutes` before a new entry (rotation). At the
close the position is either flattened before it or settled in cash at its intrinsic value.

Every function takes arrays (a scalar works too) so the batched env applies exactly what the tests check by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl.core.config import is_int, is_number, known_keys

SETTLEMENTS = ("flat_before_close", "cash_at_expiry")


@dataclass(frozen=True)
class RiskRules:
    """Take-profit tiers with their automatic exits, the hard stop, the rotation cooldown and the settlement."""

    tiers: tuple[float, ...] = (0.2, 0.3, 0.5, 0.7, 1.0, 2.0)  # gains on the entry premium
    tier_exits: tuple[float, ...] = (0.0, 0.0, 0.5, 0.0, 0.7, 1.0)  # share of the remaining position sold at each
    stop: float = 0.15  # the hard stop: sell all when the premium falls this share below entry
    cooldown_minutes: int = 5  # a symbol exited rests this long before a new entry
    settlement: str = "flat_before_close"  # or cash_at_expiry: held to the close and settled at intrinsic
    flat_minutes_before_close: int = 5  # flat_before_close: the last minutes in which the position is closed

    def __post_init__(self) -> None:
        tiers = tuple(float(t) for t in self.tiers) if isinstance(self.tiers, list | tuple) else ()
        exits = tuple(float(x) for x in self.tier_exits) if isinstance(self.tier_exits, list | tuple) else ()
        if not tiers or any(not is_number(t) or t <= 0 for t in tiers) or list(tiers) != sorted(set(tiers)):
            raise ValueError(f"risk.tiers must be increasing positive gains, got {self.tiers!r}")
        if len(exits) != len(tiers) or any(not is_number(x) or not 0 <= x <= 1 for x in exits):
            raise ValueError(f"risk.tier_exits must give a share in [0, 1] for each of the {len(tiers)} tiers")
        if not is_number(self.stop) or not 0 < self.stop < 1:
            raise ValueError(f"risk.stop must be a share of the premium in (0, 1), got {self.stop!r}")
        for name in ("cooldown_minutes", "flat_minutes_before_close"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"risk.{name} must be an integer >= 0, got {getattr(self, name)!r}")
        if self.settlement not in SETTLEMENTS:
            raise ValueError(f"risk.settlement must be one of {', '.join(SETTLEMENTS)}, got {self.settlement!r}")
        object.__setattr__(self, "tiers", tiers)
        object.__setattr__(self, "tier_exits", exits)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> RiskRules:
        return cls(**known_keys(cls, raw, where="risk"))


def tiers_reached(entry: np.ndarray | float, best: np.ndarray | float, rules: RiskRules) -> np.ndarray:
    """[..., n_tiers] bool: which tiers the best premium since entry has reached (a touch counts)."""
    gain = np.asarray(best, dtype=np.float64) / np.asarray(entry, dtype=np.float64) - 1.0
    return gain[..., None] >= np.asarray(rules.tiers) - 1e-12


def exit_share(newly_hit: np.ndarray, rules: RiskRules) -> np.ndarray:
    """The share of the position still held that the tiers hit on this bar sell: each tier's exit applies to
    what the tier before it left (1 - prod(1 - exit))."""
    keep = np.prod(np.where(newly_hit, 1.0 - np.asarray(rules.tier_exits), 1.0), axis=-1)
    return 1.0 - keep


def stop_hit(entry: np.ndarray | float, low: np.ndarray | float, rules: RiskRules) -> np.ndarray:
    """True where the premium's low reached the hard stop (-stop of entry; a touch stops)."""
    return np.asarray(low, dtype=np.float64) <= np.asarray(entry, dtype=np.float64) * (1.0 - rules.stop) + 1e-12


def stop_loss_beyond(entry: np.ndarray | float, exit_price: np.ndarray | float, rules: RiskRules) -> np.ndarray:
    """How far a stopped exit fell beyond the stop, as a share of entry (0 when it filled at or above the stop)."""
    stop_price = np.asarray(entry, dtype=np.float64) * (1.0 - rules.stop)
    return np.maximum(stop_price - np.asarray(exit_price, dtype=np.float64), 0.0) / np.asarray(entry)


def stop_gap_and_slippage(
    entry: np.ndarray | float, mark: np.ndarray | float, exit_price: np.ndarray | float, rules: RiskRules
) -> tuple[np.ndarray, np.ndarray]:
    """A stopped exit's loss beyond the stop in two parts, each a share of entry, summing to `stop_loss_beyond`:
    the gap (the first mark at or below the stop already lay this far past it: the market moved through the stop
    between minute marks, which no resting order avoids) and the slippage (the fill below that mark: the half
    spread paid to sell at the bid). The stop-reliability check judges the slippage; the gap is reported."""
    entry = np.asarray(entry, dtype=np.float64)
    stop_price = entry * (1.0 - rules.stop)
    mark, exit_price = np.asarray(mark, dtype=np.float64), np.asarray(exit_price, dtype=np.float64)
    gap = np.maximum(stop_price - mark, 0.0) / entry
    return gap, stop_loss_beyond(entry, exit_price, rules) - gap


def can_enter(minute: np.ndarray | int, last_exit: np.ndarray | int, rules: RiskRules) -> np.ndarray:
    """True where a symbol's last exit (minute index; negative = never) lies at least `cooldown_minutes` back."""
    last_exit = np.asarray(last_exit)
    return (last_exit < 0) | (np.asarray(minute) - last_exit >= rules.cooldown_minutes)


def must_flatten(minutes_to_close: np.ndarray | float, rules: RiskRules) -> np.ndarray:
    """True where a flat-before-close book closes the position now (never on a cash-settled one)."""
    if rules.settlement != "flat_before_close":
        return np.zeros(np.shape(minutes_to_close), dtype=bool)
    return np.asarray(minutes_to_close) <= rules.flat_minutes_before_close


def settlement_value(is_call: np.ndarray | bool, strike: np.ndarray | float, spot: np.ndarray | float) -> np.ndarray:
    """The cash an expiring option pays per unit of premium: its intrinsic value at the closing print."""
    strike, spot = np.asarray(strike, dtype=np.float64), np.asarray(spot, dtype=np.float64)
    return np.where(is_call, np.maximum(spot - strike, 0.0), np.maximum(strike - spot, 0.0))


def tier_names(rules: RiskRules) -> Sequence[str]:
    """Report names of the tiers: tp_20, tp_30, ..."""
    return tuple(f"tp_{round(t * 100)}" for t in rules.tiers)


@dataclass(frozen=True)
class ContractRule:
    """Which contract a BUY_CALL or BUY_PUT takes from the minute's chain: the one nearest `target_delta` (in
    absolute delta) among those quoting at least `min_premium` with at least `min_volume` traded."""

    target_delta: float = 0.5
    min_premium: float = 0.10
    min_volume: float = 0.0

    def __post_init__(self) -> None:
        if not is_number(self.target_delta) or not 0 < self.target_delta < 1:
            raise ValueError(f"contract.target_delta must be in (0, 1), got {self.target_delta!r}")
        for name in ("min_premium", "min_volume"):
            if not is_number(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"contract.{name} must be a number >= 0, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> ContractRule:
        return cls(**known_keys(cls, raw, where="contract"))


def choose_contract(
    delta: np.ndarray,
    ask: np.ndarray,
    volume: np.ndarray | None,
    is_call: np.ndarray,
    want_call: bool,
    rule: ContractRule,
) -> np.ndarray:
    """The index along the last axis (a minute's chain; [..., K] picks for many minutes at once) of the contract a
    buy takes, or -1 where none qualifies. A NaN delta or ask (no quote) never qualifies; ties go to the cheaper."""
    delta, ask = np.asarray(delta, dtype=np.float64), np.asarray(ask, dtype=np.float64)
    ok = (np.asarray(is_call) == want_call) & np.isfinite(delta) & (ask >= rule.min_premium)
    if volume is not None:
        ok &= np.asarray(volume) >= rule.min_volume
    distance = np.where(ok, np.abs(np.abs(delta) - rule.target_delta), np.inf)
    near = ok & (distance <= distance.min(axis=-1, keepdims=True) + 1e-9)  # equally near, to float noise
    pick = np.argmin(np.where(near, ask, np.inf), axis=-1)
    return np.where(ok.any(axis=-1), pick, -1)
