"""Trading metrics of an evaluation and the two checks that catch the seed failures.

- `action_collapse`: seed 003's agent drifted into one action (87% HOLD) while its reward looked fine.
- `reward_pnl_alignment`: seed 004's reward rose to +8,112 while P&L was -1.39%; across held-out episodes,
  reward and net P&L must rank episodes the same way (Spearman >= 0).

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rl.core.metrics import max_drawdown, rankdata, reward_pnl_alignment, share_distribution, sharpe_ratio, spearman
from rl.families.intraday.baselines import ACTION_NAMES
from rl.families.intraday.evaluate import POSITION_NAMES

if TYPE_CHECKING:
    from rl.families.intraday.evaluate import EvalResult

__all__ = [
    "POSITION_NAMES",
    "action_collapse",
    "action_distribution",
    "daily_pnl",
    "max_drawdown",
    "policy_metrics",
    "portfolio_equity",
    "portfolio_path",
    "position_distribution",
    "rankdata",
    "reward_pnl_alignment",
    "run_checks",
    "sharpe_ratio",
    "spearman",
]


def daily_pnl(result: EvalResult) -> tuple[np.ndarray, np.ndarray]:
    """(sorted session dates as datetime64[D], net P&L per session summed over the traded symbols)."""
    dates = np.array([np.datetime64(ep.date, "D") for ep in result.episodes], dtype="datetime64[D]")
    pnl = np.array([ep.net_pnl for ep in result.episodes], dtype=np.float64)
    uniq, inverse = np.unique(dates, return_inverse=True)
    return uniq, np.bincount(inverse, weights=pnl, minlength=len(uniq))


def portfolio_path(result: EvalResult) -> tuple[np.ndarray, np.ndarray]:
    """(x, equity): minute-by-minute net equity over the held-out sessions in date order, symbols summed.

    Starts at (0, 0); session k spans x in (k, k+1]. Within a session each symbol's curve is held at its last
    value after it ends early (loss cut, profit lock).
    """
    by_date: dict[np.datetime64, list[np.ndarray]] = {}
    for ep in result.episodes:
        by_date.setdefault(np.datetime64(ep.date, "D"), []).append(np.asarray(ep.equity, dtype=np.float64))
    xs, ys = [np.zeros(1)], [np.zeros(1)]
    level = 0.0
    for k, d in enumerate(sorted(by_date)):
        curves = [c if len(c) else np.zeros(1) for c in by_date[d]]
        width = max(len(c) for c in curves)
        day = np.zeros(width)
        for c in curves:
            day[: len(c)] += c
            day[len(c) :] += c[-1]
        xs.append(k + np.arange(1, width + 1) / width)
        ys.append(level + day)
        level += float(day[-1])
    return np.concatenate(xs), np.concatenate(ys)


def portfolio_equity(result: EvalResult) -> np.ndarray:
    """Minute-by-minute net equity over the held-out sessions (see `portfolio_path`), starting at 0."""
    return portfolio_path(result)[1]


def action_distribution(counts: Sequence[float] | np.ndarray | Mapping[str, float]) -> dict[str, float]:
    """Share of decisions per action (HOLD, BUY, SELL, CLOSE)."""
    return share_distribution(counts, ACTION_NAMES)


def position_distribution(counts: Sequence[float] | np.ndarray | Mapping[str, float]) -> dict[str, float]:
    """Share of decisions per chosen position (SHORT, FLAT, LONG)."""
    return share_distribution(counts, POSITION_NAMES)


def policy_metrics(result: EvalResult) -> dict[str, float]:
    """Flat dict of scalar metrics of one policy's evaluation (report tables, warehouse rows)."""
    eps = result.episodes
    _, per_day = daily_pnl(result)
    net = np.array([ep.net_pnl for ep in eps], dtype=np.float64)
    rewards = np.array([ep.total_reward for ep in eps], dtype=np.float64)
    round_trips = int(sum(ep.round_trips for ep in eps))
    wins = int(sum(ep.wins for ep in eps))
    dist = action_distribution(result.action_counts)
    positions = position_distribution(result.position_counts)
    out: dict[str, float] = {
        "episodes": float(len(eps)),
        "sessions": float(len(per_day)),
        "total_pnl": float(net.sum()),
        "mean_daily_pnl": float(per_day.mean()) if len(per_day) else 0.0,
        "std_daily_pnl": float(per_day.std(ddof=1)) if len(per_day) > 1 else float("nan"),
        "sharpe": sharpe_ratio(per_day),
        "max_drawdown": max_drawdown(portfolio_equity(result)),
        "positive_day_rate": float(np.mean(per_day > 0)) if len(per_day) else float("nan"),
        "win_rate": wins / round_trips if round_trips else float("nan"),
        "round_trips": float(round_trips),
        "trades_per_day": round_trips / len(eps) if eps else 0.0,
        "gross_pnl": float(sum(ep.gross_pnl for ep in eps)),
        "commission": float(sum(ep.commission for ep in eps)),
        "spread_cost": float(sum(ep.spread_cost for ep in eps)),
        "total_reward": float(rewards.sum()),
        "mean_episode_reward": float(rewards.mean()) if len(rewards) else 0.0,
        "reward_pnl_spearman": spearman(rewards, net),
    }
    out.update({f"action_{name}": share for name, share in dist.items()})
    out.update({f"position_{name}": share for name, share in positions.items()})
    return out


def action_collapse(dist: Mapping[str, float], max_share: float = 0.9) -> dict[str, Any]:
    """Fail when one category takes more than `max_share` of all decisions (seed 003's HOLD collapse).

    `dist` maps category -> count or share (normalised here), e.g. `action_distribution(...)`.
    """
    values = {str(k): float(v) for k, v in dist.items()}
    total = sum(values.values())
    if not values or total <= 0:
        return {
            "passed": False,
            "value": None,
            "threshold": max_share,
            "action": None,
            "detail": "no decisions",
        }
    top = max(values, key=values.get)
    share = values[top] / total
    passed = share <= max_share
    detail = f"{top} is {share:.1%} of decisions ({'<=' if passed else '>'} {max_share:.0%} allowed)"
    return {"passed": bool(passed), "value": share, "threshold": max_share, "action": top, "detail": detail}


def run_checks(
    result: EvalResult, max_share: float = 0.9, min_rho: float = 0.0, collapse_basis: str = "position"
) -> dict[str, dict[str, Any]]:
    """Both checks on one policy's held-out evaluation, keyed by the asset-check names.

    `collapse_basis="position"` (default) judges the position each decision chooses (HOLD = keep the current
    one): a policy that is always flat (seed 003), always long or always short fails, while a policy that
    holds positions for many minutes does not. `"action"` judges the raw HOLD/BUY/SELL/CLOSE shares, which
    flags any low-turnover strategy (the SMA crossover baseline HOLDs ~94% of minutes).
    """
    if collapse_basis == "position":
        dist = position_distribution(result.position_counts)
    elif collapse_basis == "action":
        dist = action_distribution(result.action_counts)
    else:
        raise ValueError(f"collapse_basis must be 'position' or 'action', got {collapse_basis!r}")
    collapse = action_collapse(dist, max_share)
    collapse["basis"] = collapse_basis
    return {
        "action_collapse": collapse,
        "reward_pnl_alignment": reward_pnl_alignment(result.total_reward, result.net_pnl, min_rho),
    }
