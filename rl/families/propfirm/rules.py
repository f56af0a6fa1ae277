"""A funded-account rule book: declarative YAML, validated into a frozen `RuleBook`, judged by small pure functions.

Each rule is one function over numpy arrays (a scalar works too), so the env applies to N accounts exactly the
rule the tests check by hand. Money is in the account's currency; times are local wall-clock times in the rule
book's `timezone` (the firms state them in US Eastern time).

Firms such as Apex forbid automated trading on their accounts. This rule book drives a simulator for research and
rehearsal; nothing here places orders.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from rl.core.config import is_int, is_number, known_keys, read_yaml

TRAILING_MODES = ("intraday", "end_of_day")
DAILY_LOSS_ACTIONS = ("pause", "breach")


def _clock(value: Any, where: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{where} must be a local time HH:MM, got {value!r}") from None


@dataclass(frozen=True)
class RuleBook:
    """The rules of one funded-account evaluation (see configs/rulebooks/ for the shipped ones)."""

    name: str
    description: str = ""
    start_balance: float = 50_000.0  # the account opens with this balance
    profit_target: float = 3_000.0  # pass at start_balance + this (with enough qualifying days)
    trailing_drawdown: float = 2_500.0  # the threshold trails this far below the peak
    trailing: str = "intraday"  # intraday: the peak includes open profit, bar by bar; end_of_day: closing balances
    trail_stop_offset: float | None = 100.0  # the threshold stops trailing at start_balance + this; null = never
    daily_loss_limit: float | None = None  # a loss this large from the day's opening balance ...; null = none
    daily_loss_action: str = "pause"  # ... pauses trading for the rest of the day, or breaches the account
    max_contracts: float = 10.0  # in minis; a micro counts as micro_ratio of a mini
    micro_ratio: float = 0.1
    flat_by: str = "16:59"  # every position is closed at this local time
    entry_cutoff: str = "16:30"  # our own rule: no new entries (or additions) after this local time
    timezone: str = "America/New_York"
    consistency_cap: float = 0.30  # best day at most this share of the total profit (reported, as for a payout)
    qualifying_days: int = 5  # trading days (days with a trade) needed before the account can pass

    def __post_init__(self) -> None:
        where = f"rule book {self.name!r}"
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"rule book: name must be an identifier, got {self.name!r}")
        for key in ("start_balance", "profit_target", "trailing_drawdown", "max_contracts"):
            if not is_number(getattr(self, key)) or getattr(self, key) <= 0:
                raise ValueError(f"{where}: {key} must be a number > 0, got {getattr(self, key)!r}")
        for key in ("trail_stop_offset", "daily_loss_limit"):
            value = getattr(self, key)
            if value is not None and (not is_number(value) or value < 0):
                raise ValueError(f"{where}: {key} must be a number >= 0 or null, got {value!r}")
        if self.trailing not in TRAILING_MODES:
            raise ValueError(f"{where}: trailing must be one of {', '.join(TRAILING_MODES)}, got {self.trailing!r}")
        if self.daily_loss_action not in DAILY_LOSS_ACTIONS:
            raise ValueError(f"{where}: daily_loss_action must be one of {', '.join(DAILY_LOSS_ACTIONS)}")
        if not is_number(self.micro_ratio) or not 0 < self.micro_ratio <= 1:
            raise ValueError(f"{where}: micro_ratio must be in (0, 1], got {self.micro_ratio!r}")
        if not is_number(self.consistency_cap) or not 0 < self.consistency_cap <= 1:
            raise ValueError(f"{where}: consistency_cap must be in (0, 1], got {self.consistency_cap!r}")
        if not is_int(self.qualifying_days) or self.qualifying_days < 1:
            raise ValueError(f"{where}: qualifying_days must be an integer >= 1, got {self.qualifying_days!r}")
        if self.trail_stop_offset is not None and self.trail_stop_offset >= self.profit_target:
            raise ValueError(f"{where}: trail_stop_offset must be below profit_target")
        try:
            ZoneInfo(str(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{where}: unknown timezone {self.timezone!r}") from None
        if self.entry_cutoff_time > self.flat_by_time:
            raise ValueError(f"{where}: entry_cutoff ({self.entry_cutoff}) is after flat_by ({self.flat_by})")

    @property
    def flat_by_time(self) -> time:
        return _clock(self.flat_by, f"rule book {self.name!r}: flat_by")

    @property
    def entry_cutoff_time(self) -> time:
        return _clock(self.entry_cutoff, f"rule book {self.name!r}: entry_cutoff")

    @property
    def sha256(self) -> str:
        """The version of the rules: sha256 of the resolved values (a comment or a reordering is the same book)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RuleBook:
        """Validate a YAML mapping; unknown keys are refused, naming the known ones."""
        values = known_keys(cls, raw, where="rule book")
        if "name" not in values:
            raise ValueError("rule book: name is required")
        return cls(**values)


def load_rulebook(path: str | Path) -> RuleBook:
    """Load and validate a rule book YAML; every problem is a ValueError naming the file."""
    path = Path(path)
    raw = read_yaml(path, "rule book")
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path.name}: expected a mapping of rules")
    try:
        return RuleBook.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path.name}: {exc}") from exc


# ---------------------------------------------------------------------------------------------------- the rules


def trailing_threshold(peak: np.ndarray | float, book: RuleBook) -> np.ndarray:
    """The balance at which the account fails: `trailing_drawdown` below the peak, no higher than start +
    `trail_stop_offset` (where it stops trailing). Peak 50,875 on the 50K book: 48,375."""
    threshold = np.asarray(peak, dtype=np.float64) - book.trailing_drawdown
    if book.trail_stop_offset is not None:
        threshold = np.minimum(threshold, book.start_balance + book.trail_stop_offset)
    return threshold


def intraday_peak(peak: np.ndarray | float, equity_high: np.ndarray | float, book: RuleBook) -> np.ndarray:
    """The peak the threshold trails during a day: on an intraday book the highest equity including open profit;
    on an end-of-day book it moves only at the close (`closing_peak`)."""
    if book.trailing == "intraday":
        return np.maximum(peak, equity_high)
    return np.asarray(peak, dtype=np.float64)


def closing_peak(peak: np.ndarray | float, closing_balance: np.ndarray | float) -> np.ndarray:
    """The peak after a day closes at `closing_balance` (both books: a closing balance is also an equity high)."""
    return np.maximum(peak, closing_balance)


def drawdown_breached(equity_low: np.ndarray | float, threshold: np.ndarray | float) -> np.ndarray:
    """True where equity touched the threshold (touching it fails the account)."""
    return np.asarray(equity_low) <= threshold


def daily_loss_hit(day_pnl_low: np.ndarray | float, book: RuleBook) -> np.ndarray:
    """True where the day's P&L from its opening balance reached minus the daily loss limit (never without one)."""
    if book.daily_loss_limit is None:
        return np.zeros(np.shape(day_pnl_low), dtype=bool)
    return np.asarray(day_pnl_low) <= -book.daily_loss_limit


def contract_units(minis: np.ndarray | int, micros: np.ndarray | int, book: RuleBook) -> np.ndarray:
    """Open contracts in minis: |minis| + micro_ratio * |micros|."""
    return np.abs(minis) + book.micro_ratio * np.abs(micros)


def max_position(book: RuleBook, micro: bool) -> int:
    """The most contracts of one instrument the limit allows (10 minis, or 100 micros at 0.1)."""
    return int(np.floor(book.max_contracts / (book.micro_ratio if micro else 1.0) + 1e-9))


def best_day_share(day_pnl: np.ndarray) -> float:
    """The best day's share of the total profit (NaN while the total is not a profit)."""
    day_pnl = np.asarray(day_pnl, dtype=np.float64)
    total = float(day_pnl.sum()) if day_pnl.size else 0.0
    return float(day_pnl.max()) / total if total > 0 else float("nan")


def consistent(day_pnl: np.ndarray, book: RuleBook) -> bool:
    """The payout-style consistency rule: the best day is at most `consistency_cap` of the total profit."""
    share = best_day_share(day_pnl)
    return bool(np.isfinite(share) and share <= book.consistency_cap + 1e-12)


def passed(balance: np.ndarray | float, trading_days: np.ndarray | int, book: RuleBook) -> np.ndarray:
    """True where the balance reached the profit target after at least `qualifying_days` trading days."""
    target = book.start_balance + book.profit_target
    return (np.asarray(balance) >= target) & (np.asarray(trading_days) >= book.qualifying_days)
