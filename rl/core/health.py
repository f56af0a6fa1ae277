"""Training health: each PPO update's statistics, judged against thresholds, for every family's policy.

Seed 001 watched entropy, approx KL and clip fraction by eye; seed 000 found a value loss of 1.9e13 only after a
2-hour run. Training records one `UpdateStats` per PPO update (see `rl.core.train`), and `training_health` turns
them into six checks whose thresholds live in the family config's `health` section. The defaults are seed 001's
rules of thumb, put on a scale every family shares:

- entropy is normalised by the log of the number of valid actions, so 1 is uniform over what the mask allows
  and 0 is deterministic; seed 001's "below 0.5 nats is stuck" over its 36 actions is 0.5 / ln 36 = 0.14; at the
  other end, a policy still near uniform (above 0.9) has learned little, and its greedy evaluation is the argmax
  of near-equal probabilities: a short 0DTE run evaluated that way HOLDs every minute and looks like seed 003's
  collapse when it is only untrained;
- approx KL above 0.1 means the learning rate is too high, above 0.05 is a warning;
- clip fraction outside 0.1-0.3 for several updates in a row means updates too timid or too large;
- a value loss that explodes (non-finite, above a ceiling, or growing many-fold) means a mis-scaled reward or an
  unstable critic; one that never falls is a warning;
- an explained variance that never rises above 0 means the critic never predicts returns better than their mean,
  so every advantage is noise.

Each check judges every run (a slice, or a slice and seed) on its own and fails when any run fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rl.core.config import is_int, is_number, known_keys

ERROR, WARN = "error", "warn"

DESCRIPTIONS: dict[str, str] = {
    "entropy_not_collapsed": "Warns when a run's last update has a policy entropy, normalised by the log of the "
    "number of valid actions, below health.min_entropy_norm (seed 001's 0.5 nats of 36 actions = 0.14).",
    "entropy_left_uniform": "Warns when a run's last update still has a normalised entropy above "
    "health.max_entropy_norm (0.9): the policy is near uniform over its valid actions, so its greedy evaluation "
    "(the argmax of near-equal probabilities) says little about what it learned; train it longer first.",
    "approx_kl_bounded": "Fails when any PPO update's approx KL exceeds health.max_approx_kl (0.1: the learning "
    "rate is too high); warns above health.warn_approx_kl (0.05).",
    "clip_fraction_in_range": "Warns when the clip fraction stays outside health.clip_fraction_range (0.1-0.3) for "
    "health.sustained_updates updates in a row: updates too timid or too large.",
    "value_loss_stable": "Fails when the value loss is non-finite, exceeds health.max_value_loss or grows more "
    "than health.max_value_loss_growth-fold (seed 000's mis-scaled reward); warns when it never falls.",
    "explained_variance_positive": "Fails when the critic's explained variance never rises above "
    "health.min_explained_variance: every advantage PPO follows is then noise.",
}
SEVERITY: dict[str, str] = {
    "entropy_not_collapsed": WARN,
    "entropy_left_uniform": WARN,
    "approx_kl_bounded": ERROR,
    "clip_fraction_in_range": WARN,
    "value_loss_stable": ERROR,
    "explained_variance_positive": ERROR,
}
CHECKS = tuple(DESCRIPTIONS)


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds of the training-health checks (a family config's `health:` section); seed 001's by default."""

    min_entropy_norm: float = 0.14  # 0.5 nats over seed 001's 36 actions, as a share of ln(valid actions)
    max_entropy_norm: float = 0.9  # above: still near uniform (of 3 valid actions, the likeliest under ~55%)
    max_approx_kl: float = 0.1  # any update above: error
    warn_approx_kl: float = 0.05  # any update above: warning
    clip_fraction_range: tuple[float, float] = (0.1, 0.3)
    sustained_updates: int = 3  # consecutive updates outside the clip range before it warns
    max_value_loss: float = 1.0e6  # the audit's largest value target (1,000) squared: the critic misses by all of it
    max_value_loss_growth: float = 100.0  # late (last third's median) over early (first update) value loss
    min_explained_variance: float = 0.0  # the best update's explained variance must exceed this
    min_updates: int = 3  # fewer updates than this: the trend checks have too little to judge and pass

    def __post_init__(self) -> None:
        for name in ("min_entropy_norm", "max_approx_kl", "warn_approx_kl", "max_value_loss", "max_value_loss_growth"):
            value = getattr(self, name)
            if not is_number(value) or value <= 0:
                raise ValueError(f"health.{name} must be a finite number > 0, got {value!r}")
        if not is_number(self.max_entropy_norm) or not self.min_entropy_norm < self.max_entropy_norm <= 1.0:
            raise ValueError(
                f"health.max_entropy_norm must be above min_entropy_norm ({self.min_entropy_norm}) and at most 1, "
                f"got {self.max_entropy_norm!r}"
            )
        if self.warn_approx_kl > self.max_approx_kl:
            raise ValueError(
                f"health.warn_approx_kl ({self.warn_approx_kl}) must not exceed max_approx_kl ({self.max_approx_kl})"
            )
        if not is_number(self.min_explained_variance) or not -1.0 <= self.min_explained_variance < 1.0:
            raise ValueError(f"health.min_explained_variance must be in [-1, 1), got {self.min_explained_variance!r}")
        low_high = tuple(self.clip_fraction_range) if isinstance(self.clip_fraction_range, list | tuple) else ()
        if len(low_high) != 2 or not all(is_number(v) for v in low_high) or not 0 <= low_high[0] < low_high[1] <= 1:
            raise ValueError(
                f"health.clip_fraction_range must be [low, high] with 0 <= low < high <= 1, got "
                f"{self.clip_fraction_range!r}"
            )
        object.__setattr__(self, "clip_fraction_range", (float(low_high[0]), float(low_high[1])))
        for name in ("sustained_updates", "min_updates"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"health.{name} must be a positive integer, got {value!r}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> HealthConfig:
        """Build from the YAML `health:` mapping, refusing unknown keys."""
        values = known_keys(cls, raw, where="health")
        for name, value in values.items():
            if name not in ("sustained_updates", "min_updates") and is_int(value):
                values[name] = float(value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["clip_fraction_range"] = list(self.clip_fraction_range)
        return out


def action_stats(actions: np.ndarray, masks: np.ndarray | None, n_actions: int) -> dict[str, Any]:
    """The action mix of one rollout and the mean log of its valid-action counts (entropy's upper bound).

    `actions` holds the rollout's action indices, `masks` the matching (..., n_actions) validity masks (None: all
    valid). A state with one valid action has no choice: it adds 0 to the bound, as its entropy adds 0.
    """
    flat = np.asarray(actions).reshape(-1).astype(np.int64)
    counts = np.bincount(flat, minlength=n_actions)[:n_actions] if flat.size else np.zeros(n_actions, np.int64)
    if masks is None:
        log_valid = math.log(n_actions)
    else:
        valid = np.asarray(masks).reshape(-1, n_actions).sum(axis=1)
        log_valid = float(np.log(np.maximum(valid, 1)).mean()) if valid.size else 0.0
    total = max(int(counts.sum()), 1)
    return {"action_share": [float(c) / total for c in counts], "mean_log_valid": log_valid}


def entropy_norm(entropy_loss: float, mean_log_valid: float) -> float:
    """SB3's entropy loss (minus the mean entropy) as a share of the most entropy the masks allow."""
    if not math.isfinite(entropy_loss) or mean_log_valid <= 0:
        return float("nan")
    return -entropy_loss / mean_log_valid


def _series(updates: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([float("nan") if u.get(key) is None else float(u[key]) for u in updates], dtype=np.float64)


def _longest_run(flags: np.ndarray) -> int:
    best = run = 0
    for flag in flags.tolist():
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def _verdict(severity: str | None, value: float, detail: str) -> dict[str, Any]:
    return {"passed": severity is None, "severity": severity, "value": value, "detail": detail}


def _entropy(updates: Sequence[Mapping[str, Any]], cfg: HealthConfig) -> dict[str, Any]:
    last = _series(updates, "entropy_norm")[-1]
    if not math.isfinite(last):
        return _verdict(None, last, "no normalised entropy recorded (every state had one valid action)")
    low = last < cfg.min_entropy_norm
    return _verdict(WARN if low else None, last, f"last update's normalised entropy {last:.3f}")


def _uniform(updates: Sequence[Mapping[str, Any]], cfg: HealthConfig) -> dict[str, Any]:
    last = _series(updates, "entropy_norm")[-1]
    if not math.isfinite(last):
        return _verdict(None, last, "no normalised entropy recorded (every state had one valid action)")
    flat = last > cfg.max_entropy_norm
    note = " (still near uniform: train longer before judging its evaluation)" if flat else ""
    return _verdict(WARN if flat else None, last, f"last update's normalised entropy {last:.3f}{note}")


def _kl(updates: Sequence[Mapping[str, Any]], cfg: HealthConfig) -> dict[str, Any]:
    kl = _series(updates, "approx_kl")
    if not np.isfinite(kl).any():
        return _verdict(ERROR, float("nan"), "no finite approx KL in any update")
    worst = float(np.nanmax(kl))
    i = int(np.nanargmax(kl))
    severity = ERROR if worst > cfg.max_approx_kl else WARN if worst > cfg.warn_approx_kl else None
    return _verdict(severity, worst, f"largest approx KL {worst:.4f} at update {i + 1} of {len(kl)}")


def _clip(updates: Sequence[Mapping[str, Any]], cfg: HealthConfig) -> dict[str, Any]:
    clip = _series(updates, "clip_fraction")
    low, high = cfg.clip_fraction_range
    outside = ~((clip >= low) & (clip <= high))  # NaN counts as outside
    run = _longest_run(outside)
    median = float(np.nanmedian(clip)) if np.isfinite(clip).any() else float("nan")
    severity = WARN if run >= cfg.sustained_updates else None
    return _verdict(
        severity, median, f"median clip fraction {median:.3f}; {run} update(s) in a row outside [{low}, {high}]"
    )


def _value_loss(updates: Sequence[Mapping[str, Any]], cfg: HealthConfig) -> dict[str, Any]:
    loss = _series(updates, "value_loss")
    if not np.isfinite(loss).all():
        bad = int(np.flatnonzero(~np.isfinite(loss))[0])
        return _verdict(ERROR, float("nan"), f"value loss is not finite at update {bad + 1} of {len(loss)}")
    worst = float(loss.max())
    if worst > cfg.max_value_loss:
        return _verdict(ERROR, worst, f"value loss {worst:.3g} exceeds {cfg.max_value_loss:.3g}")
    if len(loss) < cfg.min_updates:
        return _verdict(None, worst, f"{len(loss)} update(s): too few to judge a trend; largest {worst:.3g}")
    third = max(1, len(loss) // 3)
    early, late = float(np.median(loss[:third])), float(np.median(loss[-third:]))
    growth = late / loss[0] if loss[0] > 0 else float("inf") if late > 0 else 1.0
    trend = f"first {loss[0]:.3g}, first third's median {early:.3g}, last third's {late:.3g}"
    if growth > cfg.max_value_loss_growth:
        return _verdict(ERROR, growth, f"value loss grew {growth:.3g}-fold ({trend})")
    if late >= early:
        return _verdict(WARN, growth, f"value loss never fell ({trend})")
    return _verdict(None, growth, trend)


def _explained_variance(updates: Sequence[Mapping[str, Any]], cfg: HealthConfig) -> dict[str, Any]:
    ev = _series(updates, "explained_variance")
    if not np.isfinite(ev).any():
        return _verdict(ERROR, float("nan"), "no finite explained variance in any update")
    best = float(np.nanmax(ev))
    if len(ev) < cfg.min_updates and best <= cfg.min_explained_variance:
        return _verdict(None, best, f"{len(ev)} update(s): too few to judge; best explained variance {best:.3f}")
    severity = ERROR if best <= cfg.min_explained_variance else None
    return _verdict(severity, best, f"best explained variance {best:.3f} over {len(ev)} updates")


_JUDGES = {
    "entropy_not_collapsed": _entropy,
    "entropy_left_uniform": _uniform,
    "approx_kl_bounded": _kl,
    "clip_fraction_in_range": _clip,
    "value_loss_stable": _value_loss,
    "explained_variance_positive": _explained_variance,
}


def training_health(runs: Mapping[str, Sequence[Mapping[str, Any]]], cfg: HealthConfig) -> dict[str, dict[str, Any]]:
    """The six health checks over every run's update history (`runs`: run name -> its updates, in order).

    Each check's result has `passed`, `severity` (the worst run's: "error", "warn" or None), the per-run verdicts
    and a one-line `detail` naming the runs that failed. A run with no update at all fails every check: training
    that never updated learned nothing.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, judge in _JUDGES.items():
        per_run = {
            run: judge(updates, cfg) if updates else _verdict(ERROR, float("nan"), "no PPO update recorded")
            for run, updates in runs.items()
        }
        failed = {run: v for run, v in per_run.items() if not v["passed"]}
        severity = ERROR if any(v["severity"] == ERROR for v in failed.values()) else WARN if failed else None
        detail = "; ".join(f"{run}: {v['detail']}" for run, v in (failed or per_run).items())
        out[name] = {
            "passed": not failed,
            "severity": severity,
            "detail": detail if runs else "no training run to judge",
            "runs": per_run,
            "thresholds": cfg.to_dict(),
        }
        if not runs:
            out[name].update(passed=False, severity=ERROR)
    return out
