"""What all connections of one emulator share: store, faults, RNG, request log, errors."""

from __future__ import annotations

import random
import sys
import threading
from collections import deque
from typing import Any

from syncd.emulator.options import EmulatorOptions, Faults
from syncd.emulator.store import Store


class App:
    """State shared by all connections of one emulator: store, faults, request log."""

    def __init__(self, options: EmulatorOptions, store: Store) -> None:
        self.options = options
        self.store = store
        self.faults: Faults = options.faults()
        self.base_url = ""  # set once the port is known
        self._rng = random.Random(options.seed)
        self._lock = threading.Lock()
        self._requests: deque[tuple[str, str]] = deque(maxlen=options.request_log_size)
        self.errors: list[str] = []
        self.active_uploads = 0
        self.peak_uploads = 0

    def upload_begins(self) -> None:
        with self._lock:
            self.active_uploads += 1
            self.peak_uploads = max(self.peak_uploads, self.active_uploads)

    def upload_ends(self) -> None:
        with self._lock:
            self.active_uploads -= 1

    def report_error(self, text: str) -> None:
        """An emulator bug (not a client's fault): kept for tests, printed for users."""
        with self._lock:
            self.errors.append(text)
        sys.stderr.write(f"emulator: internal error:\n{text}")

    def record(self, method: str, endpoint: str) -> None:
        with self._lock:
            self._requests.append((method, endpoint))

    def requests(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self.peak_uploads = self.active_uploads

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def pick(self, seq: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._rng.choice(seq)
