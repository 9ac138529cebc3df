"""retry.py (the one policy) and throttle.py (the shared token bucket), with fake time."""

from __future__ import annotations

import threading
import time

import pytest
from structlog.testing import capture_logs

from syncd.errors import (
    ApiError,
    LostResponse,
    RateLimited,
    RemoteUnavailable,
    TokenRejected,
    TransientError,
)
from syncd.retry import RetryPolicy, call_with_retry, retry_after_seconds
from syncd.throttle import Throttle


class Flaky:
    """Fails with the given errors, in order, then returns "done"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_transient_errors_are_retried_with_growing_jittered_waits() -> None:
    waits: list[float] = []
    retried: list[tuple[str, str]] = []
    fn = Flaky(*(TransientError(f"boom {i}") for i in range(4)))
    policy = RetryPolicy(initial=1.0, maximum=3.0, attempts=6, deadline=1000)
    result = call_with_retry(
        "file/info", fn, policy, lambda ep, exc: retried.append((ep, str(exc))), sleep=waits.append
    )
    assert result == "done" and fn.calls == 5
    assert [r[0] for r in retried] == ["file/info"] * 4
    ceilings = [1.0, 2.0, 3.0, 3.0]  # initial * 2**n, capped at maximum
    assert all(0 <= w <= c for w, c in zip(waits, ceilings, strict=True))


def test_retry_after_is_a_floor_for_the_wait() -> None:
    waits: list[float] = []
    fn = Flaky(RateLimited("429", retry_after=7.5), TransientError("x", retry_after=2))
    policy = RetryPolicy(initial=0.01, maximum=0.02, attempts=5, deadline=100)
    assert call_with_retry("folder/listing", fn, policy, sleep=waits.append) == "done"
    assert waits[0] == 7.5 and waits[1] == 2


@pytest.mark.parametrize(
    "error",
    [ApiError("file/info", "Could not find file based on file_id."), LostResponse("x"),
     TokenRejected("x"), ValueError("bug")],
)  # fmt: skip
def test_only_plain_transient_errors_are_retried(error: Exception) -> None:
    fn = Flaky(error)
    with pytest.raises(type(error)):
        call_with_retry("file/info", fn, RetryPolicy.fast(), sleep=lambda s: None)
    assert fn.calls == 1


def test_exhausted_retries_name_the_endpoint_and_chain_the_last_error() -> None:
    fn = Flaky(*(TransientError(f"HTTP 502 #{i}") for i in range(10)))
    with pytest.raises(RemoteUnavailable) as caught:
        call_with_retry("folder/listing", fn, RetryPolicy.fast(attempts=3), sleep=lambda s: None)
    assert fn.calls == 3
    assert "folder/listing" in str(caught.value) and "HTTP 502 #2" in str(caught.value)
    assert isinstance(caught.value.__cause__, TransientError)


def test_deadline_stops_before_a_wait_that_would_pass_it() -> None:
    fn = Flaky(RateLimited("429", retry_after=500), TransientError("never reached"))
    policy = RetryPolicy(initial=0.01, maximum=0.01, attempts=10, deadline=60)
    with pytest.raises(RemoteUnavailable):
        call_with_retry("file/upload", fn, policy, sleep=lambda s: pytest.fail("slept"))
    assert fn.calls == 1


def test_each_retry_is_logged_with_endpoint_attempt_and_error() -> None:
    with capture_logs() as logs:
        call_with_retry("file/info", Flaky(TransientError("HTTP 503")), RetryPolicy.fast())
    [event] = [e for e in logs if e["event"] == "retrying"]
    assert event["endpoint"] == "file/info" and event["attempt"] == 1
    assert event["error"] == "HTTP 503" and event["log_level"] == "warning"


def test_retry_after_header_as_seconds_or_http_date() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 1.5 ") == 1.5
    assert retry_after_seconds("-4") == 0.0
    now = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
    assert retry_after_seconds("Tue, 14 Nov 2023 22:13:50 GMT", now=now) == 30.0
    assert retry_after_seconds("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


# -- throttle -------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_throttle_caps_the_average_rate_after_one_burst() -> None:
    t = FakeTime()
    bucket = Throttle(1000, clock=t.clock, sleep=t.sleep)
    for _ in range(10):
        bucket.consume(500)
    # 5000 bytes at 1000 B/s with 1000 bytes of initial credit: 4 s.
    assert t.now == pytest.approx(4.0)


def test_throttle_is_shared_by_threads_in_real_time() -> None:
    bucket = Throttle(1_000_000, burst=0)
    threads = [
        threading.Thread(target=lambda: [bucket.consume(10_000) for _ in range(10)])
        for _ in range(4)
    ]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - start
    assert 0.38 <= elapsed < 2.0  # 400 kB at 1 MB/s, whoever sends them


def test_unlimited_throttle_never_sleeps() -> None:
    bucket = Throttle(0, sleep=lambda s: pytest.fail("slept"))
    assert bucket.consume(10**9) == 0.0 and not bucket.enabled and bucket.quantum == 0
    assert Throttle(80_000).quantum == 10_000 and Throttle(100).quantum == 4096
