"""A store every worker can reach: a local folder or an S3-compatible bucket, through fsspec.

The staging store (warehouse.staging) takes a location that is a plain folder or a URL such as
`s3://bucket/prefix`; the artifact mirror (`publish`, `fetch`) copies the home's datasets, checkpoints, presets
and reports to such a URL and back, so a worker on another machine reaches what a step elsewhere wrote.
Credentials and the endpoint come only from the backend's own environment variables (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL` for S3), never from the URL, so no secret is written into a config,
a log line or run metadata.

An object store has no atomic rename, so what is committed there is committed "marker last": every file is
written, then one small marker object, whose single PUT is atomic and read back consistently (S3 has been
strongly consistent since 2020). A reader treats a prefix without its marker as not there yet.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://")


def is_url(location: str | Path) -> bool:
    """True for `scheme://...` (an object store or any fsspec backend), False for a plain or `file://` path."""
    m = _SCHEME.match(str(location))
    return bool(m) and m.group(1) not in ("file", "local")


def check_location(location: str | Path, setting: str) -> str:
    """The location as a string; a URL carrying credentials (`user:secret@host`) is refused without echoing it."""
    text = str(location)
    if re.match(r"^[a-z][a-z0-9+.-]*:/[^/]", text):  # Path("s3://b/p") folds the slashes: "s3:/b/p"
        raise ValueError(f"{setting}: {text!r} looks like a URL whose '//' was folded (pass it as a string)")
    if is_url(text) and "@" in text.split("://", 1)[1].split("/", 1)[0]:
        raise ValueError(
            f"{setting}: the store URL carries credentials; give them in the backend's environment variables "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL for S3), not in the URL"
        )
    return text


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, root path inside it) for a store URL; the backend reads its credentials itself."""
    import fsspec

    try:
        # A fresh instance each time: fsspec's instance cache ignores the environment the credentials come from.
        fs, root = fsspec.url_to_fs(url, skip_instance_cache=True)
    except (ImportError, ValueError) as exc:
        scheme = url.split("://", 1)[0]
        raise ValueError(
            f"cannot open store {url!r}: {exc} (for s3:// install s3fs, which is a tradeflow dependency)"
            if scheme == "s3"
            else f"cannot open store {url!r}: {exc}"
        ) from None
    return fs, root.rstrip("/")


def modified_age_s(info: dict[str, Any]) -> float:
    """Seconds since an object was last written, from an fsspec `info()` record (0 when the backend has no time)."""
    stamp = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
    if stamp is None:
        return 0.0
    if isinstance(stamp, int | float):
        return max(datetime.now(UTC).timestamp() - float(stamp), 0.0)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return max((datetime.now(UTC) - stamp).total_seconds(), 0.0)


# A folder is published only once finished, and its marker travels last: a checkpoint's FINISHED, a report's
# report.md. A reader that finds the marker finds everything written before it.
MARKERS = ("FINISHED", "report.md")


def _key(root: Path, path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        raise ValueError(f"{path} is not under the home {root}; only the home's artifacts are mirrored") from None


def publish(root: Path, path: Path, url: str) -> int:
    """Copy `path` (a file, or a finished folder holding one of MARKERS) from under the local `root` to the same
    place under `url`, marker last; returns the objects written (0 when the mirror already holds it: artifacts are
    never overwritten)."""
    fs, base = filesystem(url)
    key, path = _key(root, path), Path(path)
    if path.is_file():
        if fs.exists(f"{base}/{key}"):
            return 0
        fs.put_file(str(path), f"{base}/{key}")
        return 1
    markers = [m for m in MARKERS if (path / m).is_file()]
    if not markers:
        raise ValueError(f"{path}: no {' or '.join(MARKERS)} marker; only a finished folder is published")
    if fs.exists(f"{base}/{key}/{markers[0]}"):
        return 0
    files = sorted(p for p in path.rglob("*") if p.is_file())
    files = [p for p in files if p.relative_to(path).as_posix() not in markers] + [path / m for m in markers]
    for p in files:
        fs.put_file(str(p), f"{base}/{key}/{p.relative_to(path).as_posix()}")
    return len(files)


def fetch(root: Path, path: Path, url: str) -> bool:
    """Make `path` under the local `root` present, downloading it from `url` when this machine lacks it: a file, or
    a folder once its marker is there (through a temporary sibling and one rename). False when neither has it."""
    path = Path(path)
    if path.exists():
        return True
    fs, base = filesystem(url)
    key = _key(root, path)
    remote = f"{base}/{key}"
    if fs.isfile(remote):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.fetching")
        fs.get_file(remote, str(tmp))
        os.replace(tmp, path)
        return True
    if not any(fs.exists(f"{remote}/{m}") for m in MARKERS):
        return False
    tmp = path.with_name(f".{path.name}.fetching")
    shutil.rmtree(tmp, ignore_errors=True)
    names = sorted(f[len(remote) + 1 :] for f in fs.find(remote))
    for name in [n for n in names if n not in MARKERS] + [n for n in names if n in MARKERS]:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(f"{remote}/{name}", str(tmp / name))
    os.replace(tmp, path)
    return True
