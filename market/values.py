"""Value checks shared by every settings loader (vendors' configs here, the family configs in rl.core.config).

They sit at the bottom of the project, so every package can use the one copy.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """An int that is not a bool (YAML `true` must not pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def as_date(value: Any, where: str = "date") -> date:
    """A `date` from a date, a datetime, a datetime64 or an ISO string; anything else is a ValueError naming
    `where`."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[D]").item()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{where} must be a date like 2024-01-02, got {value!r}")
