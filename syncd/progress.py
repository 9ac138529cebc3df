"""Progress of a pass: a rich bar on a TTY, a periodic log line otherwise.

The engine streams, so the total grows as the scan finds work; the bar's ETA is over the
work found so far. Callbacks come from worker threads: everything here is thread-safe.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from syncd.log import get_logger

log = get_logger("syncd.progress")


class Reporter(Protocol):
    def queued(self, size: int) -> None: ...
    def advance(self, delta: int) -> None: ...
    def done(self, path: str, status: str) -> None: ...


class NullReporter:
    def queued(self, size: int) -> None:
        pass

    def advance(self, delta: int) -> None:
        pass

    def done(self, path: str, status: str) -> None:
        pass


class LogReporter:
    """One "progress" log line every ``interval`` seconds while work is flowing."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._files_total = self._files_done = 0
        self._bytes_total = self._bytes_done = 0
        self._started = self._last = time.monotonic()

    def queued(self, size: int) -> None:
        with self._lock:
            self._files_total += 1
            self._bytes_total += size

    def advance(self, delta: int) -> None:
        with self._lock:
            self._bytes_done += delta
        self._maybe_log()

    def done(self, path: str, status: str) -> None:
        with self._lock:
            self._files_done += 1
        self._maybe_log()

    def _maybe_log(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.interval:
                return
            self._last = now
            elapsed = max(now - self._started, 1e-6)
            fields = {
                "files": f"{self._files_done}/{self._files_total}",
                "bytes": self._bytes_done,
                "rate": int(self._bytes_done / elapsed),
            }
        log.info("progress", **fields)


class RichReporter:
    """A live bar (files, bytes, rate, ETA) on stderr; use as a context manager. ``label``
    names the bar: "sync 3/10", "restore 3/10"."""

    def __init__(self, label: str = "sync") -> None:
        self.label = label
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._files = self._progress.add_task(label, total=0)
        self._lock = threading.Lock()
        self._bytes_total = 0
        self._bytes_done = 0
        self._files_done = 0
        self._files_total = 0

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def queued(self, size: int) -> None:
        with self._lock:
            self._files_total += 1
            self._bytes_total += size
            self._refresh()

    def advance(self, delta: int) -> None:
        with self._lock:
            self._bytes_done += delta
            self._refresh()

    def done(self, path: str, status: str) -> None:
        with self._lock:
            self._files_done += 1
            self._refresh()

    def _refresh(self) -> None:
        # Bytes drive the bar, rate and ETA; the description carries the file counts.
        self._progress.update(
            self._files,
            total=max(self._bytes_total, 1),
            completed=self._bytes_done,
            description=f"{self.label} {self._files_done}/{self._files_total}",
        )
