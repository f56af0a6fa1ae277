"""Funding-rate arbitrage family: hourly cross-exchange perp data, two-leg accounting and masked envs."""
