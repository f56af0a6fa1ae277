"""Metrics of a funding evaluation and the checks that catch this family's known failures.

- `reward_pnl_alignment`: seed 004's v2 reward averaged +8,112 per episode while P&L was -1.39%: its quality bonus
  paid for quoted APR whether or not it was earned. The check fails when reward and net P&L rank episodes in
  opposite order, or when the reward is positive in total while the money is negative, and names the reward
  components that produced the reward.
- `symbol_concentration`: the same agent took its trades in one illiquid symbol (COAIUSDT) whose quoted APR was
  never realised; fail when one symbol dominates the entries.
- `flat_collapse`: seed 003's collapse in this family is never holding a position (zero P&L, zero risk).

Pure numpy; Spearman is `rl.core.metrics.spearman`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from rl.core.metrics import share_distribution, spearman
from rl.families.funding.baselines import ACTION_KINDS

if TYPE_CHECKING:
    from rl.families.funding.evaluate import FundingEvalResult

__all__ = [
    "entry_counts",
    "flat_collapse",
    "funding_metrics",
    "funding_run_checks",
    "reward_part_totals",
    "reward_pnl_alignment",
    "symbol_breakdown",
    "symbol_concentration",
]


def entry_counts(result: FundingEvalResult) -> dict[str, int]:
    """Positions entered per symbol over all episodes, most entered first."""
    counts: dict[str, int] = {}
    for ep in result.episodes:
        for sym, c in ep.symbol_entries.items():
            counts[sym] = counts.get(sym, 0) + int(c)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _symbol_pnl(result: FundingEvalResult) -> dict[str, float]:
    pnl: dict[str, float] = {}
    for ep in result.episodes:
        for sym, v in ep.symbol_pnl.items():
            pnl[sym] = pnl.get(sym, 0.0) + float(v)
    return pnl


def reward_part_totals(result: FundingEvalResult) -> dict[str, float]:
    """Each reward component's weighted sum over all episodes (they add up to the total reward)."""
    totals: dict[str, float] = {}
    for ep in result.episodes:
        for comp, v in ep.reward_parts.items():
            totals[comp] = totals.get(comp, 0.0) + float(v)
    return totals


def _concentration(counts: dict[str, int]) -> tuple[str | None, float, float]:
    """(top symbol, its share of entries, Herfindahl index of entry shares); NaNs without entries."""
    total = sum(counts.values())
    if total == 0:
        return None, float("nan"), float("nan")
    shares = np.array(list(counts.values()), dtype=np.float64) / total
    top = max(counts, key=lambda s: (counts[s], s))
    return top, float(counts[top] / total), float(np.sum(shares**2))


def _sharpe(x: np.ndarray) -> float:
    if len(x) < 2:
        return float("nan")
    sd = float(x.std(ddof=1))
    return float(x.mean() / sd) if sd > 1e-12 else float("nan")


def funding_metrics(result: FundingEvalResult) -> dict[str, float]:
    """Flat dict of scalar metrics of one policy's evaluation (report tables, warehouse rows).

    `sharpe` is mean / std (ddof=1) of the episodes' P&L in percent, NOT annualised: episodes overlap in time
    (a 72-hour episode starts every 24 hours) and are played under several configs, so they are not independent
    periods that a sqrt(periods per year) factor would assume. `invested_share` is the share of decisions after
    which at least one position was open. `reward_part_<component>` are the reward's weighted component sums.
    """
    eps = result.episodes
    net = result.net_pnl
    pct = result.pnl_pct
    rewards = result.total_reward
    round_trips = int(sum(ep.round_trips for ep in eps))
    wins = int(sum(ep.wins for ep in eps))
    holds = [h for ep in eps for h in ep.hold_hours]
    decisions = int(sum(ep.steps for ep in eps))
    _, top_share, hhi = _concentration(entry_counts(result))
    out: dict[str, float] = {
        "episodes": float(len(eps)),
        "total_pnl": float(net.sum()),
        "mean_pnl_pct": float(pct.mean()) if len(eps) else 0.0,
        "median_pnl_pct": float(np.median(pct)) if len(eps) else 0.0,
        "positive_episode_rate": float(np.mean(net > 0)) if len(eps) else float("nan"),
        "win_rate": wins / round_trips if round_trips else float("nan"),
        "round_trips": float(round_trips),
        "trades_per_episode": round_trips / len(eps) if eps else 0.0,
        "avg_hold_hours": float(np.mean(holds)) if holds else float("nan"),
        "gross": float(sum(ep.gross for ep in eps)),
        "funding": float(sum(ep.funding for ep in eps)),
        "fees": float(sum(ep.fees for ep in eps)),
        "spread": float(sum(ep.spread for ep in eps)),
        "liquidations": float(sum(ep.liquidations for ep in eps)),
        "total_reward": float(rewards.sum()),
        "mean_episode_reward": float(rewards.mean()) if len(eps) else 0.0,
        "reward_pnl_spearman": spearman(rewards, net),
        "top_symbol_share": top_share,
        "symbol_hhi": hhi,
        "invested_share": sum(ep.invested_hours for ep in eps) / decisions if decisions else float("nan"),
        "sharpe": _sharpe(pct),
    }
    dist = share_distribution(result.action_counts, ACTION_KINDS)
    out.update({f"action_{name}": share for name, share in dist.items()})
    out.update({f"reward_part_{comp}": v for comp, v in reward_part_totals(result).items()})
    return out


def symbol_breakdown(result: FundingEvalResult) -> list[dict[str, Any]]:
    """Per symbol: entries, entry_share, net_pnl of its closed positions and pnl_share, largest |P&L| first.

    `pnl_share` is net_pnl / sum over symbols of |net_pnl| (signed, in [-1, 1]): a share of the total would blow
    up when winners and losers nearly cancel.
    """
    counts = entry_counts(result)
    pnl = _symbol_pnl(result)
    total_entries = sum(counts.values())
    total_abs = sum(abs(v) for v in pnl.values())
    rows = [
        {
            "symbol": sym,
            "entries": counts.get(sym, 0),
            "entry_share": counts.get(sym, 0) / total_entries if total_entries else 0.0,
            "net_pnl": pnl.get(sym, 0.0),
            "pnl_share": pnl.get(sym, 0.0) / total_abs if total_abs > 0 else 0.0,
        }
        for sym in set(counts) | set(pnl)
    ]
    return sorted(rows, key=lambda r: (-abs(r["net_pnl"]), -r["entries"], r["symbol"]))


def symbol_concentration(
    result: FundingEvalResult, max_top_share: float = 0.6, max_hhi: float = 0.5, min_entries: int = 5
) -> dict[str, Any]:
    """Fail when the most-entered symbol has more than `max_top_share` of all entries or the entries' Herfindahl
    index exceeds `max_hhi` (seed 004 spent its trades on one illiquid symbol). With fewer than `min_entries`
    entries there is nothing to judge: pass, saying so."""
    counts = entry_counts(result)
    total = sum(counts.values())
    top, share, hhi = _concentration(counts)
    base = {"threshold": max_top_share, "max_hhi": max_hhi, "entries": total, "symbol": top, "hhi": hhi}
    if total < min_entries:
        return {
            "passed": True,
            "value": share if total else None,
            **base,
            "detail": f"only {total} entries (< {min_entries}): too few to judge concentration",
        }
    passed = share <= max_top_share and hhi <= max_hhi
    pnl = _symbol_pnl(result).get(top, 0.0)
    detail = (
        f"{top} took {share:.0%} of {total} entries ({'<=' if share <= max_top_share else '>'} "
        f"{max_top_share:.0%} allowed), HHI {hhi:.2f} ({'<=' if hhi <= max_hhi else '>'} {max_hhi:.2f}); "
        f"its net P&L {pnl:+,.0f} $"
    )
    return {"passed": bool(passed), "value": share, **base, "detail": detail}


def _signed(value: float) -> str:
    return f"{value:+,.0f}" if abs(value) >= 10 else f"{value:+,.2f}"


def reward_pnl_alignment(result: FundingEvalResult, min_rho: float = 0.0) -> dict[str, Any]:
    """Fail when Spearman(episode reward, episode net P&L) < `min_rho`, or when the total reward is positive while
    the total net P&L is negative ("reward says win, money says loss"). The detail names the reward components
    that made the reward, largest first, e.g. "reward +8,112 = quality_bonus +9,300, pnl -1,000, ... vs net P&L
    -139 $". An undefined correlation (fewer than 3 episodes, a constant side) does not fail on its own."""
    rewards, pnls = result.total_reward, result.net_pnl
    rho = spearman(rewards, pnls)
    total_reward, total_pnl = float(rewards.sum()), float(pnls.sum())
    parts = reward_part_totals(result)
    ranked = sorted(parts.items(), key=lambda kv: -abs(kv[1]))
    made_of = ", ".join(f"{comp} {_signed(v)}" for comp, v in ranked if v != 0.0) or "no non-zero component"
    opposite = total_reward > 0.0 and total_pnl < 0.0
    low_rho = not math.isnan(rho) and rho < min_rho
    passed = not (opposite or low_rho)
    rho_text = "undefined (< 3 episodes or constant reward/P&L)" if math.isnan(rho) else f"{rho:+.3f}"
    detail = f"reward {_signed(total_reward)} = {made_of} vs net P&L {_signed(total_pnl)} $"
    if opposite:
        detail += ": reward says win, money says loss"
    detail += f"; Spearman(reward, P&L) over {len(rewards)} episodes {rho_text}"
    if not math.isnan(rho):
        detail += f" ({'>=' if rho >= min_rho else '<'} {min_rho})"
    return {
        "passed": bool(passed),
        "value": None if math.isnan(rho) else rho,
        "threshold": min_rho,
        "episodes": len(rewards),
        "total_reward": total_reward,
        "total_pnl": total_pnl,
        "reward_parts": parts,
        "detail": detail,
    }


def flat_collapse(result: FundingEvalResult, max_flat_share: float = 0.95) -> dict[str, Any]:
    """Fail when no position was open after more than `max_flat_share` of all decisions: an agent that learned
    never to trade (seed 003's collapse in this family) shows zero P&L and a harmless-looking reward."""
    decisions = int(sum(ep.steps for ep in result.episodes))
    if decisions == 0:
        return {"passed": False, "value": None, "threshold": max_flat_share, "detail": "no decisions"}
    invested = int(sum(ep.invested_hours for ep in result.episodes))
    flat = 1.0 - invested / decisions
    passed = flat <= max_flat_share
    detail = (
        f"flat (no open position) after {flat:.1%} of {decisions} decisions "
        f"({'<=' if passed else '>'} {max_flat_share:.0%} allowed)"
    )
    return {"passed": bool(passed), "value": flat, "threshold": max_flat_share, "detail": detail}


def funding_run_checks(
    result: FundingEvalResult,
    min_rho: float = 0.0,
    max_top_share: float = 0.6,
    max_hhi: float = 0.5,
    max_flat_share: float = 0.95,
) -> dict[str, dict[str, Any]]:
    """The three checks on one policy's held-out evaluation, keyed by the asset-check names."""
    return {
        "reward_pnl_alignment": reward_pnl_alignment(result, min_rho),
        "symbol_concentration": symbol_concentration(result, max_top_share, max_hhi),
        "action_collapse": flat_collapse(result, max_flat_share),
    }
