"""What a 0DTE scalper is judged by (seed 003's targets): session P&L with an interval, trades per day, win rate,
premium P&L per trade, the stop's reliability, take-profit tiers, calls against puts, symbol rotation, the action
mix over the session, and which reward terms paid for what."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from rl.core.metrics import reward_pnl_alignment, spearman
from rl.families.zerodte.env import ACTION_NAMES, HOLD
from rl.families.zerodte.evaluate import EvalResult

PNL_TERMS = ("pnl", "commission", "spread_cost")  # the reward terms that are money; the rest is shaping


def mean_interval(values: Sequence[float] | np.ndarray, confidence: float) -> tuple[float, float]:
    """A normal interval on the mean of per-session values (NaN with fewer than two sessions)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return float("nan"), float("nan")
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def action_mix(result: EvalResult) -> dict[str, float]:
    """Share of decisions per action."""
    counts = result.action_counts
    total = float(counts.sum())
    return {a: float(c) / total for a, c in zip(ACTION_NAMES, counts, strict=True)} if total else {}


def hourly_mix(result: EvalResult) -> np.ndarray:
    """[hours, 6] share of each hour's decisions per action (rows without decisions are 0)."""
    if not result.episodes:
        return np.zeros((0, len(ACTION_NAMES)))
    counts = np.sum([ep.hourly_actions for ep in result.episodes], axis=0).astype(np.float64)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)


def reward_terms(result: EvalResult) -> dict[str, float]:
    """Each reward term's total over the sessions (weighted, as the agent was paid)."""
    out: dict[str, float] = {}
    for ep in result.episodes:
        for k, v in ep.reward_terms.items():
            out[k] = out.get(k, 0.0) + v
    return out


def policy_metrics(result: EvalResult, confidence: float = 0.9) -> dict[str, float]:
    """The evaluation figures of one policy's sessions (NaN where undefined)."""
    eps = result.episodes
    n = len(eps)
    net = result.net_pnl
    trades = sum(e.trades for e in eps)
    lo, hi = mean_interval(net, confidence)
    terms = reward_terms(result)
    symbols = sorted({e.symbol for e in eps})
    out: dict[str, float] = {
        "sessions": float(n),
        "total_pnl": float(net.sum()),
        "mean_session_pnl": float(net.mean()) if n else float("nan"),
        "mean_session_pnl_low": lo,
        "mean_session_pnl_high": hi,
        "trades_per_day": trades / n if n else float("nan"),
        "win_rate": sum(e.wins for e in eps) / trades if trades else float("nan"),
        "avg_premium_return": sum(e.trade_return_sum for e in eps) / trades if trades else float("nan"),
        "stops": float(sum(e.stops for e in eps)),
        "worst_beyond_stop": max((e.worst_beyond_stop for e in eps), default=0.0),
        "worst_stop_gap": max((e.worst_stop_gap for e in eps), default=0.0),
        "worst_stop_slippage": max((e.worst_stop_slippage for e in eps), default=0.0),
        "call_share": sum(e.calls for e in eps) / max(sum(e.calls + e.puts for e in eps), 1),
        "commission": float(sum(e.commission for e in eps)),
        "spread_cost": float(sum(e.spread_cost for e in eps)),
        "reward_pnl_spearman": spearman(result.total_reward, net) if n >= 3 else float("nan"),
        "shaping_reward": float(sum(v for k, v in terms.items() if k not in PNL_TERMS)),
        "pnl_reward": float(sum(v for k, v in terms.items() if k in PNL_TERMS)),
    }
    hits = np.sum([e.tier_hits for e in eps], axis=0) if eps else np.zeros(0)
    out |= {f"tier_{i + 1}_hits": float(h) for i, h in enumerate(hits)}
    for s in symbols:
        out[f"trades_{s}"] = float(sum(e.trades for e in eps if e.symbol == s))
    out |= {f"mix_{k.lower()}": v for k, v in action_mix(result).items()}
    return out


def hold_collapse(
    results: Mapping[str, EvalResult], agent: str, max_share: float, trade_share: float = 0.5
) -> dict[str, Any]:
    """Seed 003's failure: the agent HOLDs above `max_share` of its decisions and trades fewer than `trade_share` of
    the sessions' trades of a baseline that earns more than it, at a profit. Named in the report when it fails.

    HOLD alone is no symptom: a scalper that waits out its positions minute by minute HOLDs 90%+ of decisions, as
    the momentum rule does. Collapse is HOLD crowding out the trades a profitable rule takes."""
    mine = results[agent]
    counts = mine.action_counts
    share = float(counts[HOLD]) / float(counts.sum()) if counts.sum() else 1.0
    own = float(mine.net_pnl.mean()) if mine.episodes else 0.0
    trades = sum(e.trades for e in mine.episodes) / max(len(mine.episodes), 1)
    profitable = {
        name: (float(r.net_pnl.mean()), sum(e.trades for e in r.episodes) / len(r.episodes))
        for name, r in results.items()
        if name != agent and r.episodes and sum(e.trades for e in r.episodes) > 0 and float(r.net_pnl.mean()) > 0
    }
    missed = {k: v for k, v in profitable.items() if v[0] > own and trades < trade_share * v[1]}
    collapsed = share > max_share and bool(missed)
    if collapsed:
        best = max(missed, key=lambda k: missed[k][0])
        pnl, theirs = missed[best]
        detail = (f"HOLD COLLAPSE: the agent HOLDs {share:.1%} of decisions, trades {trades:.1f} a session and makes "
                  f"{own:+,.0f} while {best} trades {theirs:.1f} for {pnl:+,.0f}")  # fmt: skip
    elif share > max_share and profitable:
        detail = (f"HOLD is {share:.1%} of decisions, but the agent trades {trades:.1f} a session: no profitable "
                  "baseline's trades are crowded out")  # fmt: skip
    else:
        detail = f"HOLD is {share:.1%} of decisions; " + (
            "no baseline trades at a profit the agent misses" if not profitable else f"at most {max_share:.0%} allowed"
        )
    return {
        "passed": not collapsed,
        "value": share,
        "threshold": f"HOLD <= {max_share:.0%}, or at least {trade_share:.0%} of a better baseline's trades",
        "detail": detail,
        "trades_per_day": trades,
    }


def run_checks(results: Mapping[str, EvalResult], agent: str, evaluation: Any) -> dict[str, dict[str, Any]]:
    """No HOLD collapse, reward ranks sessions like P&L, stops sell near the mark that triggered them (beating the
    baselines is the core's interval check)."""
    mine = policy_metrics(results[agent], evaluation.confidence)
    alignment = reward_pnl_alignment(results[agent].total_reward, results[agent].net_pnl)
    terms = reward_terms(results[agent])
    shaping = {k: v for k, v in terms.items() if k not in PNL_TERMS and v}
    pays = ", ".join(f"{k} {v:+.2f}" for k, v in sorted(shaping.items(), key=lambda kv: -abs(kv[1]))) or "none"
    slip, gap, worst = mine["worst_stop_slippage"], mine["worst_stop_gap"], mine["worst_beyond_stop"]
    return {
        "hold_collapse": hold_collapse(results, agent, evaluation.max_hold_share, evaluation.collapse_trade_share),
        "reward_pnl_alignment": alignment
        | {
            "detail": f"{alignment['detail']}; P&L terms paid {mine['pnl_reward']:+.2f}, shaping terms "
            f"{mine['shaping_reward']:+.2f} ({pays})",
            "reward_terms": terms,
        },
        "stop_reliability": {
            "passed": bool(slip <= evaluation.stop_slippage + 1e-12),
            "value": slip,
            "threshold": f"<= {evaluation.stop_slippage:.0%} of premium below the mark that triggered the stop",
            "detail": f"{int(mine['stops'])} stops; the worst sold {slip:.1%} of premium below the mark that "
            f"triggered it (slippage); the worst mark already lay {gap:.1%} past the stop (the gap between minute "
            f"marks, which no resting stop avoids); the worst loss beyond the stop was {worst:.1%}",
            "worst_stop_gap": gap,
            "worst_beyond_stop": worst,
        },
    }
