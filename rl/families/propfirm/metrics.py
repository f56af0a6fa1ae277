"""What a funded-account evaluation is judged by: how often accounts pass (with an interval), how they fail, how
fast they pass, how consistent their profits are, and what the policy actually does."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any

import numpy as np

from rl.families.propfirm.evaluate import EvalResult, action_names

BREACHES = ("trailing_drawdown", "daily_loss")


def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (sensible at 0 and n, unlike the normal one)."""
    if n <= 0:
        return float("nan"), float("nan")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def action_mix(result: EvalResult) -> dict[str, float]:
    """Share of decisions per target, plus `hold`: the share that kept the position (all shares of decisions)."""
    counts = result.action_counts
    total = float(counts.sum())
    if not total:
        return {}
    out = {name: float(c) / total for name, c in zip(action_names(len(counts) // 2), counts, strict=True)}
    out["hold"] = sum(ep.holds for ep in result.episodes) / total
    return out


def policy_metrics(result: EvalResult, confidence: float = 0.9) -> dict[str, float]:
    """The evaluation figures of one policy's accounts (NaN where undefined, e.g. days to pass with no pass)."""
    eps = result.episodes
    n = len(eps)
    passed = [e for e in eps if e.passed]
    lo, hi = wilson_interval(len(passed), n, confidence)
    reasons = Counter(e.done_reason for e in eps)
    shares = [e.best_day_share for e in passed]
    out: dict[str, float] = {
        "accounts": float(n),
        "pass_rate": len(passed) / n if n else float("nan"),
        "pass_rate_low": lo,
        "pass_rate_high": hi,
        "breach_rate": sum(reasons[b] for b in BREACHES) / n if n else float("nan"),
        "days_to_pass": float(np.median([e.days for e in passed])) if passed else float("nan"),
        "days_survived": float(np.mean([e.days for e in eps])) if eps else float("nan"),
        "mean_net_pnl": float(np.mean([e.net_pnl for e in eps])) if eps else float("nan"),
        "total_pnl": float(sum(e.net_pnl for e in eps)),
        "min_room": float(np.min([e.min_room for e in eps])) if eps else float("nan"),
        "best_day_share": float(np.median(shares)) if shares else float("nan"),
        "round_trips_per_day": sum(e.round_trips for e in eps) / max(sum(e.days for e in eps), 1),
    }
    out |= {f"ended_{r}": float(reasons[r]) for r in (*BREACHES, "passed", "end_of_data", "days_done", "bar_limit")}
    out |= {f"events_{k}": float(sum(e.events[k] for e in eps)) for k in ("cutoff_flatten", "daily_loss_pause")}
    out |= {f"mix_{k}": v for k, v in action_mix(result).items()}
    return out


def run_checks(results: Mapping[str, EvalResult], agent: str, confidence: float = 0.9) -> dict[str, dict[str, Any]]:
    """The agent's pass rate must beat every baseline's; its actions must use both sides."""
    mine = policy_metrics(results[agent], confidence)
    others = {name: policy_metrics(r, confidence)["pass_rate"] for name, r in results.items() if name != agent}
    best = max(others, key=lambda k: others[k]) if others else None
    beats = best is None or mine["pass_rate"] > others[best]
    mix = action_mix(results[agent])
    longs = sum(v for k, v in mix.items() if k.startswith("long"))
    shorts = sum(v for k, v in mix.items() if k.startswith("short"))
    trading = longs + shorts
    one_sided = trading > 0 and min(longs, shorts) < 0.05 * trading
    return {
        "pass_rate_beats_baselines": {
            "passed": bool(beats),
            "value": mine["pass_rate"],
            "threshold": f"> {best} {others[best]:.0%}" if best else "",
            "detail": f"agent {mine['pass_rate']:.0%} [{mine['pass_rate_low']:.0%}, {mine['pass_rate_high']:.0%}] "
            f"over {int(mine['accounts'])} accounts; " + ", ".join(f"{k} {v:.0%}" for k, v in others.items()),
        },
        "action_mix": {
            "passed": not one_sided and trading > 0,
            "value": trading,
            "threshold": "both sides >= 5% of trading decisions",
            "detail": f"long {longs:.0%}, short {shorts:.0%}, flat or hold {1 - trading:.0%} of decisions",
        },
    }
