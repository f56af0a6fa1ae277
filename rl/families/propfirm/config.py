"""Typed, validated settings of the prop-firm env and its evaluation; a bad value fails at load time, naming it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from typing import Any

from rl.core.config import config_file, is_int, is_number, known_keys
from rl.families.propfirm.rules import RuleBook, load_rulebook


def _rulebook(value: Any) -> tuple[RuleBook, str]:
    """A rule book from a file name in the configs folder, its resolved values, or a RuleBook; and its file name."""
    if isinstance(value, RuleBook):
        return value, ""
    if isinstance(value, str):
        return load_rulebook(config_file(value, "env.rulebook")), value
    if isinstance(value, Mapping):
        return RuleBook.from_dict(value), ""
    raise ValueError(f"env.rulebook must name a rule book file (rulebooks/<name>.yaml), got {value!r}")


@dataclass(frozen=True)
class EnvConfig:
    """How the agent trades one futures root's front contract under a rule book, day after day.

    The resolved rule book is part of these settings: its values (and so its sha256) are in every checkpoint's
    config, and editing the file changes the training version, which retrains the models.
    """

    rulebook: Any  # a RuleBook; in YAML the file name, e.g. rulebooks/apex_50k_intraday.yaml
    max_contracts: int = 2  # the agent's own size limit (the rule book's applies too); actions are -N..N contracts
    trade_from: str = "09:30"  # first bar the agent may trade, in the rule book's time zone (flat before)
    slippage_ticks: float = 0.25  # per contract and side, on top of half the spread (charged in spread_cost)
    commission_per_contract: float | None = None  # $ a side; None = the instrument's own (ES $2.25)
    episode_days: int | None = None  # end an account episode after this many days (phase 1: 1); None = never
    episode_bars: tuple[int, int] | None = None  # random windows of this many bars (seed 002's short episodes)
    enforce_drawdown: bool = True  # false relaxes the trailing drawdown (a curriculum's first phase)
    pnl_scale: float = 1_000.0  # divisor of $ values in the observation
    rulebook_file: str = field(default="", compare=False)  # the file it came from (shown, not versioned: the
    # rule book's own values are)

    def __post_init__(self) -> None:
        book, path = _rulebook(self.rulebook)
        object.__setattr__(self, "rulebook", book)
        if path and not self.rulebook_file:
            object.__setattr__(self, "rulebook_file", path)
        if not is_int(self.max_contracts) or self.max_contracts < 1:
            raise ValueError(f"EnvConfig.max_contracts must be a positive integer, got {self.max_contracts!r}")
        try:
            start = time.fromisoformat(str(self.trade_from))
        except ValueError:
            raise ValueError(f"EnvConfig.trade_from must be a local time HH:MM, got {self.trade_from!r}") from None
        if start >= book.entry_cutoff_time:
            raise ValueError(f"EnvConfig.trade_from ({self.trade_from}) must be before the entry cutoff")
        if not is_number(self.slippage_ticks) or self.slippage_ticks < 0:
            raise ValueError(f"EnvConfig.slippage_ticks must be a number >= 0, got {self.slippage_ticks!r}")
        if self.commission_per_contract is not None and (
            not is_number(self.commission_per_contract) or self.commission_per_contract < 0
        ):
            raise ValueError("EnvConfig.commission_per_contract must be a number >= 0 or null")
        if self.episode_days is not None and (not is_int(self.episode_days) or self.episode_days < 1):
            raise ValueError(f"EnvConfig.episode_days must be a positive integer or null, got {self.episode_days!r}")
        if self.episode_bars is not None:
            bars = tuple(self.episode_bars) if isinstance(self.episode_bars, list | tuple) else ()
            if len(bars) != 2 or not all(is_int(b) and b >= 2 for b in bars) or bars[0] > bars[1]:
                raise ValueError(f"EnvConfig.episode_bars must be [min, max] bars >= 2, got {self.episode_bars!r}")
            object.__setattr__(self, "episode_bars", (int(bars[0]), int(bars[1])))
        if not isinstance(self.enforce_drawdown, bool):
            raise ValueError("EnvConfig.enforce_drawdown must be true or false")
        if not is_number(self.pnl_scale) or self.pnl_scale <= 0:
            raise ValueError(f"EnvConfig.pnl_scale must be a number > 0, got {self.pnl_scale!r}")

    @property
    def trade_from_time(self) -> time:
        return time.fromisoformat(self.trade_from)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EnvConfig:
        """Build from a YAML mapping; unknown keys raise ValueError, and the rule book is required."""
        values = known_keys(cls, data, where="env")
        if "rulebook" not in values:
            raise ValueError("env: rulebook is required (e.g. rulebooks/apex_50k_intraday.yaml)")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, with the rule book's resolved values in place of its file name."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("rulebook", "rulebook_file")}
        out["episode_bars"] = list(self.episode_bars) if self.episode_bars else None
        return {"rulebook": self.rulebook.to_dict(), **out}


@dataclass(frozen=True)
class EvaluationConfig:
    """How each held-out slice is judged: account episodes from several start days, baselines under the same book."""

    starts_per_slice: int = 6  # account episodes per root per slice, from evenly spaced start days
    min_days_left: int = 5  # a start day leaves at least this many sessions of the slice to trade
    confidence: float = 0.9  # of the pass-rate intervals (Wilson)
    orb_minutes: int = 15  # opening-range breakout: the range's length after trade_from
    orb_stop_points: float = 8.0  # ... its fixed stop and target, in points
    orb_target_points: float = 12.0
    mismatch_share: float = 0.5  # the mismatch check fails when this share of evaluation episodes ends in a reason
    rare_share: float = 0.05  # ... that training ended fewer than this share of its episodes in

    def __post_init__(self) -> None:
        for name in ("starts_per_slice", "min_days_left", "orb_minutes"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"evaluation.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("orb_stop_points", "orb_target_points"):
            if not is_number(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"evaluation.{name} must be a number > 0, got {getattr(self, name)!r}")
        for name in ("confidence", "mismatch_share", "rare_share"):
            if not is_number(getattr(self, name)) or not 0 < getattr(self, name) < 1:
                raise ValueError(f"evaluation.{name} must be in (0, 1), got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EvaluationConfig:
        return cls(**known_keys(cls, data, where="evaluation"))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
