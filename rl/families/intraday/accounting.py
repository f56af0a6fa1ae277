"""The intraday family's side of the shared ledger (`rl.core.accounting`): its done reasons and its exit rule.

An episode is one (symbol, session). The day ends at the loss cut or the profit lock, judged on the day's net P&L
marked at the bar's close before exit costs (the loss cut wins a tie), or at the session's last bar; the ledger
liquidates the position at that close, with costs.
"""

from __future__ import annotations

import numpy as np

from rl.core.accounting import COMPONENT_NAMES, COMPONENTS, Index, Ledger
from rl.families.intraday.config import EnvConfig

__all__ = ["COMPONENTS", "COMPONENT_NAMES", "DONE_REASONS", "DayExits", "Ledger", "day_ledger"]

DONE_REASONS: tuple[str, ...] = ("", "loss_cut", "profit_lock", "end_of_data")  # indexed by the done code
LOSS_CUT, PROFIT_LOCK, END_OF_DATA = 1, 2, 3


class DayExits:
    """The intraday exit rule: loss cut, then profit lock, then the data end (0 running)."""

    def __init__(self, cfg: EnvConfig) -> None:
        self._loss_cut = None if cfg.loss_cut is None else float(cfg.loss_cut)
        self._profit_lock = None if cfg.profit_lock is None else float(cfg.profit_lock)

    def __call__(self, sel: Index, eq_mark: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        code = np.where(truncated, np.int8(END_OF_DATA), np.int8(0))
        if self._profit_lock is not None:
            code = np.where(eq_mark >= self._profit_lock, np.int8(PROFIT_LOCK), code)
        if self._loss_cut is not None:
            code = np.where(eq_mark <= self._loss_cut, np.int8(LOSS_CUT), code)
        return code


def day_ledger(n: int, cfg: EnvConfig) -> Ledger:
    """N intraday accounts on the shared ledger with the intraday exit rule."""
    return Ledger(n, DayExits(cfg))
