"""``syncd run`` as a process: its signal handlers and its session.

Signals: SIGTERM/SIGINT stop, SIGHUP reloads.
A Python signal handler runs in the main thread between two bytecodes, possibly while
that thread holds a lock (a ``queue.Queue`` mutex, a logger's lock). The callbacks given
here must therefore only do what is safe at any instant: set flags, ``Event.set()`` on an
event the main thread never waits on, and ``queue.SimpleQueue.put()`` (documented as
reentrant). Logging and I/O happen later, in the loop.

Handlers are installed only on the main thread (Python allows no other); a daemon
driven from another thread, as the tests do, is stopped with ``Daemon.request_stop()``.

The session is ``commands.open_session`` (state lock, state DB, remote; the token is
disabled on the way out) with the daemon's retry policy (rides out longer outages) and
a retry hook (retries counted by cause; cut short once stopping).
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from syncd.config import Config
from syncd.engine import Engine
from syncd.lock import StateLock
from syncd.remote.uploadapi.remote import UploadApiRemote
from syncd.retry import DAEMON
from syncd.state import StateStore

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RELOAD_SIGNAL = signal.SIGHUP

# DAEMON's waits grow to 60 s, and a wait cannot be cut short: a stop would wait it out
# (TimeoutStopSec=30) and the watchdog (WatchdogSec=60, fed at each retry) would starve.
# Capped at 10 s, ten tries span about a minute; the loop's own backoff of unfinished
# passes (15 s doubling to 15 min) rides out longer outages.
POLICY = dataclasses.replace(DAEMON, maximum=10.0)

_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def install_handlers(
    on_stop: Callable[[int], None], on_reload: Callable[[], None]
) -> Callable[[], None]:
    """Route stop and reload signals to the callbacks; returns a function that puts the
    previous handlers back (a no-op off the main thread, where nothing is installed)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop_handler(signum: int, frame: FrameType | None) -> None:
        on_stop(signum)

    def reload_handler(signum: int, frame: FrameType | None) -> None:
        on_reload()

    previous: dict[signal.Signals, _Handler] = {}
    for sig in STOP_SIGNALS:
        previous[sig] = signal.signal(sig, stop_handler)
    previous[RELOAD_SIGNAL] = signal.signal(RELOAD_SIGNAL, reload_handler)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    return restore


@contextmanager
def daemon_engine(config: Config, on_retry: Callable[[str, BaseException], None]
                  ) -> Iterator[Engine]:
    """Like ``commands.open_session`` (lock, state, remote; the token disabled at exit),
    with the daemon's retry policy and retry hook."""
    from syncd.log import add_secret

    with StateLock(config.sync.state_db):
        state = StateStore(config.sync.state_db)
        try:
            remote = UploadApiRemote(config.remote, workers=config.sync.workers,
                                     bwlimit=config.sync.bwlimit, policy=POLICY,
                                     on_retry=on_retry, on_secret=add_secret)
            try:
                yield Engine(config, state, remote)
            finally:
                remote.close()
        finally:
            state.close()
