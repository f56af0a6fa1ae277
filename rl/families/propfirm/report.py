"""Prop-firm Markdown report: pass rates with intervals, breaches by rule, days to pass, distance to the drawdown
line, consistency and the action mix of the agent and every baseline, plus training's episodes beside evaluation's."""

from __future__ import annotations

from collections import Counter
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
from rl.families.propfirm.evaluate import EvalResult
from rl.families.propfirm.metrics import action_mix, policy_metrics

if TYPE_CHECKING:
    from rl.core.walkforward import Slice

_COLUMNS = (
    ("accounts", "accounts", "plain0"),
    ("pass_rate", "pass rate", "pct"),
    ("pass_rate_low", "low", "pct"),
    ("pass_rate_high", "high", "pct"),
    ("ended_trailing_drawdown", "trailing DD", "plain0"),
    ("ended_daily_loss", "daily loss", "plain0"),
    ("ended_end_of_data", "data end", "plain0"),
    ("days_to_pass", "days to pass", "plain"),
    ("days_survived", "days lived", "plain"),
    ("min_room", "min room $", "usd"),
    ("best_day_share", "best day share", "pct"),
    ("mean_net_pnl", "mean P&L", "money"),
    ("events_cutoff_flatten", "cutoff flattens", "plain0"),
)


def _metrics_table(results: Mapping[str, EvalResult], confidence: float) -> str:
    return metrics_table(results, lambda r: policy_metrics(r, confidence), _COLUMNS)


def _mix_table(results: Mapping[str, EvalResult]) -> str:
    mixes = {name: action_mix(r) for name, r in results.items()}
    keys = list(dict.fromkeys(k for m in mixes.values() for k in m))
    return table(["policy", *keys], [[name, *(fmt(m.get(k, 0.0), "pct") for k in keys)] for name, m in mixes.items()])


def plot_room(results: Mapping[str, EvalResult], limit: float) -> bytes:
    """Balance above the drawdown threshold at each day's close, every account of every policy (faint), with the
    median per policy; an account that touches 0 breaches."""
    fig = figure(6.4, 3.0)
    ax = fig.add_subplot()
    for k, (name, result) in enumerate(results.items()):
        colour = f"C{k}"
        curves = [np.concatenate([[limit], ep.room_by_day]) for ep in result.episodes]
        for c in curves:
            ax.plot(np.arange(len(c)), c, color=colour, lw=0.5, alpha=0.25)
        width = max((len(c) for c in curves), default=0)
        if width:
            pad = np.full((len(curves), width), np.nan)
            for i, c in enumerate(curves):
                pad[i, : len(c)] = c
            ax.plot(np.arange(width), np.nanmedian(pad, axis=0), color=colour, lw=2.0 if k == 0 else 1.2, label=name)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("trading days since the account opened")
    ax.set_ylabel("room to the threshold ($)")
    ax.legend(fontsize=7, ncols=3)
    ax.grid(alpha=0.3)
    return png(fig)


def plot_outcomes(results: Mapping[str, EvalResult]) -> bytes:
    """How every policy's accounts ended: passed, breached by rule, or still running when the data ended."""
    reasons = ("passed", "trailing_drawdown", "daily_loss", "end_of_data", "days_done")
    colours = ("tab:green", "tab:red", "tab:orange", "#c8c8c8", "tab:blue")
    names = list(results)
    fig = figure(6.4, 0.4 + 0.35 * len(names))
    ax = fig.add_subplot()
    left = np.zeros(len(names))
    for reason, colour in zip(reasons, colours, strict=True):
        share = np.array([Counter(e.done_reason for e in results[n].episodes)[reason] for n in names], dtype=float)
        share /= np.maximum([len(results[n].episodes) for n in names], 1)
        ax.barh(np.arange(len(names)), share, left=left, color=colour, label=reason, height=0.7)
        left += share
    ax.set_yticks(np.arange(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of accounts")
    ax.legend(fontsize=6, ncols=len(reasons), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return png(fig)


def _episodes_table(check: Mapping[str, Any] | None) -> list[str]:
    """Training's episode lengths and done reasons beside evaluation's, from the mismatch check's details."""
    if not check or "training" not in check:
        return ["Training episode statistics were not recorded for this run.", ""]
    rows = []
    for side in ("training", "evaluation"):
        stats = check[side]
        reasons = ", ".join(f"{k} {v:.0%}" for k, v in sorted(stats.get("shares", {}).items(), key=lambda kv: -kv[1]))
        q = stats.get("length_quantiles") or {}
        rows.append([side, str(stats.get("episodes", 0)), *(str(q.get(p, "n/a")) for p in ("p10", "p50", "p90")),
                     reasons])  # fmt: skip
    return [table(["episodes of", "count", "length p10", "p50", "p90", "done reasons"], rows), ""]


def build_report(
    ctx: ReportContext,
    results: Mapping[str, Mapping[str, EvalResult]],
    checks: Mapping[str, Mapping[str, Any]],
    out_dir: Path,
    agent: str = "agent",
    slices: Sequence[Slice] = (),
    drawdown: float = 2_500.0,
    confidence: float = 0.9,
) -> str:
    """Write report.md and its PNGs into `out_dir` and return the Markdown."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overall = overall_by_policy(results, agent, EvalResult.concat)
    policies = list(overall)
    lines = report_head(ctx, checks)
    n = len(overall[agent].episodes)
    lines += [
        f"## Accounts: {len(results)} held-out slice(s), {n} agent accounts",
        "",
        f"Each account opens on a start day of a held-out slice and lives under the full rule book until it passes, "
        f"breaches or the slice ends. Pass-rate intervals are Wilson at {confidence:.0%}. Room is the balance above "
        "the trailing threshold at each bar's close (breaches are judged on the bar's low); best day share is the "
        "payout-style consistency figure (median over passed accounts).",
        "",
        _metrics_table(overall, confidence),
        "",
        image("outcomes.png", plot_outcomes(overall), out_dir, "how the accounts ended"),
        "",
        image("room.png", plot_room(overall, drawdown), out_dir, "room to the drawdown threshold by day"),
        "",
        "## Action mix (share of decisions)",
        "",
        _mix_table(overall),
        "",
        "## Training episodes beside evaluation episodes",
        "",
        *_episodes_table(checks.get("train_eval_mismatch")),
        "## Per slice",
        "",
    ]
    lines += slice_sections(results, list(policies), slices, lambda r: _metrics_table(r, confidence))
    if ctx.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in ctx.notes], ""]
    return write_report(out_dir, lines)
