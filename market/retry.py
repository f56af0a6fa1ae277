"""Retry with exponential backoff for live sources: transient failures wait and retry, anything else surfaces."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
MAX_BACKOFF_S = 30.0


def redact(text: str, secrets: tuple[str | None, ...]) -> str:
    """`text` with every non-empty secret replaced by ***, so keys never reach logs, metadata or errors."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def call_with_backoff(
    fn: Callable[[], T],
    *,
    where: str,
    transient: tuple[type[BaseException], ...],
    error: type[Exception],
    max_retries: int = 4,
    backoff_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    secrets: tuple[str | None, ...] = (),
    on_retry: Callable[[BaseException], None] | None = None,
    fatal: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """`fn()`, retried on `transient` exceptions with waits backoff_s * 2**attempt (capped at MAX_BACKOFF_S).

    Raises `error` (message redacted, original cause dropped so no secret rides along in its traceback) when
    retries run out or on a `fatal` exception; anything else (a programming error, say) propagates untouched."""
    for attempt in range(max_retries + 1):
        try:
            return fn()
        except transient as exc:
            if attempt == max_retries:
                msg = f"{where} failed after {attempt + 1} attempts: {type(exc).__name__}: {exc}"
                raise error(redact(msg, secrets)) from None
            if on_retry is not None:
                on_retry(exc)
            sleep(min(backoff_s * 2**attempt, MAX_BACKOFF_S))
        except error:
            raise
        except fatal as exc:
            raise error(redact(f"{where} failed: {type(exc).__name__}: {exc}", secrets)) from None
    raise AssertionError("unreachable")
