"""Resumable training: the partial state a long training saves every `ppo.save_every` steps, and reads back after
a crash or a kill -9, so a retried run continues instead of starting over.

A partial state is a directory outside the checkpoints (`<checkpoints>/.partial/<key>`), keyed by everything that
made the training (config, data, reward, code, slice, seed, stage), so a changed input never resumes an old one.
It holds `state.json` and the model (weights, optimizer state and step count) it names. The model file is written
first under a new name, then `state.json` is replaced atomically: at any instant the state names a complete model.
It never holds the FINISHED marker of `rl.core.checkpoint`, so nothing downstream can take it for a finished
checkpoint; the finished checkpoint is written by the completed training, which then deletes the partial state.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl.core.config import jsonable

if TYPE_CHECKING:
    from sb3_contrib import MaskablePPO

STATE_FILE = "state.json"
PARTIAL_DIR = ".partial"


def save_partial(model: MaskablePPO, state: dict[str, Any], folder: Path) -> None:
    """Write the model under a name of its own step count, then replace state.json to name it; drop older models."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"model-{int(model.num_timesteps)}.zip"
    model.save(folder / name)
    tmp = folder / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(jsonable({**state, "model": name}), allow_nan=False))
    os.replace(tmp, folder / STATE_FILE)
    for old in folder.glob("model-*.zip"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_partial(folder: Path | None) -> dict[str, Any] | None:
    """The saved state (with `model_path`), or None when there is none or it names no model."""
    if folder is None or not (Path(folder) / STATE_FILE).is_file():
        return None
    state = json.loads((Path(folder) / STATE_FILE).read_text())
    path = Path(folder) / str(state.get("model", ""))
    if not path.is_file():
        return None
    return {**state, "model_path": path}


def drop_partial(folder: Path | None) -> None:
    """Delete a partial state once its training has written the finished checkpoint."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
