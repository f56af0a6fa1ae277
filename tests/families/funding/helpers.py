"""Helpers shared by the funding-family tests."""

from __future__ import annotations

import numpy as np

from rl.families.funding.accounting import FundingLedger
from rl.families.funding.config import TradingConfig
from rl.families.funding.data import FundingDays


def make_ledger(days: FundingDays, n: int = 1, **trading) -> FundingLedger:
    """A ledger of `n` flat accounts (5 slots) set up with one TradingConfig (defaults overridden by `trading`)."""
    led = FundingLedger(days, n, 5)
    tc = TradingConfig(**trading)
    one = np.ones(n)
    led.configure(
        slice(None),
        one * tc.leverage,
        one * tc.target_utilization,
        (one * tc.max_positions).astype(np.int64),
        one * tc.liquidation_buffer,
        one * tc.taker_fee_bps,
        one * tc.liquidation_fee_bps,
        one * tc.initial_equity,
    )
    return led
