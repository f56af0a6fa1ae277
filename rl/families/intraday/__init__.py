"""Intraday equities family (seed 000): env, accounting, baselines, audit target, evaluation, metrics, report."""

from rl.families.intraday.family import IntradayFamily

FAMILY = IntradayFamily()
