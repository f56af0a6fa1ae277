"""Results over several seeds with honest intervals: IQM, stratified bootstrap and probability of improvement.

One training seed can be lucky. Each family trains one policy per seed and walk-forward slice, and the evaluation
scores each run by its net P&L per held-out day (summed over every symbol and episode of the day). Following
rliable (Agarwal et al., 2021, "Deep RL at the edge of the statistical precipice"), with slices as its tasks and
seeds as its runs:

- the interquartile mean (IQM) is the mean of the middle 50% of all run scores (`scipy.stats.trim_mean` cutting
  25% at each end), robust to one outlier seed yet using more runs than the median;
- a stratified bootstrap resamples the runs within each slice with replacement, so every resample keeps every
  slice; the percentile interval of the statistic over the resamples is its confidence interval;
- the probability of improvement P(X > Y) is, per slice, the share of (run of X, run of Y) pairs where X scores
  higher (ties count half), averaged over slices.

rliable itself does not import under pandas 3, hence these few lines. "Beats the baselines" means the lower bound
of the interval of IQM(agent) - IQM(baseline) is above 0 for every baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import trim_mean

from rl.core.report import fmt, table

CHECK = "beats_baselines"
DESCRIPTION = (
    "Fails unless, for every baseline, the lower bound of the stratified-bootstrap interval of IQM(agent) - "
    "IQM(baseline) over seeds x slices of net P&L per held-out day is above 0."
)
CONFIDENCE = 0.95  # two-sided interval
REPS = 2000  # bootstrap resamples; the interval's Monte Carlo error is about 1% of its width at this count

Runs = Mapping[str, Sequence[float]]  # slice (task) -> one score per run (seed)


def day_score(metrics: Mapping[str, float], n_days: int) -> float:
    """A run's score: its net P&L per day played (every symbol and episode of the day), from a family's metrics."""
    return float(metrics["total_pnl"]) / n_days


def iqm(scores: Sequence[float] | np.ndarray) -> float:
    """The interquartile mean of every score (the flattened runs x slices)."""
    flat = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not flat.size:
        raise ValueError("the IQM of no scores is undefined")
    return float(trim_mean(flat, 0.25))


def _tasks(runs: Runs) -> list[np.ndarray]:
    tasks = [np.asarray(v, dtype=np.float64).reshape(-1) for v in runs.values()]
    if not tasks or any(not t.size for t in tasks):
        raise ValueError(f"every slice needs at least one run, got {dict(runs)!r}")
    if not all(np.isfinite(t).all() for t in tasks):
        raise ValueError("run scores must be finite")
    return tasks


def stratified_resamples(runs: Runs, reps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Per slice, a (reps, n_runs) array of its runs drawn with replacement: one stratified resample per row."""
    return [t[rng.integers(0, len(t), size=(reps, len(t)))] for t in _tasks(runs)]


def _iqm_rows(resamples: Sequence[np.ndarray]) -> np.ndarray:
    """The IQM of each resample (row) over all its slices' runs."""
    return trim_mean(np.concatenate(resamples, axis=1), 0.25, axis=1)


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def iqm_interval(runs: Runs, confidence: float = CONFIDENCE, reps: int = REPS, seed: int = 0) -> dict[str, float]:
    """IQM of the runs and its stratified-bootstrap percentile interval."""
    rng = np.random.default_rng(seed)
    boot = _iqm_rows(stratified_resamples(runs, reps, rng))
    low, high = _interval(boot, confidence)
    return {"iqm": iqm(np.concatenate(_tasks(runs))), "low": low, "high": high}


def probability_of_improvement(x: Runs, y: Runs) -> float:
    """P(X > Y): per slice, the share of run pairs where X scores higher (ties half), averaged over slices."""
    if set(x) != set(y):
        raise ValueError(f"both need the same slices, got {sorted(x)} and {sorted(y)}")
    per_task = []
    for task in x:
        a, b = np.asarray(x[task], dtype=np.float64)[:, None], np.asarray(y[task], dtype=np.float64)[None, :]
        per_task.append(float(((a > b) + 0.5 * (a == b)).mean()))
    return float(np.mean(per_task))


def compare(x: Runs, y: Runs, confidence: float = CONFIDENCE, reps: int = REPS, seed: int = 0) -> dict[str, float]:
    """IQM(x) - IQM(y) and P(X > Y), each with its interval from independent stratified resamples of x and y."""
    if set(x) != set(y):
        raise ValueError(f"both need the same slices, got {sorted(x)} and {sorted(y)}")
    rng = np.random.default_rng(seed)
    bx, by = stratified_resamples(x, reps, rng), stratified_resamples(y, reps, rng)
    diff = _iqm_rows(bx) - _iqm_rows(by)
    tasks = list(x)

    def poi_row(i: int) -> float:
        return probability_of_improvement(
            {t: bx[k][i] for k, t in enumerate(tasks)}, {t: by[k][i] for k, t in enumerate(tasks)}
        )

    poi = np.array([poi_row(i) for i in range(reps)])
    low, high = _interval(diff, confidence)
    poi_low, poi_high = _interval(poi, confidence)
    return {
        "iqm_diff": iqm(np.concatenate(_tasks(x))) - iqm(np.concatenate(_tasks(y))),
        "iqm_diff_low": low,
        "iqm_diff_high": high,
        "poi": probability_of_improvement(x, y),
        "poi_low": poi_low,
        "poi_high": poi_high,
    }


def seed_comparison(
    agent: Runs, baselines: Mapping[str, Runs], confidence: float = CONFIDENCE, reps: int = REPS, seed: int = 0
) -> dict[str, Any]:
    """The agent's IQM and interval, each baseline's, and the agent against each baseline (`compare`)."""
    return {
        "runs_per_slice": {task: len(v) for task, v in agent.items()},
        "agent_runs": {task: [float(x) for x in v] for task, v in agent.items()},
        "confidence": confidence,
        "agent": iqm_interval(agent, confidence, reps, seed),
        "baselines": {name: iqm_interval(r, confidence, reps, seed) for name, r in baselines.items()},
        "versus": {name: compare(agent, r, confidence, reps, seed) for name, r in baselines.items()},
    }


def beats_baselines(comparison: Mapping[str, Any]) -> dict[str, Any]:
    """The check: the lower bound of IQM(agent) - IQM(baseline) above 0 for every baseline."""
    versus = comparison["versus"]
    worst = min(versus, key=lambda name: versus[name]["iqm_diff_low"]) if versus else None
    passed = worst is not None and versus[worst]["iqm_diff_low"] > 0
    seeds = sorted(set(comparison["runs_per_slice"].values()))
    conf = f"{comparison['confidence']:.0%}"
    detail = f"agent IQM {comparison['agent']['iqm']:+,.2f} a day; " + "; ".join(
        f"vs {name} {v['iqm_diff']:+,.2f} [{v['iqm_diff_low']:+,.2f}, {v['iqm_diff_high']:+,.2f}], "
        f"P(agent > {name}) {v['poi']:.2f}"
        for name, v in versus.items()
    )
    if seeds == [1]:
        detail += "; one seed per slice: the interval shows no seed-to-seed variation, train several seeds"
    return {
        "passed": bool(passed),
        "value": versus[worst]["iqm_diff_low"] if worst else None,
        "threshold": f"> 0 ({conf} lower bound of the IQM difference, worst baseline {worst})",
        "detail": detail,
        "comparison": dict(comparison),
    }


def report_lines(comparison: Mapping[str, Any]) -> list[str]:
    """A Markdown section: IQM and interval per policy, then the agent against each baseline."""
    conf = f"{comparison['confidence']:.0%}"
    runs = ", ".join(f"{task} {n}" for task, n in comparison["runs_per_slice"].items())
    rows = [["**agent**", *_cells(comparison["agent"])]]
    rows += [[name, *_cells(v)] for name, v in comparison["baselines"].items()]
    versus = [
        [
            name,
            fmt(v["iqm_diff"], "money"),
            f"[{fmt(v['iqm_diff_low'], 'money')}, {fmt(v['iqm_diff_high'], 'money')}]",
            f"{v['poi']:.2f} [{v['poi_low']:.2f}, {v['poi_high']:.2f}]",
        ]
        for name, v in comparison["versus"].items()
    ]
    return [
        "## Seeds and intervals",
        "",
        f"Each run's net P&L per held-out day, all its symbols and episodes (agent runs per slice: {runs}); IQM over "
        f"seeds x slices with {conf} stratified-bootstrap intervals (rliable's definitions).",
        "",
        table(["policy", "IQM", f"{conf} interval"], rows),
        "",
        table(["agent vs", "IQM difference", f"{conf} interval", "P(agent > baseline)"], versus),
        "",
    ]


def _cells(values: Mapping[str, float]) -> list[str]:
    return [fmt(values["iqm"], "money"), f"[{fmt(values['low'], 'money')}, {fmt(values['high'], 'money')}]"]
