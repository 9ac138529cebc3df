"""Settings of one emulator instance, and the faults it injects.

``EmulatorOptions`` is fixed at start; ``Faults`` is copied out of it and stays mutable
while the server runs (``srv.faults.fail_rate = 0.5``), because reliability tests turn
faults on and off between steps. The fault kinds mirror what proxies and overloaded PHP
hosts do in front of real YetiShare sites: the application itself never sends 429/5xx.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

ErrorStyle = Literal["status", "_status"]

# Fixed so that a config snippet printed once keeps working across emulator restarts.
DEMO_KEY1 = "d3m0k3y1" * 8
DEMO_KEY2 = "d3m0k3y2" * 8

FIVE_GIB = 5 * 1024**3  # what a fresh 4.x install's "Registered User" package allows


@dataclass
class Faults:
    """Fault injection, read on every request (API calls and downloads, never /_emulator).

    Rates are probabilities in [0, 1] drawn independently per request from one seeded RNG.
    """

    fail_rate: float = 0.0
    """Answer 500/502/503 with a proxy-style HTML page, without acting."""
    reset_rate: float = 0.0
    """Abort the connection (TCP RST) without answering; uploads after part of the body."""
    rate_limit: float = 0.0
    """Answer 429 with ``Retry-After: retry_after``, without acting."""
    late_fail_rate: float = 0.0
    """file/upload and folder/create: act, THEN answer 502 (the "lost response" case)."""
    latency: float = 0.0
    """Seconds added before every request is handled."""
    html_errors: float = 0.0
    """Answer HTTP 200 with a PHP "SYSTEM ERROR" HTML page instead of JSON, without acting."""
    retry_after: float = 1.0
    """Seconds sent in 429 answers; integral values go out as integers, others as decimals."""
    corrupt_download_rate: float = 0.0
    """Flip one byte in the body of a download."""
    endpoints: frozenset[str] = frozenset()
    """When not empty, the faults above hit only these API endpoints (e.g. folder/create)."""


@dataclass
class EmulatorOptions:
    """Everything an emulator instance is started with. Only ``data_dir`` is required."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    prefix: str = "/api/v2/"
    key1: str = DEMO_KEY1
    key2: str = DEMO_KEY2
    error_style: ErrorStyle = "status"
    """ "status" = 4.x ``{"status":"error",…}``; "_status" = 5.x ``{…,"_status":"error",…}``."""
    hash_always: bool = False
    """Return the MD5 as ``hash`` for every upload (real 4.x: only for known content)."""
    token_ttl: float = 3600.0
    """Idle seconds after which a used token dies (a never-used token lives on)."""
    max_upload_size: int = FIVE_GIB
    concurrent_uploads: int = 0
    package_label: str = "Registered User"
    seed: int | None = None
    persist: bool = True
    """Journal metadata to ``data_dir/store.jsonl`` so a restart keeps the account."""
    request_log_size: int = 100_000
    """How many (method, endpoint) entries ``srv.requests`` keeps (oldest dropped)."""
    log_requests: bool = False
    """Print one line per request to stderr (the CLI's verbose mode)."""
    clock: Callable[[], float] = time.time
    """Wall clock for token expiry; tests may inject a fake one."""
    # Faults (copied into a mutable ``Faults`` at start; see there).
    fail_rate: float = 0.0
    reset_rate: float = 0.0
    rate_limit: float = 0.0
    late_fail_rate: float = 0.0
    latency: float = 0.0
    html_errors: float = 0.0
    retry_after: float = 1.0
    corrupt_download_rate: float = 0.0

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.error_style not in ("status", "_status"):
            raise ValueError(f"error_style must be 'status' or '_status', not {self.error_style!r}")
        for name in ("key1", "key2"):
            if len(getattr(self, name)) != 64:
                raise ValueError(f"{name} must be 64 characters long")
        if not self.prefix.startswith("/"):
            self.prefix = "/" + self.prefix
        if not self.prefix.endswith("/"):
            self.prefix += "/"

    def faults(self) -> Faults:
        """A fresh mutable ``Faults`` holding this instance's fault settings."""
        names = {f.name for f in fields(Faults)} & {f.name for f in fields(self)}
        return Faults(**{n: getattr(self, n) for n in names})
