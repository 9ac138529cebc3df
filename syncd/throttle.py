"""A token bucket shared by every upload worker, so ``bwlimit`` caps the total rate.

One ``Throttle`` is constructed per process and handed to the API client; each worker
calls ``consume(n)`` before it sends ``n`` bytes. A caller that asks for more than is
available reserves the bytes anyway (the bucket goes negative) and sleeps for exactly
its debt, outside the lock: workers are served in arrival order and none busy-waits.
Time is injected so tests never sleep for real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MIN_QUANTUM = 4096  # below this, per-chunk overhead costs more than the smoothing gains


class Throttle:
    """Thread-safe token bucket: ``rate`` bytes per second, ``burst`` bytes of credit.

    ``rate`` 0 means unlimited: ``consume`` returns at once.
    """

    def __init__(
        self,
        rate: int,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self.rate = rate
        # One second of credit by default: short bursts pass, the average stays capped.
        self.burst = burst if burst is not None else rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._stamp = clock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    @property
    def quantum(self) -> int:
        """A good piece size for callers: about 1/8 s of traffic, so progress stays smooth
        and one worker cannot grab seconds of credit at once."""
        return max(MIN_QUANTUM, self.rate // 8) if self.rate else 0

    def consume(self, n: int) -> float:
        """Take ``n`` bytes of credit, sleeping as long as needed. Returns the time slept."""
        if self.rate <= 0 or n <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= n
            debt = -self._tokens
        if debt <= 0:
            return 0.0
        delay = debt / self.rate
        self._sleep(delay)
        return delay
