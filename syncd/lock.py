"""One process per state DB (SPEC §4): an ``flock`` on ``<state db>.lock``.

The lock file holds the holder's pid (for the "another syncd (pid N) is running"
message) and is never deleted: unlinking it would let a second process lock a fresh
inode while the first still holds the old one. ``flock`` locks vanish with the process
(kill -9 included), so a held lock always means a live holder; a stale pid in an unlocked
file means nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from syncd.errors import StateError, StateLocked

LOCK_SUFFIX = ".lock"


def lock_path_for(db_path: Path) -> Path:
    """``state.db`` -> ``state.db.lock`` (next to the DB, so it is on the same host)."""
    return db_path.with_name(db_path.name + LOCK_SUFFIX)


def state_files(db_path: Path) -> tuple[Path, ...]:
    """Every file syncd keeps for ``db_path`` (to exclude them when inside a local root)."""
    companions = [db_path.with_name(db_path.name + s) for s in ("-wal", "-shm", "-journal")]
    return (db_path, *companions, lock_path_for(db_path))


class StateLock:
    """An exclusive, non-blocking lock held for the life of a ``sync``/``run``/``restore``.

    ``acquire`` raises ``StateLocked`` (exit 75) naming the holder's pid when another
    process holds it. A context manager; ``release`` is idempotent.
    """

    def __init__(self, db_path: Path) -> None:
        self.path = lock_path_for(db_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> StateLock:
        if self._fd is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StateError(f"cannot create state lock {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StateLocked(pid, str(self.path)) from None
        except OSError as exc:
            os.close(fd)
            raise StateError(f"cannot lock {self.path}: {exc.strerror}") from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise StateError(f"cannot write state lock {self.path}: {exc.strerror}") from exc
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no stale pid for a reader to misreport
        os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def read_holder(db_path: Path) -> int | None:
    """The pid of the live process holding the state lock, or None if nobody holds it.

    Used by ``status`` (which does not take the lock). Returns 0 when the lock is held but
    the holder has not written its pid yet (a few microseconds after it locked).
    """
    path = lock_path_for(db_path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read state lock {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            for _ in range(20):  # the holder writes its pid right after locking
                pid = _read_pid(fd)
                if pid:
                    return pid
                time.sleep(0.005)
            return 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None
