"""Validation helpers every family's config uses: a bad value fails at load time with a message naming it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml

from market.values import as_date, is_int, is_number, known_keys

__all__ = [
    "as_date",
    "config_dir",
    "config_file",
    "from_dict",
    "is_int",
    "is_number",
    "json_number",
    "jsonable",
    "known_keys",
    "read_yaml",
]

T = TypeVar("T")
_CONFIG_DIR: ContextVar[Path | None] = ContextVar("config_dir", default=None)


@contextmanager
def config_dir(path: str | Path) -> Iterator[None]:
    """Resolve the file names a config refers to (a family's rule book) against `path` while it is parsed."""
    token = _CONFIG_DIR.set(Path(path))
    try:
        yield
    finally:
        _CONFIG_DIR.reset(token)


def config_file(relative: str, what: str) -> Path:
    """The file `relative` names inside the configs folder being parsed; ValueError outside one, for an absolute
    or escaping path, or a missing file."""
    base = _CONFIG_DIR.get()
    rel = Path(str(relative))
    if base is None:
        raise ValueError(f"{what}: {relative!r} is a file name, which only a config loaded from its folder can use")
    if rel.is_absolute() or ".." in rel.parts or rel.suffix not in (".yaml", ".yml"):
        raise ValueError(f"{what} must be a relative .yaml path inside the configs folder, got {relative!r}")
    path = base / rel
    if not path.is_file():
        raise ValueError(f"{what}: {relative} not found in {base.name}/")
    return path


def read_yaml(path: str | Path, what: str) -> Any:
    """A YAML file's contents; ValueError naming the file when it is missing, not valid YAML, or empty."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{what} not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path.name} is not valid YAML: {exc}") from exc
    if raw is None:
        raise ValueError(f"{path.name} is empty")
    return raw


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """Build the dataclass `cls` from a mapping, rejecting unknown keys (see `known_keys`)."""
    return cls(**known_keys(cls, data, where))


def json_number(value: Any) -> Any:
    """A numpy or Python number as a plain JSON number; a non-finite float becomes None."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def jsonable(value: Any) -> Any:
    """Dataclasses, numpy values, dates, tuples and Paths as plain JSON values (non-finite floats -> None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.datetime64):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating | np.integer):
        return json_number(value)
    return value
