"""The shared retry: transient failures wait and retry with doubling waits; others surface, redacted."""

from __future__ import annotations

import pytest

from market.retry import MAX_BACKOFF_S, call_with_backoff


class Boom(RuntimeError):
    pass


def _flaky(failures: list[BaseException], result: str = "ok"):
    def call() -> str:
        if failures:
            raise failures.pop(0)
        return result

    return call


def test_transient_failures_are_retried_with_doubling_capped_waits() -> None:
    waits: list[float] = []
    retried: list[BaseException] = []
    fn = _flaky([TimeoutError("slow")] * 6)
    got = call_with_backoff(
        fn,
        where="x",
        transient=(TimeoutError,),
        error=Boom,
        max_retries=6,
        backoff_s=5.0,
        sleep=waits.append,
        on_retry=retried.append,
    )
    assert got == "ok" and len(retried) == 6
    assert waits == [5.0, 10.0, 20.0, MAX_BACKOFF_S, MAX_BACKOFF_S, MAX_BACKOFF_S]


def test_exhausted_retries_and_fatal_errors_raise_the_source_error_without_the_secret() -> None:
    secret = "sk-live-123"
    with pytest.raises(Boom, match="failed after 3 attempts") as info:
        call_with_backoff(
            _flaky([TimeoutError(f"token {secret}")] * 3),
            where="GET /v3",
            transient=(TimeoutError,),
            error=Boom,
            max_retries=2,
            sleep=lambda s: None,
            secrets=(secret,),
        )
    assert secret not in str(info.value) and info.value.__suppress_context__
    with pytest.raises(Boom, match=r"GET /v3 failed: ValueError: bad \*\*\*"):
        call_with_backoff(
            _flaky([ValueError(f"bad {secret}")]),
            where="GET /v3",
            transient=(TimeoutError,),
            error=Boom,
            sleep=lambda s: None,
            secrets=(secret,),
        )


def test_an_error_outside_fatal_propagates_untouched() -> None:
    with pytest.raises(KeyError):
        call_with_backoff(
            _flaky([KeyError("bug")]),
            where="x",
            transient=(TimeoutError,),
            error=Boom,
            fatal=(ValueError,),
            sleep=lambda s: None,
        )
