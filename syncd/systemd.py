"""sd_notify(3) without a dependency: a few datagrams to ``$NOTIFY_SOCKET``.

systemd (``Type=notify``) passes the socket in ``$NOTIFY_SOCKET``: a filesystem path, or
an abstract-namespace name written with a leading ``@``. Each notification is one
datagram of ``KEY=VALUE`` lines. ``WatchdogSec=`` sets ``$WATCHDOG_USEC`` (and
``$WATCHDOG_PID``): the service must send ``WATCHDOG=1`` more often than that or be
killed and restarted; we ping at half the interval, as sd_watchdog_enabled(3) advises.

Without ``$NOTIFY_SOCKET`` (a terminal, a test, ``syncd sync`` from cron) every method is
a no-op, so callers never check. Sending is best effort: a failure is logged at debug
level and reported as ``False``; it never raises into the service loop.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping

from syncd.log import get_logger

log = get_logger("syncd.systemd")


def _address(notify_socket: str) -> str | None:
    """The ``sendto`` address for ``$NOTIFY_SOCKET``; None if unusable (e.g. vsock:)."""
    if notify_socket.startswith("@"):
        return "\0" + notify_socket[1:]  # abstract namespace
    if notify_socket.startswith("/"):
        return notify_socket
    return None


class Notifier:
    """Talks to the service manager; a no-op when not started by one."""

    def __init__(self, address: str | None = None, *, watchdog_usec: int | None = None) -> None:
        """``address``: a socket path or ``\\0``-prefixed abstract name (None = disabled);
        ``watchdog_usec``: the manager's watchdog timeout (None = watchdog off)."""
        self._address = address
        self._watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, pid: int | None = None
    ) -> Notifier:
        """Read ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID``.

        The watchdog counts only if ``$WATCHDOG_PID`` is unset or names this process
        (``pid``, default ``os.getpid()``): a child must not ping for its parent.
        """
        env = os.environ if environ is None else environ
        address = _address(env.get("NOTIFY_SOCKET", ""))
        usec: int | None = None
        try:
            usec = int(env.get("WATCHDOG_USEC", ""))
        except ValueError:
            usec = None
        watchdog_pid = env.get("WATCHDOG_PID", "")
        if watchdog_pid and watchdog_pid != str(os.getpid() if pid is None else pid):
            usec = None
        return cls(address, watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens."""
        return self._address is not None

    @property
    def watchdog_enabled(self) -> bool:
        return self.enabled and self._watchdog_usec is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between ``watchdog()`` pings (half of ``WatchdogSec=``), or None."""
        if not self.watchdog_enabled or self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def ready(self, status: str | None = None) -> bool:
        """READY=1: start-up finished (first pass planned, watches in place)."""
        return self.notify("READY=1", *self._status_line(status))

    def status(self, text: str) -> bool:
        """STATUS=…: one line shown by ``systemctl status``."""
        return self.notify(*self._status_line(text))

    def stopping(self, status: str | None = None) -> bool:
        """STOPPING=1: graceful shutdown has begun."""
        return self.notify("STOPPING=1", *self._status_line(status))

    def reloading(self) -> bool:
        """RELOADING=1 (e.g. on SIGHUP); send ``ready()`` again when the reload is done."""
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def watchdog(self) -> bool:
        """WATCHDOG=1 keep-alive; a no-op unless the manager enabled the watchdog."""
        if not self.watchdog_enabled:
            return False
        return self.notify("WATCHDOG=1")

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; False if disabled or it failed."""
        if self._address is None or not assignments:
            return False
        payload = "\n".join(assignments).encode("utf-8", "replace")
        try:
            with self._lock:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                # Never block the service loop on a manager that is slow to read: a
                # notification that does not fit now is dropped (the next one follows).
                self._sock.sendto(payload, socket.MSG_DONTWAIT, self._address)
        except OSError as exc:
            log.debug("sd_notify failed", error=str(exc))
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @staticmethod
    def _status_line(text: str | None) -> tuple[str, ...]:
        if text is None:
            return ()
        # One datagram, one assignment per line: a newline would start a bogus key.
        return ("STATUS=" + " ".join(text.splitlines()),)
