"""Funding-rate arbitrage family (seeds 001, 004): hourly cross-exchange perp data, two-leg accounting, envs."""

from rl.families.funding.family import FundingFamily

FAMILY = FundingFamily()
