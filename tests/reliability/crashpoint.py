"""Run the real ``syncd`` CLI and SIGKILL it at a chosen instant, from inside.

    python -m tests.reliability.crashpoint POINT N -- --config CFG sync

Random kills from outside (``torture.py``) land anywhere but rarely in the few
microseconds between a remote effect and its record; this harness lands there on purpose.
The process kills itself with SIGKILL (no cleanup, no flush, exactly like ``kill -9``) at
the ``N``-th (1-based) occurrence of ``POINT``:

``after:<method>``   right after the ``N``-th ``UploadApiRemote.<method>`` call returned:
                     the server acted (folder created, file stored, old copy trashed,
                     name restored) and syncd has not recorded it yet.
``before:<method>``  right before the ``N``-th call is sent (its intent is recorded).
``sql``              right after the ``N``-th SQLite write statement executed, before its
                     transaction committed (the WAL holds an uncommitted frame or none).

When the point is never reached the command simply runs to its end (exit code as usual);
the harness prints ``crashpoint: not reached`` on stderr so a test can tell.
"""

from __future__ import annotations

import functools
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from syncd.remote.uploadapi.remote import UploadApiRemote
from syncd.state import StateStore

WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _Counter:
    def __init__(self, n: int) -> None:
        self.n = n
        self.seen = 0

    def hit(self) -> bool:
        self.seen += 1
        return self.seen == self.n


def _patch_remote(method: str, when: str, counter: _Counter) -> None:
    original: Callable[..., Any] = getattr(UploadApiRemote, method)

    @functools.wraps(original)
    def wrapper(self: UploadApiRemote, *args: Any, **kwargs: Any) -> Any:
        if when == "before" and counter.hit():
            die()
        result = original(self, *args, **kwargs)
        if when == "after" and counter.hit():
            die()
        return result

    setattr(UploadApiRemote, method, wrapper)


class _KillingConnection:
    """Delegates to the real connection; dies after the N-th write statement."""

    def __init__(self, conn: sqlite3.Connection, counter: _Counter) -> None:
        self._conn = conn
        self._counter = counter

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        cursor = self._conn.execute(sql, params)
        if sql.lstrip().upper().startswith(WRITE_VERBS) and self._counter.hit():
            die()
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _patch_sql(counter: _Counter) -> None:
    original = StateStore.__init__

    @functools.wraps(original)
    def init(self: StateStore, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._conn = _KillingConnection(self._conn, counter)  # type: ignore[assignment]

    StateStore.__init__ = init  # type: ignore[method-assign]


def install(point: str, n: int) -> _Counter:
    counter = _Counter(n)
    if point == "sql":
        _patch_sql(counter)
    else:
        when, _, method = point.partition(":")
        if when not in ("before", "after") or not hasattr(UploadApiRemote, method):
            raise SystemExit(f"crashpoint: unknown point {point!r}")
        _patch_remote(method, when, counter)
    return counter


def main(argv: list[str]) -> int:
    point, n, sep, *rest = argv
    if sep != "--":
        raise SystemExit("usage: crashpoint POINT N -- SYNCD-ARGS…")
    counter = install(point, int(n))
    from syncd.cli import main as syncd_main

    try:
        syncd_main(rest, prog_name="syncd")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:  # pragma: no cover - click always exits
        code = 0
    if counter.seen < counter.n:
        sys.stderr.write(f"crashpoint: not reached ({counter.seen} of {counter.n})\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
