"""Value checks shared by every settings loader (vendors' configs here, the family configs in rl.core.config).

They sit at the bottom of the project, so every package can use the one copy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
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


def known_keys(cls: type, data: Mapping[str, Any] | None, where: str = "") -> dict[str, Any]:
    """`data` as a dict of the dataclass `cls`'s fields, refusing a non-mapping and unknown keys.

    A typo must not silently become a default; the error names the section (`where`) and the known keys.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(known), key=str)
    if unknown:
        raise ValueError(f"{where or cls.__name__}: unknown key(s) {unknown}; known: {known}")
    return dict(data)
