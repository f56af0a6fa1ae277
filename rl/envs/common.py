"""Plumbing every batched env shares: action validation and the O(1) infos of envs that did not finish."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_actions(actions: Any, n: int, n_actions: int) -> np.ndarray:
    """The N actions as int64, refusing a wrong count, non-integers and values outside [0, n_actions)."""
    a = np.asarray(actions)
    if a.size != n:
        raise ValueError(f"expected {n} actions, got shape {a.shape}")
    a = a.reshape(n)
    if a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise ValueError(f"actions must be integers, got dtype {a.dtype}")
    if n and (a.min() < 0 or a.max() >= n_actions):
        raise ValueError(f"actions must be in [0, {n_actions}), got min {a.min()} max {a.max()}")
    return a.astype(np.int64, copy=False)


class SharedEmptyInfo(dict):
    """The info of every env that did not finish this step: one shared, read-only empty dict (O(1) infos).

    Writing to it raises instead of leaking into other envs; copies are ordinary dicts.
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("this step info is shared by all running envs and read-only; use dict(info) to edit a copy")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = __ior__ = _read_only  # type: ignore

    def copy(self) -> dict:  # type: ignore[override]
        return {}

    def __copy__(self) -> dict:
        return {}

    def __deepcopy__(self, memo: dict) -> dict:
        return {}

    def __reduce__(self) -> tuple:
        return (dict, ())


EMPTY_INFO = SharedEmptyInfo()
