"""The promotion gate: a newly trained policy replaces the promoted one only on held-out evidence.

The candidate's runs (one score per seed and slice: net P&L per held-out day, as in `rl.core.intervals`) are compared
with the promoted policy's runs on the same held-out days, played under the same config. The candidate is promoted
when IQM(candidate) > IQM(incumbent) and P(candidate > incumbent) exceeds `promotion.min_probability`. Before any
policy is promoted the incumbent is not trading (a score of 0 every day), the one thing a desk does without a
model. An incumbent that cannot be judged on the candidate's days (it trained on them, a slice is missing, or its
observation no longer fits the env) is recorded as such, and the candidate is judged against not trading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from rl.core import intervals
from rl.core.config import known_keys
from rl.core.report import fmt, table

CHECK = "promoted"
DESCRIPTION = (
    "Warns when the newly trained policy was not promoted: its held-out IQM did not beat the promoted policy's (or "
    "not trading, before any) with P(improvement) above promotion.min_probability."
)
NOT_TRADING = "not trading"
REPORT_FILE = "promoted.md"


@dataclass(frozen=True)
class PromotionConfig:
    """The gate's threshold (the `promotion:` section of a family config)."""

    min_probability: float = 0.6  # P(candidate > incumbent) over seeds x slices the candidate must exceed

    def __post_init__(self) -> None:
        p = self.min_probability
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p < 1.0:
            raise ValueError(f"promotion.min_probability must be a number in [0, 1), got {p!r}")
        object.__setattr__(self, "min_probability", float(p))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PromotionConfig:
        return cls(**known_keys(cls, raw, where="promotion"))

    def to_dict(self) -> dict[str, Any]:
        return {"min_probability": self.min_probability}


@dataclass(frozen=True)
class PromotedPolicy:
    """A policy the shadow signals can play: its checkpoints, the config it trained with and its held-out figures."""

    run_id: str
    checkpoints: dict[str, str]  # run key (slice, or slice/seed) -> checkpoint directory
    config: dict[str, Any]  # the resolved family config it trained with
    slices: dict[str, Any]  # slice -> train and test date ranges
    evaluation: dict[str, Any] = field(default_factory=dict)  # evaluation run id, IQM and interval, run scores

    def slice_keys(self, slice_name: str) -> list[str]:
        """The run keys of one slice, one per seed (`slice` or `slice/seed_<k>`, as `training_runs` names them)."""
        return [k for k in self.checkpoints if k.split("/")[0] == slice_name]

    def latest_keys(self) -> list[str]:
        """The run keys of the slice trained on the latest days (one per seed): what a shadow plays."""
        return self.slice_keys(max(self.slices, key=lambda name: self.slices[name]["test"][1]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "checkpoints": dict(self.checkpoints),
            "config": dict(self.config),
            "slices": dict(self.slices),
            "evaluation": dict(self.evaluation),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PromotedPolicy:
        return cls(raw["run_id"], dict(raw["checkpoints"]), dict(raw["config"]), dict(raw["slices"]),
                   dict(raw.get("evaluation") or {}))  # fmt: skip


@dataclass(frozen=True)
class Promotion:
    """One gate decision: the candidate, the incumbent, the evidence, and the policy promoted after it."""

    run_id: str
    family: str
    candidate_run_id: str
    evaluation_run_id: str | None
    incumbent_run_id: str | None
    promoted: bool
    policy: PromotedPolicy | None  # the promoted policy after this decision (None: none yet)
    evidence: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """The ml.promotions row."""
        return {
            "run_id": self.run_id,
            "family": self.family,
            "created_at": datetime.now(UTC).replace(tzinfo=None),
            "candidate_run_id": self.candidate_run_id,
            "evaluation_run_id": self.evaluation_run_id,
            "incumbent_run_id": self.incumbent_run_id,
            "promoted": self.promoted,
            "promoted_run_id": self.policy.run_id if self.policy else None,
            "policy_json": self.policy.to_dict() if self.policy else None,
            "evidence_json": self.evidence,
        }

    def check(self) -> dict[str, Any]:
        """The `promoted` check's verdict (a warning when the candidate was held back)."""
        return {
            "passed": self.promoted,
            "value": self.evidence.get("poi"),
            "threshold": f"> {self.evidence['min_probability']:.2f} and a higher IQM",
            "detail": self.evidence["detail"],
        }

    def summary(self) -> dict[str, Any]:
        out = {
            "decision_id": self.run_id,
            "promoted": self.promoted,
            "candidate_run_id": self.candidate_run_id,
            "incumbent": self.evidence["against"],
            "promoted_run_id": self.policy.run_id if self.policy else "none",
            "detail": self.evidence["detail"],
        }
        for key in ("iqm_diff", "iqm_diff_low", "iqm_diff_high", "poi"):
            if self.evidence.get(key) is not None:
                out[key] = float(self.evidence[key])
        return out


def decide(
    candidate: intervals.Runs,
    incumbent: intervals.Runs | None,
    cfg: PromotionConfig,
    incumbent_name: str = NOT_TRADING,
    note: str = "",
) -> dict[str, Any]:
    """The gate's evidence: IQM(candidate) - IQM(incumbent) with its interval, P(candidate > incumbent), and the
    verdict. `incumbent` None is not trading (0 a day on every slice)."""
    against = incumbent if incumbent is not None else {task: [0.0] for task in candidate}
    comparison = intervals.compare(candidate, against)
    promoted = comparison["iqm_diff"] > 0 and comparison["poi"] > cfg.min_probability
    measured = (
        f"candidate vs {incumbent_name} IQM difference "
        f"{comparison['iqm_diff']:+,.2f} a day [{comparison['iqm_diff_low']:+,.2f}, "
        f"{comparison['iqm_diff_high']:+,.2f}], P(candidate > {incumbent_name}) {comparison['poi']:.2f} "
        f"(needs > {cfg.min_probability:.2f})"
    )
    if all(len(v) == 1 for v in candidate.values()):
        note = "; ".join(filter(None, [note, "one seed per slice: the interval shows no seed-to-seed variation"]))
    measured += f"; {note}" if note else ""
    return {
        "promoted": bool(promoted),
        "against": incumbent_name,
        "min_probability": cfg.min_probability,
        **comparison,
        "candidate_runs": {k: list(v) for k, v in candidate.items()},
        "incumbent_runs": {k: list(v) for k, v in against.items()},
        "note": note,
        "measured": measured,  # the comparison without the verdict
        "detail": f"{'promoted' if promoted else 'kept the incumbent'}: {measured}",
    }


def report_lines(promotion: Promotion) -> list[str]:
    """The gate's section of the evaluation report."""
    ev = promotion.evidence
    rows = [[task, _money(runs), _money(ev["incumbent_runs"][task])] for task, runs in ev["candidate_runs"].items()]
    return [
        "## Promotion",
        "",
        f"**{'Promoted' if promotion.promoted else 'Not promoted'}** (decision {promotion.run_id}). {ev['detail']}.",
        "",
        table(["slice", "candidate runs ($/day)", f"{ev['against']} runs ($/day)"], rows),
        "",
    ]


def promoted_report(promotion: Promotion, shadow: pl.DataFrame) -> str:
    """The promoted policy's page: its held-out figures beside its shadow P&L on the newest days (`shadow`: per
    partition and checkpoint, from `warehouse.signals.shadow_days`), so a drift between backtest and live days
    shows."""
    policy = promotion.policy
    lines = [f"# Promoted policy: {promotion.family}", ""]
    if policy is None:
        return "\n".join([*lines, f"No policy is promoted yet. Last decision: {promotion.evidence['detail']}.", ""])
    ev = policy.evaluation
    lines += [
        f"- policy run: `{policy.run_id}` (evaluation `{ev.get('evaluation_run_id')}`)",
        f"- shadow checkpoints: {', '.join(f'`{k}`' for k in policy.latest_keys())}",
        f"- last gate decision `{promotion.run_id}`: {promotion.evidence['detail']}",
        "",
        "## Held-out evaluation against shadow days",
        "",
        "Net P&L per day, every account of the day ($). Held-out: IQM over seeds x slices with its 95% interval. "
        "Shadow: the checkpoints of the latest slice on partitions after their training, averaged over seeds.",
        "",
    ]
    per_day = (
        shadow.group_by("partition_date").agg(pl.col("net_pnl").mean(), pl.col("trades").mean()).sort("partition_date")
        if not shadow.is_empty()
        else shadow
    )
    held = [
        "held-out (IQM)",
        "",
        fmt(ev.get("iqm"), "money"),
        f"[{fmt(ev.get('low'), 'money')}, {fmt(ev.get('high'), 'money')}]",
    ]
    rows = [held]
    if not per_day.is_empty():
        mean = float(per_day.get_column("net_pnl").mean())
        rows.append(["shadow (mean)", str(per_day.height), fmt(mean, "money"), _drift(mean, ev)])
        rows += [
            [f"shadow {d}", "1", fmt(p, "money"), f"{t:.0f} trades"]
            for d, p, t in per_day.select("partition_date", "net_pnl", "trades").iter_rows()
        ]
    lines += [table(["figure", "days", "$ per day", "interval / note"], rows), ""]
    if per_day.is_empty():
        lines += ["No shadow partition has been played yet: materialize the signals asset for a new partition.", ""]
    return "\n".join(lines)


def _money(values: list[float]) -> str:
    return ", ".join(fmt(v, "money") for v in values)


def _drift(mean: float, evaluation: Mapping[str, Any]) -> str:
    low, high = evaluation.get("low"), evaluation.get("high")
    if low is None or high is None:
        return ""
    where = "below" if mean < low else "above" if mean > high else "inside"
    if low == high:  # one run per slice: a point, not an interval
        return f"{where} the held-out IQM (one seed per slice: no interval; train several seeds)"
    return f"{where} the held-out interval"
