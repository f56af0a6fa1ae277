"""Intraday Markdown evaluation report: agent vs baselines on the walk-forward held-out days, with provenance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl.core.report import (
    ReportContext,
    figure,
    image,
    metrics_table,
    overall_by_policy,
    png,
    report_head,
    write_report,
)
from rl.families.intraday.baselines import ACTION_NAMES
from rl.families.intraday.evaluate import EvalResult
from rl.families.intraday.metrics import (
    POSITION_NAMES,
    action_distribution,
    daily_pnl,
    policy_metrics,
    portfolio_path,
    position_distribution,
)

if TYPE_CHECKING:
    from rl.core.walkforward import Slice

_COLORS = {
    "HOLD": "#c8c8c8",
    "BUY": "tab:green",
    "SELL": "tab:red",
    "CLOSE": "tab:blue",
    "SHORT": "tab:red",
    "FLAT": "#c8c8c8",
    "LONG": "tab:green",
}
_COLUMNS = (
    ("total_pnl", "net P&L", "money"),
    ("mean_daily_pnl", "mean/day", "money"),
    ("sharpe", "Sharpe", "num"),
    ("max_drawdown", "max DD", "usd"),
    ("win_rate", "win rate", "pct"),
    ("positive_day_rate", "up days", "pct"),
    ("trades_per_day", "trips/day", "plain"),
    ("commission", "commission", "money"),
    ("spread_cost", "spread", "money"),
    ("total_reward", "reward", "num"),
    ("reward_pnl_spearman", "rho(reward,P&L)", "num"),
)


def _metrics_table(results: Mapping[str, EvalResult]) -> str:
    return metrics_table(results, policy_metrics, _COLUMNS)


def plot_equity(results: Mapping[str, EvalResult], boundaries: Sequence[int] = ()) -> bytes:
    """Cumulative net P&L at each held-out session's close, every policy on the same sessions.

    `boundaries` are session counts where a new walk-forward slice starts (drawn as dashed lines).
    """
    fig = figure(6.4, 3.0)
    ax = fig.add_subplot()
    for b in boundaries:
        ax.axvline(b, color="grey", lw=0.8, ls="--")
    for i, (name, result) in enumerate(results.items()):
        dates, pnl = daily_pnl(result)
        x = np.concatenate([[0], np.arange(1, len(dates) + 1)])
        y = np.concatenate([[0.0], np.cumsum(pnl)])
        ax.plot(x, y, lw=2.2 if i == 0 else 1.2, label=name, zorder=3 if i == 0 else 2)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("held-out sessions")
    ax.set_ylabel("cumulative net P&L ($)")
    ax.legend(fontsize=7, ncols=2)
    ax.grid(alpha=0.3)
    return png(fig)


def plot_drawdown(result: EvalResult) -> bytes:
    """Minute-by-minute drawdown of the policy's net equity over the held-out sessions."""
    x, equity = portfolio_path(result)
    dd = equity - np.maximum.accumulate(equity)
    fig = figure(6.4, 2.2)
    ax = fig.add_subplot()
    ax.fill_between(x, dd, 0, color="tab:red", alpha=0.4, lw=0)
    ax.plot(x, dd, color="tab:red", lw=0.8)
    ax.set_xlabel("held-out sessions")
    ax.set_ylabel(f"{result.name} drawdown ($)")
    ax.grid(alpha=0.3)
    return png(fig)


def plot_actions(results: Mapping[str, EvalResult]) -> bytes:
    """Share of decisions per action and per chosen position, for every policy."""
    names = list(results)
    fig = figure(6.4, 2.6)
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(names))
    for ax, labels, dist_of in (
        (axes[0], ACTION_NAMES, lambda r: action_distribution(r.action_counts)),
        (axes[1], POSITION_NAMES, lambda r: position_distribution(r.position_counts)),
    ):
        left = np.zeros(len(names))
        for label in labels:
            shares = np.array([dist_of(results[n])[label] for n in names])
            ax.barh(y, shares, left=left, label=label, height=0.7, color=_COLORS[label])
            left += shares
        ax.axvline(0.9, color="black", lw=0.8, ls="--")
        ax.set_xlim(0, 1)
        ax.legend(fontsize=6, ncols=len(labels), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        ax.tick_params(labelsize=7)
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("share of decisions: action", fontsize=7)
    axes[1].set_xlabel("share of decisions: chosen position", fontsize=7)
    return png(fig)


def build_report(
    ctx: ReportContext,
    results: Mapping[str, Mapping[str, EvalResult]],
    checks: Mapping[str, Mapping[str, Any]],
    out_dir: Path,
    agent: str = "agent",
    slices: Sequence[Slice] = (),
) -> str:
    """Write report.md and its PNGs into `out_dir` and return the Markdown.

    `results` maps slice name -> policy name -> EvalResult (the agent under `agent`, then the baselines);
    `checks` maps check name -> {"passed", "value", "threshold", "detail", ...} (see metrics.run_checks).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overall = overall_by_policy(results, agent, EvalResult.concat)
    policies = list(overall)
    slice_dates = {s.name: s for s in slices}

    lines = report_head(ctx, checks)

    n_sessions = len(daily_pnl(overall[agent])[0])
    per_slice_sessions = [
        len(daily_pnl(per_policy[agent])[0]) for per_policy in results.values() if agent in per_policy
    ]
    boundaries = np.cumsum(per_slice_sessions)[:-1].tolist()
    lines += [
        f"## Held-out performance: {len(results)} slice(s), {n_sessions} sessions, "
        f"{len(overall[agent].episodes)} (symbol, session) episodes",
        "",
        "Net P&L after commission and half-spread, from the same ledger that computes the reward. "
        "Sharpe is daily, annualised with sqrt(252); max DD is over the minute-by-minute equity.",
        "",
        _metrics_table(overall),
        "",
        image("equity.png", plot_equity(overall, boundaries), out_dir, "cumulative net P&L, agent vs baselines"),
        "",
        image("drawdown.png", plot_drawdown(overall[agent]), out_dir, f"{agent} drawdown"),
        "",
        image("actions.png", plot_actions(overall), out_dir, "action and position distribution"),
        "",
        "## Per slice",
        "",
    ]
    for slice_name, per_policy in results.items():
        ordered = {p: per_policy[p] for p in policies if p in per_policy}
        dates = daily_pnl(ordered[agent])[0] if agent in ordered else daily_pnl(next(iter(ordered.values())))[0]
        heading = f"### {slice_name}: test {dates[0]}..{dates[-1]}" if len(dates) else f"### {slice_name}"
        s = slice_dates.get(slice_name)
        if s is not None and s.train_dates:
            heading += f" (trained on {s.train_dates[0]}..{s.train_dates[-1]}, {len(s.train_dates)} sessions)"
        lines += [heading, "", _metrics_table(ordered), ""]
    if ctx.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in ctx.notes], ""]
    return write_report(out_dir, lines)
