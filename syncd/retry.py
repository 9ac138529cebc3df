"""The one retry policy (tenacity): which errors are retried, how long to wait, when to stop.

Only ``TransientError`` is retried, and never ``LostResponse`` (the request may have
taken effect: the caller must look before repeating it). Waits grow exponentially with
full jitter (a random wait between 0 and ``initial * 2**n``, capped at ``maximum``) and
are never shorter than a server's ``Retry-After``. Retrying stops after ``attempts``
tries or when the next try would start after ``deadline`` seconds; the last error then
becomes ``RemoteUnavailable`` naming the endpoint, chained to that error.

    result = call_with_retry("file/info", lambda: client.call(...), policy, on_retry)
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from syncd.errors import LostResponse, RemoteUnavailable, TransientError
from syncd.log import get_logger

T = TypeVar("T")

OnRetry = Callable[[str, BaseException], None]
"""Called as ``on_retry(endpoint, exc)`` before each wait, e.g. to count retries by cause."""

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial: float = 0.5  # seconds: the first wait is random in [0, initial]
    maximum: float = 30.0  # cap of one jittered wait (a longer Retry-After still wins)
    attempts: int = 6  # tries in all, the first one included
    deadline: float = 120.0  # no new try starts later than this after the first

    @classmethod
    def fast(cls, attempts: int = 6) -> RetryPolicy:
        """For tests: the same logic with waits of milliseconds."""
        return cls(initial=0.01, maximum=0.05, attempts=attempts, deadline=30.0)


ONE_SHOT = RetryPolicy()
"""`sync`, `check`, `restore`: give up on the remote after ~2 minutes of trouble (exit 75)."""

DAEMON = RetryPolicy(initial=1.0, maximum=60.0, attempts=10, deadline=600.0)
"""`run`: ride out longer outages; the engine keeps items pending beyond that."""


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransientError) and not isinstance(exc, LostResponse)


class _Wait(tenacity.wait.wait_base):
    """Full-jitter exponential backoff, at least the error's ``retry_after``."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        n = retry_state.attempt_number  # 1 after the first failure
        ceiling = min(self.policy.maximum, self.policy.initial * 2 ** (n - 1))
        wait = self.rng.uniform(0.0, ceiling)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > wait:
            wait = float(retry_after)
        return wait


class _Stop(tenacity.stop.stop_base):
    """Out of attempts, or the next try would start past the deadline."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        if retry_state.attempt_number >= self.policy.attempts:
            return True
        elapsed = retry_state.seconds_since_start or 0.0
        upcoming = getattr(retry_state, "upcoming_sleep", 0.0)  # tenacity >= 8.3 sets it
        return elapsed + upcoming > self.policy.deadline


_rng = random.Random()


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as delta-seconds or an HTTP-date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def call_with_retry(
    endpoint: str,
    fn: Callable[[], T],
    policy: RetryPolicy = ONE_SHOT,
    on_retry: OnRetry | None = None,
    *,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run ``fn`` under the policy. Non-retryable errors propagate unchanged; exhausted
    retries raise ``RemoteUnavailable`` from the last error."""

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if exc is None:  # pragma: no cover - only failures are retried
            return
        log.warning(
            "retrying",
            endpoint=endpoint,
            attempt=retry_state.attempt_number,
            error=str(exc),
            wait=round(getattr(retry_state, "upcoming_sleep", 0.0), 3),
        )
        if on_retry is not None:
            on_retry(endpoint, exc)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_retryable),
        wait=_Wait(policy, _rng),
        stop=_Stop(policy),
        before_sleep=before_sleep,
        reraise=False,
        sleep=sleep if sleep is not None else tenacity.nap.sleep,
    )
    try:
        return retrying(fn)
    except tenacity.RetryError as gave_up:
        last = gave_up.last_attempt.exception()
        attempts = gave_up.last_attempt.attempt_number
        raise RemoteUnavailable(
            f"{endpoint}: giving up after {attempts} attempts: {last}"
        ) from last
