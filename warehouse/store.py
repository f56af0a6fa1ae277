"""A store every worker can reach: a local folder or an S3-compatible bucket, through fsspec.

The staging store (warehouse.staging) takes a location that is a plain folder or a URL such as
`s3://bucket/prefix`. Credentials and the endpoint come only from the backend's own
environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL` for S3), never from the
URL, so no secret is written into a config, a log line or run metadata.

An object store has no atomic rename, so what is committed there is committed "marker last": every file is
written, then one small marker object, whose single PUT is atomic and read back consistently (S3 has been
strongly consistent since 2020). A reader treats a prefix without its marker as not there yet.
"""

from __future__ import annotations

import re
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
