"""Metrics every family's evaluation uses: ranks and Spearman, Sharpe, drawdown, and category shares.

Pure numpy (no scipy): Spearman is the Pearson correlation of average ranks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

TRADING_DAYS_PER_YEAR = 252


def rankdata(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks, ties get the average of the ranks they span (scipy.stats.rankdata 'average')."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    n = len(x)
    # Start index of each run of equal values, and the run each sorted position belongs to.
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = sorted_x[1:] != sorted_x[:-1]
    run_id = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    ends = np.append(starts[1:], n)  # exclusive
    avg_rank = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = avg_rank[run_id]
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation; NaN when undefined (fewer than 3 pairs or a constant side)."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"spearman needs two 1-D arrays of equal length, got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 3:
        return float("nan")
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb / denom) if denom > 0 else float("nan")


def reward_pnl_alignment(
    rewards: Sequence[float] | np.ndarray, pnls: Sequence[float] | np.ndarray, min_rho: float = 0.0
) -> dict[str, Any]:
    """Fail when episode rewards and net P&L rank episodes in opposite order (Spearman < `min_rho`): seed 004's
    reward that rose while the money fell, checked the same way in every family.

    Undefined correlation (fewer than 3 episodes, or rewards or P&L constant, e.g. a policy that never trades)
    is not evidence of misalignment and passes, with the reason in `detail`.
    """
    rho = spearman(rewards, pnls)
    n = int(np.isfinite(np.asarray(rewards, float)).sum())
    if math.isnan(rho):
        return {
            "passed": True,
            "value": None,
            "threshold": min_rho,
            "episodes": n,
            "detail": "Spearman undefined (< 3 episodes or constant reward/P&L): nothing to misalign",
        }
    passed = rho >= min_rho
    return {
        "passed": bool(passed),
        "value": rho,
        "threshold": min_rho,
        "episodes": n,
        "detail": f"Spearman(reward, net P&L) over {n} episodes = {rho:+.3f} ({'>=' if passed else '<'} {min_rho})",
    }


def sharpe_ratio(daily_pnl: Sequence[float] | np.ndarray, periods: int = TRADING_DAYS_PER_YEAR) -> float:
    """Annualised Sharpe of daily P&L: mean / std (ddof=1) * sqrt(252); NaN with < 2 days or zero variance."""
    x = np.asarray(daily_pnl, dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    sd = float(x.std(ddof=1))
    if not sd > 1e-12:
        return float("nan")
    return float(x.mean() / sd * math.sqrt(periods))


def max_drawdown(equity: Sequence[float] | np.ndarray) -> float:
    """Largest peak-to-trough fall of an equity path ($, >= 0), measured from its first value on."""
    e = np.asarray(equity, dtype=np.float64)
    if len(e) == 0:
        return 0.0
    return float(np.max(np.maximum.accumulate(e) - e))


def share_distribution(
    counts: Sequence[float] | np.ndarray | Mapping[str, float], names: Sequence[str]
) -> dict[str, float]:
    """Share of each named category (counts in `names` order, or a name -> count mapping); zeros if empty."""
    if isinstance(counts, Mapping):
        unknown = sorted(set(counts) - set(names))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; expected {list(names)}")
        c = np.array([float(counts.get(name, 0.0)) for name in names])
    else:
        c = np.asarray(counts, dtype=np.float64).reshape(-1)
        if len(c) != len(names):
            raise ValueError(f"expected {len(names)} counts ({', '.join(names)}), got {len(c)}")
    if np.any(c < 0) or not np.all(np.isfinite(c)):
        raise ValueError("counts must be finite and >= 0")
    total = c.sum()
    shares = c / total if total > 0 else np.zeros_like(c)
    return {name: float(v) for name, v in zip(names, shares, strict=True)}
