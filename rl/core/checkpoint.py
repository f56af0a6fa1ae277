"""Checkpoint I/O: a directory holding `model.zip` and `meta.json`, written atomically and verified on load.

`meta.json` holds the resolved config, the reward spec and sha256, the data version, the code version and the
training stats, so any evaluation can name exactly what it evaluated. The directory is written to a temporary
sibling and renamed into place, and only a completed training writes it, with its `FINISHED` marker: a crash
never leaves a half-written checkpoint, and the partial state a long training saves to resume from (see
`rl.core.train`) has no marker, so loading refuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl.core.config import jsonable

if TYPE_CHECKING:
    from sb3_contrib import MaskablePPO

MODEL_FILE = "model.zip"
META_FILE = "meta.json"
FINISHED_FILE = "FINISHED"  # written last, inside the directory renamed into place: training completed


def save_checkpoint(model: MaskablePPO, meta: Mapping[str, Any], target: Path) -> Path:
    """Write model.zip + meta.json into a temp sibling of `target`, then os.replace it into place.

    On any error the temp dir is removed and `target` does not exist; `meta` gains `model_sha256` and
    `checkpoint_id`.
    """
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"checkpoint directory {target.name!r} already exists; checkpoints are never overwritten")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model.save(tmp / MODEL_FILE)
        digest = hashlib.sha256((tmp / MODEL_FILE).read_bytes()).hexdigest()
        full = dict(meta)
        full["model_sha256"] = digest
        full["checkpoint_id"] = f"{full.get('run_id', 'run')}:{target.name}:{digest[:12]}"
        text = json.dumps(jsonable(full), indent=2, sort_keys=True, allow_nan=False)
        (tmp / META_FILE).write_text(text + "\n")
        (tmp / FINISHED_FILE).write_text(full["checkpoint_id"] + "\n")
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if isinstance(meta, dict):
        meta.update({"model_sha256": digest, "checkpoint_id": full["checkpoint_id"]})
    return target


def load_checkpoint(checkpoint_dir: Path, device: str = "cpu") -> tuple[MaskablePPO, dict[str, Any]]:
    """Load a finished checkpoint directory; refuses one without its FINISHED marker (a partial or interrupted
    training) and a model.zip whose sha256 differs from the one in meta.json."""
    from sb3_contrib import MaskablePPO

    checkpoint_dir = Path(checkpoint_dir)
    meta_path = checkpoint_dir / META_FILE
    model_path = checkpoint_dir / MODEL_FILE
    if not meta_path.is_file() or not model_path.is_file():
        raise FileNotFoundError(f"{checkpoint_dir.name!r} is not a checkpoint (needs {MODEL_FILE} and {META_FILE})")
    if not (checkpoint_dir / FINISHED_FILE).is_file():
        raise ValueError(
            f"{checkpoint_dir.name!r} has no {FINISHED_FILE} marker: its training did not complete; train it again"
        )
    meta = json.loads(meta_path.read_text())
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if meta.get("model_sha256") not in (None, digest):
        raise ValueError(f"{checkpoint_dir.name!r}: model.zip sha256 does not match meta.json (corrupt or edited)")
    model = MaskablePPO.load(model_path, device=device)
    return model, meta
