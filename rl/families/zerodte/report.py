"""0DTE Markdown report: session P&L with intervals, seed 003's trading targets, the stop, the tiers, calls against
puts and symbol rotation for the agent and every baseline; the agent's action mix hour by hour; and what each reward
term paid beside the P&L, so a shaping bonus that pays while money is lost is on the page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl.core.report import (
    ReportContext,
    figure,
    fmt,
    image,
    metrics_table,
    overall_by_policy,
    png,
    report_head,
    slice_sections,
    table,
    write_report,
)
from rl.families.zerodte.env import ACTION_NAMES
from rl.families.zerodte.evaluate import EvalResult
from rl.families.zerodte.metrics import PNL_TERMS, hourly_mix, policy_metrics, reward_terms

if TYPE_CHECKING:
    from rl.core.walkforward import Slice

_COLUMNS = (
    ("sessions", "sessions", "plain0"),
    ("mean_session_pnl", "mean P&L", "money"),
    ("mean_session_pnl_low", "low", "money"),
    ("mean_session_pnl_high", "high", "money"),
    ("trades_per_day", "trades/day", "plain"),
    ("win_rate", "win rate", "pct"),
    ("avg_premium_return", "avg premium P&L", "pct"),
    ("stops", "stops", "plain0"),
    ("worst_stop_slippage", "worst stop slippage", "pct"),
    ("worst_stop_gap", "worst stop gap", "pct"),
    ("call_share", "calls", "pct"),
    ("mix_hold", "HOLD", "pct"),
)


def _metrics_table(results: Mapping[str, EvalResult], confidence: float) -> str:
    blank = dict.fromkeys((key for key, _, _ in _COLUMNS), float("nan"))  # a figure a policy lacks reads n/a
    return metrics_table(results, lambda r: blank | policy_metrics(r, confidence), _COLUMNS)


def _tiers_table(results: Mapping[str, EvalResult], tier_names: Sequence[str]) -> str:
    rows = []
    for name, result in results.items():
        m = policy_metrics(result)
        symbols = sorted({e.symbol for e in result.episodes})
        rotation = ", ".join(f"{s} {int(m.get(f'trades_{s}', 0))}" for s in symbols)
        rows.append([name, *(fmt(m.get(f"tier_{i + 1}_hits", 0.0), "plain0") for i in range(len(tier_names))),
                     rotation])  # fmt: skip
    return table(["policy", *tier_names, "trades by underlying"], rows)


def _terms_table(results: Mapping[str, EvalResult]) -> str:
    rows = []
    for name, result in results.items():
        terms = reward_terms(result)
        money = sum(v for k, v in terms.items() if k in PNL_TERMS)
        shaping = ", ".join(f"{k} {v:+.2f}" for k, v in terms.items() if k not in PNL_TERMS and v) or "none"
        rows.append([name, fmt(float(result.net_pnl.sum()), "money"), f"{money:+.2f}", shaping])
    return table(["policy", "net P&L $", "P&L terms paid", "shaping terms paid"], rows)


def plot_hourly(result: EvalResult) -> bytes:
    """The agent's action mix in each hour of the session (a policy drifting into HOLD shows as a rising band)."""
    mix = hourly_mix(result)
    fig = figure(6.4, 2.6)
    ax = fig.add_subplot()
    bottom = np.zeros(len(mix))
    for j, name in enumerate(ACTION_NAMES):
        ax.bar(np.arange(len(mix)), mix[:, j], bottom=bottom, label=name, color=f"C{j}")
        bottom += mix[:, j]
    ax.set_xticks(np.arange(len(mix)), [f"h{h + 1}" for h in range(len(mix))])
    ax.set_ylabel("share of decisions")
    ax.legend(fontsize=6, ncols=6, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return png(fig)


def build_report(
    ctx: ReportContext,
    results: Mapping[str, Mapping[str, EvalResult]],
    checks: Mapping[str, Mapping[str, Any]],
    out_dir: Path,
    agent: str = "agent",
    slices: Sequence[Slice] = (),
    tier_names: Sequence[str] = (),
    confidence: float = 0.9,
) -> str:
    """Write report.md and its PNG into `out_dir` and return the Markdown."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overall = overall_by_policy(results, agent, EvalResult.concat)
    lines = report_head(ctx, checks)
    collapse = checks.get("hold_collapse", {})
    if collapse and not collapse.get("passed", True):
        lines += [f"**{collapse['detail']}.**", ""]
    lines += [
        f"## Sessions: {len(results)} held-out slice(s), {len(overall[agent].episodes)} agent sessions",
        "",
        f"Every held-out (underlying, session) is played once by every policy under the same stop, tiers, cooldown "
        f"and costs. Intervals on mean session P&L are normal at {confidence:.0%}. Premium P&L is each trade's net "
        "P&L as a share of the premium it paid; stop slippage is how far below the triggering mark a stopped trade "
        "sold, and stop gap how far past the stop that mark already lay.",
        "",
        _metrics_table(overall, confidence),
        "",
        "## Take-profit tiers reached and symbol rotation",
        "",
        _tiers_table(overall, tier_names),
        "",
        "## What the reward paid for",
        "",
        _terms_table(overall),
        "",
        "## The agent's action mix by hour of the session",
        "",
        image("hourly_actions.png", plot_hourly(overall[agent]), out_dir, "action mix by hour"),
        "",
        "## Per slice",
        "",
    ]
    lines += slice_sections(results, list(overall), slices, lambda r: _metrics_table(r, confidence))
    if ctx.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in ctx.notes], ""]
    return write_report(out_dir, lines)
