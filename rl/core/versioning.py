"""Code version of the data and training logic, stamped on every checkpoint, evaluation and Dagster asset.

A checkpoint is only comparable with another if the code that produced its data, env and reward was the
same; hashing the sources catches uncommitted edits that a git commit id alone would miss.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSIONED_PACKAGES = ("rl", "warehouse", "market")


def source_digest(root: Path = ROOT, packages: tuple[str, ...] = VERSIONED_PACKAGES) -> str:
    """sha256 over the relative paths and bytes of every *.py file of the versioned packages."""
    h = hashlib.sha256()
    for package in packages:
        base = root / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            h.update(path.relative_to(root).as_posix().encode())
            h.update(b"\0")
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def git_commit(root: Path = ROOT) -> str | None:
    """The checked-out commit id, or None outside git or before the first commit."""
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and commit else None


def code_version(root: Path = ROOT) -> str:
    """`src-<16 hex of the source digest>`, plus `+git-<12 hex>` of the commit when one exists."""
    version = f"src-{source_digest(root)[:16]}"
    commit = git_commit(root)
    return f"{version}+git-{commit[:12]}" if commit else version
