"""Training and evaluation must see the same kind of episode: seed 002's policy trained on 20-30-bar random
windows and was judged on one long account whose trailing-drawdown breach it had never met in training.

`episode_mismatch` compares how training's episodes ended with how the evaluation's did, for every family: it
fails when most evaluation episodes end in a done reason that training almost never ended in (or when training
finished no episode at all, so it never saw an ending).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CHECK = "train_eval_mismatch"
DESCRIPTION = (
    "Fails when most of the agent's evaluation episodes end in a done reason that training's episodes almost "
    "never ended in, e.g. a trailing-drawdown breach after training on short windows (seed 002)."
)


def length_quantiles(lengths: Sequence[int]) -> dict[str, float]:
    """p10, p50 and p90 of episode lengths in steps (empty when there are none)."""
    if not len(lengths):
        return {}
    q = np.quantile(np.asarray(lengths, dtype=np.float64), [0.1, 0.5, 0.9])
    return {"p10": float(q[0]), "p50": float(q[1]), "p90": float(q[2])}


def _ended(counts: Mapping[str, int], n: int) -> dict[str, Any]:
    """Episode count, done-reason counts and their shares of the episodes."""
    return {"episodes": n, "done_reasons": dict(counts), "shares": {k: v / n for k, v in counts.items()} if n else {}}


def episode_summary(reasons: Sequence[str], lengths: Sequence[int]) -> dict[str, Any]:
    """How a set of episodes ended and how long they were: what training records and the check compares."""
    return {**_ended(Counter(r for r in reasons if r), len(reasons)), "length_quantiles": length_quantiles(lengths)}


def merge(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several slices' training summaries as one: counts add; each length quantile is the median of the slices'."""
    counts: Counter = Counter()
    n = 0
    for s in summaries:
        counts.update(s.get("done_reasons", {}))
        n += int(s.get("episodes", 0))
    quantiles = [s["length_quantiles"] for s in summaries if s.get("length_quantiles")]
    merged = {k: float(np.median([q[k] for q in quantiles])) for k in ("p10", "p50", "p90")} if quantiles else {}
    return {**_ended(counts, n), "length_quantiles": merged}


def episode_mismatch(
    training: Mapping[str, Any] | None,
    evaluation: Mapping[str, Any],
    mismatch_share: float = 0.5,
    rare_share: float = 0.05,
) -> dict[str, Any]:
    """The check: fails when at least `mismatch_share` of evaluation episodes end in reasons that ended under
    `rare_share` of training's episodes (a reason training never saw counts as 0)."""
    train_shares = dict((training or {}).get("shares", {}))
    eval_shares = dict(evaluation.get("shares", {}))
    trained = int((training or {}).get("episodes", 0))
    unseen = {r: s for r, s in eval_shares.items() if train_shares.get(r, 0.0) < rare_share}
    share = float(sum(unseen.values()))
    passed = trained > 0 and share < mismatch_share
    if not trained:
        detail = "training finished no episode: it never saw how an episode ends"
    elif unseen:
        detail = ", ".join(f"{r}: {s:.0%} of evaluation, {train_shares.get(r, 0.0):.1%} of training" for r, s in
                           sorted(unseen.items(), key=lambda kv: -kv[1]))  # fmt: skip
    else:
        detail = "every evaluation ending was common in training"
    return {
        "passed": bool(passed),
        "value": share,
        "threshold": f"< {mismatch_share:.0%} of evaluation episodes in reasons under {rare_share:.0%} of training",
        "detail": detail,
        "training": dict(training or {"episodes": 0, "shares": {}}),
        "evaluation": dict(evaluation),
    }
