"""0DTE options scalping family (seed 003): chain arrays, env, risk rules, baselines, audit, evaluation, report."""

from rl.families.zerodte.family import ZeroDteFamily

FAMILY = ZeroDteFamily()
