"""Markdown evaluation report of a funding agent vs its baselines, with provenance, checks and the reward's anatomy.

Seed 004's report showed "Average Reward +8,112 (HIGH)" above "P&L -1.39% (FAILED)" and its cause (a quality bonus
for quoted APR, one symbol farmed for it) had to be dug out by hand. Here the same page puts every policy's reward
next to its net P&L, splits the agent's reward into its weighted components beside the money (funding, taker
fees, spreads, liquidations), lists the agent's P&L by symbol, and repeats the key numbers per user config and per
walk-forward slice. Provenance, checks table and PNG embedding are the core's (`rl.core.report`).
"""

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
    table,
    write_report,
)
from rl.families.funding.evaluate import FundingEvalResult
from rl.families.funding.metrics import funding_metrics, reward_part_totals, symbol_breakdown

if TYPE_CHECKING:
    from rl.core.walkforward import Slice

_COLUMNS = (
    ("total_pnl", "net P&L $", "money"),
    ("mean_pnl_pct", "mean P&L %", "num"),
    ("win_rate", "win rate", "pct"),
    ("avg_hold_hours", "avg hold h", "plain"),
    ("funding", "funding", "money"),
    ("fees", "fees", "money"),
    ("spread", "of which spread", "money"),
    ("liquidations", "liquidations", "count"),
    ("total_reward", "reward", "num"),
    ("reward_pnl_spearman", "rho(reward,P&L)", "num"),
    ("top_symbol_share", "top-symbol share", "pct"),
)
_CONFIG_COLUMNS = ("total_pnl", "mean_pnl_pct", "win_rate", "liquidations", "total_reward", "reward_pnl_spearman")
_TOP_SYMBOLS = 10


def _cell(value: Any, kind: str) -> str:
    if kind == "count":
        return f"{int(value):,}" if isinstance(value, int | float) and np.isfinite(value) else "n/a"
    if kind == "num" and isinstance(value, float) and np.isfinite(value) and abs(value) >= 1000:
        return fmt(value, "money")  # thousands separators for large rewards (seed 004: +8,112)
    return fmt(value, kind)


def _metrics_table(results: Mapping[str, FundingEvalResult]) -> str:
    columns = (("episodes", "episodes", "plain0"), *_COLUMNS)
    return metrics_table(results, lambda r: {"episodes": len(r.episodes), **funding_metrics(r)}, columns, _cell)


def _decomposition_table(results: Mapping[str, FundingEvalResult]) -> str:
    """Reward components (weighted sums) and the money, one column per policy (the agent first)."""
    parts = {name: reward_part_totals(r) for name, r in results.items()}
    components = list(dict.fromkeys(c for p in parts.values() for c in p))
    metrics = {name: funding_metrics(r) for name, r in results.items()}
    names = list(results)
    rows = [[f"reward: {c}", *(_cell(parts[n].get(c, 0.0), "num") for n in names)] for c in components]
    rows.append(["**reward: total**", *(f"**{_cell(metrics[n]['total_reward'], 'num')}**" for n in names)])
    for key, label in (
        ("funding", "money: funding"),
        ("gross", "money: gross (price moves + funding)"),
        ("fees", "money: fees (taker + spread + liquidation)"),
        ("spread", "money: of which half-spreads"),
    ):
        rows.append([label, *(_cell(metrics[n][key], "money") for n in names)])
    rows.append(["**money: net P&L $**", *(f"**{_cell(metrics[n]['total_pnl'], 'money')}**" for n in names)])
    return table(["", *names], rows)


def _verdict(agent: str, result: FundingEvalResult) -> str:
    """One sentence that says whether the agent's reward and its money agree in sign."""
    parts = reward_part_totals(result)
    reward, pnl = float(result.total_reward.sum()), float(result.net_pnl.sum())
    ranked = sorted(parts.items(), key=lambda kv: -abs(kv[1]))
    made_of = ", ".join(f"{c} {_cell(v, 'num')}" for c, v in ranked if v != 0.0) or "nothing"
    text = f"`{agent}`: total reward {_cell(reward, 'num')} ({made_of}) vs net P&L {_cell(pnl, 'money')} $."
    if reward > 0 > pnl:
        return f"**Reward says win, money says loss.** {text} The reward pays for something other than the money."
    if reward < 0 < pnl:
        return f"**Reward says loss, money says win.** {text}"
    return text


def _symbol_table(result: FundingEvalResult) -> str:
    rows = [
        [
            r["symbol"],
            str(r["entries"]),
            fmt(r["entry_share"], "pct"),
            _cell(r["net_pnl"], "money"),
            fmt(r["pnl_share"], "pct"),
        ]
        for r in symbol_breakdown(result)[:_TOP_SYMBOLS]
    ]
    if not rows:
        return "No position was entered."
    return table(["symbol", "entries", "entry share", "net P&L $", "P&L share"], rows)


def _config_table(results: Mapping[str, FundingEvalResult]) -> str:
    labels = {key: (label, kind) for key, label, kind in _COLUMNS}
    config_names = list(dict.fromkeys(c for r in results.values() for c in r.config_names))
    rows = []
    for config in config_names:
        for name, result in results.items():
            sub = result.for_config(config)
            if not sub.episodes:
                continue
            m = funding_metrics(sub)
            rows.append([config, name, str(len(sub.episodes)), *(_cell(m[k], labels[k][1]) for k in _CONFIG_COLUMNS)])
    return table(["config", "policy", "episodes", *(labels[k][0] for k in _CONFIG_COLUMNS)], rows)


def _mean_path(result: FundingEvalResult) -> np.ndarray:
    """Mean equity change after each hour over the episodes (an episode that ended early holds its last value)."""
    width = max((len(ep.equity) for ep in result.episodes), default=0)
    if width == 0:
        return np.zeros(1)
    paths = np.zeros((len(result.episodes), width))
    for i, ep in enumerate(result.episodes):
        e = np.asarray(ep.equity, dtype=np.float64)
        if len(e):
            paths[i, : len(e)] = e
            paths[i, len(e) :] = e[-1]
    return np.concatenate([[0.0], paths.mean(axis=0)])


def plot_mean_equity(results: Mapping[str, FundingEvalResult]) -> bytes:
    """Mean net P&L path ($) over the hours of an episode, every policy on the same (start, config) episodes."""
    fig = figure(6.4, 3.0)
    ax = fig.add_subplot()
    for i, (name, result) in enumerate(results.items()):
        y = _mean_path(result)
        ax.plot(np.arange(len(y)), y, lw=2.2 if i == 0 else 1.2, label=name, zorder=3 if i == 0 else 2)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("hours into the episode")
    ax.set_ylabel("mean net P&L ($)")
    ax.legend(fontsize=7, ncols=2)
    ax.grid(alpha=0.3)
    return png(fig)


def plot_reward_vs_pnl(result: FundingEvalResult) -> bytes:
    """Each episode's total reward against its net P&L, by user config: aligned rewards rise to the right."""
    fig = figure(4.8, 3.0)
    ax = fig.add_subplot()
    for config in result.config_names:
        sub = result.for_config(config)
        ax.scatter(sub.net_pnl, sub.total_reward, s=12, alpha=0.7, label=config)
    ax.axhline(0, color="grey", lw=0.6)
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_xlabel("episode net P&L ($)")
    ax.set_ylabel("episode reward")
    ax.set_title(f"{result.name}: top-left = reward up, money down", fontsize=8)
    if result.config_names:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return png(fig)


def _slice_heading(slice_name: str, result: FundingEvalResult | None, s: Slice | None) -> str:
    heading = f"### {slice_name}"
    if result is not None and result.episodes:
        first = min(ep.start_time for ep in result.episodes)
        last = max(ep.start_time for ep in result.episodes)
        heading += f": episodes starting {first[:16]}..{last[:16]} UTC"
    if s is not None and s.train_dates:
        heading += f" (trained on {s.train_dates[0]}..{s.train_dates[-1]}, {len(s.train_dates)} days)"
    return heading


def build_funding_report(
    ctx: ReportContext,
    results: Mapping[str, Mapping[str, FundingEvalResult]],
    checks: Mapping[str, Mapping[str, Any]],
    out_dir: Path,
    agent: str = "agent",
    slices: Sequence[Slice] = (),
) -> str:
    """Write report.md and its PNGs into `out_dir` and return the Markdown.

    `results` maps slice name -> policy name -> FundingEvalResult (the agent under `agent`, then the baselines);
    `checks` maps check name -> {"passed", "value", "threshold", "detail", ...} (see `funding_run_checks`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overall = overall_by_policy(results, agent, FundingEvalResult.concat)
    policies = list(overall)
    slice_of = {s.name: s for s in slices}
    agent_result = overall[agent]
    configs = agent_result.config_names
    starts = {ep.start_time for ep in agent_result.episodes}

    lines = report_head(ctx, checks)
    lines += [
        f"## Held-out performance: {len(results)} slice(s), {len(agent_result.episodes)} episodes "
        f"({len(starts)} start hours x {len(configs)} user configs: {', '.join(configs)})",
        "",
        _verdict(agent, agent_result),
        "",
        "Net P&L is the change of equity after taker fees, half-spreads and liquidation fees, from the same ledger "
        "that computes the reward; funding is part of it. Win rate is per closed position; the top-symbol share "
        "is of entries.",
        "",
        _metrics_table(overall),
        "",
        image("equity.png", plot_mean_equity(overall), out_dir, "mean net P&L over an episode, agent vs baselines"),
        "",
        f"## Reward decomposition: what the reward paid for ({agent} first)",
        "",
        "Each reward row is the weighted sum (weight x scale x raw) of one component over all episodes; they add "
        "up to the total reward. The money rows are dollars. A reward that is positive while the net P&L is "
        "negative pays for something other than money (seed 004's quality bonus).",
        "",
        _decomposition_table(overall),
        "",
        image("reward_vs_pnl.png", plot_reward_vs_pnl(agent_result), out_dir, f"{agent}: episode reward vs net P&L"),
        "",
        f"## {agent}: net P&L by symbol (top {_TOP_SYMBOLS} by absolute P&L)",
        "",
        "Closed positions' net P&L (costs included) by symbol; P&L share is signed, of the sum of absolute P&Ls.",
        "",
        _symbol_table(agent_result),
        "",
        "## Per user config",
        "",
        _config_table(overall),
        "",
        "## Per slice",
        "",
    ]
    for slice_name, per_policy in results.items():
        ordered = {p: per_policy[p] for p in policies if p in per_policy}
        lines += [_slice_heading(slice_name, ordered.get(agent), slice_of.get(slice_name)), ""]
        lines += [_metrics_table(ordered), ""]
    if ctx.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in ctx.notes], ""]
    return write_report(out_dir, lines)
