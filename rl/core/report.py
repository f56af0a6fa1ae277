"""Report helpers every family's Markdown evaluation report uses: provenance, tables, checks and small plots.

Seed 002 lost its history to an overwritten log and could not say which checkpoint produced which numbers.
Every report names its evaluation run, the checkpoints per slice, the reward sha256, the data version and the
code version, and is written to its own directory. Plots are small PNGs embedded as base64 data URIs (also
written as files) so the same Markdown renders in the Dagster UI and on disk.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT_FILE = "report.md"
_FIG_DPI = 80


@dataclass(frozen=True)
class ReportContext:
    """What the report must name so its numbers can be traced to exact inputs."""

    family: str
    run_id: str  # evaluation run id
    policy_run_id: str  # training run id
    checkpoint_ids: Mapping[str, str]  # slice name -> checkpoint id
    reward_name: str
    reward_sha256: str
    data_version: str
    code_version: str
    created_at: str = ""
    notes: Sequence[str] = field(default_factory=tuple)


def fmt(value: Any, kind: str) -> str:
    """A table cell: `money` signed $, `usd` unsigned $, `pct` percent of 1, `plain` 2 decimals (`plain0` without a
    trailing .00, for counts), else signed."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if kind == "plain0":
        return f"{value:.2f}".removesuffix(".00")
    if kind == "money":
        return f"{value:+,.0f}" if abs(value) >= 10 else f"{value:+,.2f}"
    if kind == "usd":
        return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.2f}"
    if kind == "plain":
        return f"{value:.2f}"
    if kind == "pct":
        return f"{value:.0%}"
    return f"{value:+.2f}" if isinstance(value, float) else str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def metrics_table(
    results: Mapping[str, Any],
    metrics: Callable[[Any], Mapping[str, Any]],
    columns: Sequence[tuple[str, str, str]],
    cell: Callable[[Any, str], str] = fmt,
) -> str:
    """One row per policy (the first, the agent, in bold): `metrics(result)[key]` under each (key, label, kind) of
    `columns`, formatted by `cell`."""
    rows = [
        [f"**{name}**" if i == 0 else name, *(cell(m[key], kind) for key, _, kind in columns)]
        for i, (name, m) in enumerate((name, metrics(r)) for name, r in results.items())
    ]
    return table(["policy", *(label for _, label, _ in columns)], rows)


def figure(width: float, height: float) -> Figure:
    """A small matplotlib Figure without pyplot (no global state, no display backend)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_FIG_DPI, layout="constrained")
    return fig


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes at the report's DPI (kept small: it is embedded in the Markdown)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_FIG_DPI)
    return buf.getvalue()


def image(name: str, data: bytes, out_dir: Path, alt: str) -> str:
    """Write the PNG to `out_dir/name` and return it as Markdown with a base64 data URI (renders in the UI)."""
    (out_dir / name).write_bytes(data)
    return f"![{alt}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"


def provenance_table(ctx: ReportContext) -> str:
    """Evaluation run, training run, checkpoint per slice, reward sha256, data and code versions."""
    provenance = [
        ["evaluation run", f"`{ctx.run_id}`"],
        ["training run", f"`{ctx.policy_run_id}`"],
        *[[f"checkpoint {name}", f"`{cid}`"] for name, cid in ctx.checkpoint_ids.items()],
        ["reward", f"`{ctx.reward_name}` sha256 `{ctx.reward_sha256}`"],
        ["data version", f"`{ctx.data_version}`"],
        ["code version", f"`{ctx.code_version}`"],
    ]
    if ctx.created_at:
        provenance.append(["created", ctx.created_at])
    return table(["what", "id"], provenance)


def overall_by_policy(
    results: Mapping[str, Mapping[str, Any]], agent: str, concat: Callable[[str, Sequence[Any]], Any]
) -> dict[str, Any]:
    """Each policy's results over all slices (`concat`), the agent first, then the baselines in first-seen order."""
    if not results:
        raise ValueError("no evaluation results to report")
    policies: list[str] = []
    for per_policy in results.values():
        policies += [p for p in per_policy if p not in policies]
    if agent not in policies:
        raise ValueError(f"agent {agent!r} is missing from the results (policies: {policies})")
    policies = [agent] + [p for p in policies if p != agent]
    return {p: concat(p, [per[p] for per in results.values() if p in per]) for p in policies}


def checks_table(checks: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per check: verdict (FAIL in bold), value, threshold, detail."""
    check_rows = []
    for name, check in checks.items():
        verdict = "PASS" if check.get("passed") else "**FAIL**"
        value = check.get("value")
        shown = fmt(value, "num") if value is not None else "n/a"
        check_rows.append([name, verdict, shown, str(check.get("threshold", "")), str(check.get("detail", ""))])
    return table(["check", "verdict", "value", "threshold", "detail"], check_rows)


def report_head(ctx: ReportContext, checks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The lines every family's report opens with: title, provenance and the checks."""
    return [
        f"# {ctx.family} evaluation `{ctx.run_id}`",
        "",
        provenance_table(ctx),
        "",
        "## Checks",
        "",
        checks_table(checks),
        "",
    ]


def slice_sections(
    results: Mapping[str, Mapping[str, Any]],
    order: Sequence[str],
    slices: Sequence[Any],
    render: Callable[[Mapping[str, Any]], str],
) -> list[str]:
    """One section per walk-forward slice: a heading with its test and training dates, then `render` of that
    slice's results (policies in `order`)."""
    dates = {s.name: s for s in slices}
    lines: list[str] = []
    for slice_name, per_policy in results.items():
        ordered = {p: per_policy[p] for p in order if p in per_policy}
        s = dates.get(slice_name)
        heading = f"### {slice_name}"
        if s is not None and s.test_dates:
            heading += (
                f": test {s.test_dates[0]}..{s.test_dates[-1]}, trained on {s.train_dates[0]}..{s.train_dates[-1]}"
            )
        lines += [heading, "", render(ordered), ""]
    return lines


def write_report(out_dir: Path, lines: Sequence[str]) -> str:
    """Join the report's lines and write them as `out_dir/report.md`; the Markdown."""
    text = "\n".join(lines)
    (Path(out_dir) / REPORT_FILE).write_text(text)
    return text
