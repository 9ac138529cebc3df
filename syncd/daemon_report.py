"""What ``syncd run`` tells the outside world while it works, and the stop bound.

``DaemonReporter`` is the engine's progress reporter (``queued``/``advance``/``done``,
called from upload workers) and the remote's retry hook. From those callbacks it

- keeps systemd's watchdog fed during long passes (``WATCHDOG=1`` at most once per half
  ``WatchdogSec``; before READY also ``EXTEND_TIMEOUT_USEC``, so a first upload that
  outlasts ``TimeoutStartSec`` while making progress is not killed);
- counts files and bytes uploaded and retries by cause (Prometheus, when enabled);
- enforces the stop bound: once stopping, a retry wait is cut short, and after the grace
  an upload is abandoned *before* its next piece is sent (the body stays incomplete, so
  the server stores nothing; the uploader records the file as pending).

``publish`` writes the status: the ``daemon:queue`` meta ``syncd status`` prints, the
``STATUS=`` line of ``systemctl status``, and the pending/failed gauges.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

from syncd.errors import RemoteUnavailable
from syncd.metrics import MetricsSink
from syncd.remote.uploadapi.remote import retry_cause
from syncd.state import StateStore
from syncd.systemd import Notifier

BEAT: Final = 30.0  # liveness notes without a watchdog (EXTEND_TIMEOUT_USEC before READY)


class DaemonReporter:
    def __init__(
        self,
        notifier: Notifier,
        metrics: MetricsSink,
        stop: threading.Event,
        *,
        wall: Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notifier = notifier
        self.metrics = metrics
        self.stop = stop
        self.wall = wall  # the engine's clock (files' next_try are in it)
        self.clock = clock
        self.ready = False
        self.abandon_at = math.inf  # set with the stop: in-flight uploads end here
        self.next_beat = 0.0
        self._beat_lock = threading.Lock()
        self._sent = threading.local()  # bytes of the current file, per worker
        self._counts = (0, 0)  # pending, failed files, as of the last passes
        self._published: tuple[int, str] | None = None

    # -- the engine's Reporter protocol (upload worker threads) ----------------------
    def queued(self, size: int) -> None:
        self.beat()

    def advance(self, delta: int) -> None:
        if delta > 0 and self.stop.is_set() and self.clock() >= self.abandon_at:
            raise RemoteUnavailable("stopping: upload abandoned")
        self._sent.bytes = getattr(self._sent, "bytes", 0) + delta  # failures take back
        self.beat()

    def done(self, path: str, status: str) -> None:
        sent, self._sent.bytes = getattr(self._sent, "bytes", 0), 0
        if status == "uploaded":
            self.metrics.file_uploaded(max(0, sent))
        self.beat()

    # -- hooks ------------------------------------------------------------------------
    def on_retry(self, endpoint: str, exc: BaseException) -> None:
        """``UploadApiRemote(on_retry=…)``: count it; once stopping, wait no more."""
        self.metrics.retry(retry_cause(exc))
        self.beat()  # riding out an outage is not hanging
        if self.stop.is_set():
            raise RemoteUnavailable(f"{endpoint}: stopping: retry abandoned") from exc

    def heartbeat_clock(self) -> float:
        """The engine's clock, beating: the engine reads it once per directory it plans,
        so a scan-only pass over a big tree (no upload callbacks) still feeds the watchdog
        while a hung one does not."""
        self.beat()
        return self.wall()

    def beat(self) -> None:
        if not self.notifier.enabled:
            return
        interval = self.notifier.watchdog_interval() or BEAT
        now = time.monotonic()
        with self._beat_lock:
            if now < self.next_beat:
                return
            self.next_beat = now + interval
        self.notifier.watchdog()
        if not self.ready:
            self.notifier.notify(f"EXTEND_TIMEOUT_USEC={int(3 * interval * 1_000_000)}")

    # -- status -----------------------------------------------------------------------
    def publish(self, state: StateStore, pairs: int, queued: int, errors: Sequence[str],
                pending: int, failed: int) -> None:
        """Status after a turn of the loop (counts of files from the last passes)."""
        self._counts = (pending, failed)
        self.metrics.set_failed(failed)
        self.metrics.set_pending(pending + queued)
        text = self.status_text(pairs, queued, errors)
        if self._published == (queued, text):
            return
        if self._published is None or self._published[0] != queued:
            state.set_meta("daemon:queue", str(queued))
        self._published = (queued, text)
        self.notifier.status(text)

    def status_text(self, pairs: int, queued: int, errors: Sequence[str]) -> str:
        pending, failed = self._counts
        text = f"watching {pairs} pair(s): {queued} queued, {pending} pending, {failed} failed"
        return f"{text}; last error: {errors[-1]}" if errors else text
