"""Walk-forward slicing: train on earlier sessions, evaluate on strictly later, never-seen sessions.

Seed 002 evaluated on one fixed slice that looked nothing like training; here every slice holds out the
sessions right after its training window, and the slices roll forward so the report shows several
out-of-sample periods instead of one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from rl.core.config import as_date, from_dict, is_int


@dataclass(frozen=True)
class WalkForwardConfig:
    """How many sessions each slice trains and tests on, and how far consecutive slices move."""

    train_days: int = 40  # sessions in each slice's training window (rolling, fixed length)
    test_days: int = 10  # held-out sessions right after the training window
    slices: int = 2  # number of slices; the last one ends at the last available session
    step_days: int | None = None  # sessions between consecutive slices' test windows (None = test_days)

    def __post_init__(self) -> None:
        for name in ("train_days", "test_days", "slices"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"walk_forward.{name} must be a positive integer, got {value!r}")
        if self.step_days is not None and (not is_int(self.step_days) or self.step_days < 1):
            raise ValueError(f"walk_forward.step_days must be a positive integer or null, got {self.step_days!r}")
        if self.step < self.test_days:
            raise ValueError(
                f"walk_forward.step_days ({self.step}) < test_days ({self.test_days}) would make test "
                "windows overlap, so one session would be counted twice in the report"
            )

    @property
    def step(self) -> int:
        """Sessions between the starts of consecutive test windows."""
        return self.test_days if self.step_days is None else self.step_days

    @property
    def required_days(self) -> int:
        """Distinct sessions needed to build every slice."""
        return self.train_days + self.test_days + (self.slices - 1) * self.step

    @classmethod
    def from_dict(cls, raw: Mapping) -> WalkForwardConfig:
        """Build from a YAML mapping, refusing unknown keys (a typo must not silently become a default)."""
        return from_dict(cls, raw, where="walk_forward")


@dataclass(frozen=True)
class Slice:
    """One walk-forward fold: every test date is later than every train date."""

    name: str
    train_dates: tuple[date, ...]
    test_dates: tuple[date, ...]


def walk_forward_slices(dates: Sequence[date] | np.ndarray, cfg: WalkForwardConfig) -> list[Slice]:
    """Rolling train/test slices over the distinct session dates; the last test window ends on the last date.

    Dates may repeat (one row per symbol and day); slicing is over distinct sessions so all symbols of a day
    land on the same side of the split.
    """
    distinct = sorted({as_date(d, "walk-forward date") for d in dates})
    if len(distinct) < cfg.required_days:
        raise ValueError(
            f"walk-forward needs {cfg.required_days} distinct sessions (train_days={cfg.train_days} + "
            f"test_days={cfg.test_days} + (slices-1)={cfg.slices - 1} x step={cfg.step}), "
            f"got {len(distinct)}"
            + (f" ({distinct[0]}..{distinct[-1]})" if distinct else "")
            + "; widen the data range or shrink the walk_forward settings"
        )
    out: list[Slice] = []
    last_test_start = len(distinct) - cfg.test_days
    for k in range(cfg.slices):
        test_start = last_test_start - (cfg.slices - 1 - k) * cfg.step
        train = tuple(distinct[test_start - cfg.train_days : test_start])
        test = tuple(distinct[test_start : test_start + cfg.test_days])
        out.append(Slice(name=f"wf{k}_{test[0]:%Y%m%d}", train_dates=train, test_dates=test))
    return out
