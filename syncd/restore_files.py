"""Restore jobs into a directory: the part of ``restore`` shared by both of its sources.

A ``Job`` says "the file at this relative path is remote file N, of this size / MD5 /
mtime". ``Restorer`` runs jobs on a bounded pool of workers (as uploads do), creates
directories, and fills a ``RestoreResult``. Per file:

    target missing                      -> download, verify, place           "restored"
    target has the expected content     -> left as it is                     "present"
    target differs / is not a file      -> left untouched, listed            "not restored"
                                           (replaced with ``overwrite``; a directory never)
    expected MD5 unknown, size matches  -> downloaded, then compared with the target

Directories below the destination are created as needed but never followed through a
symlink (a link planted in the destination could otherwise send a restore anywhere).
Each directory written into is cleaned of temp files a killed restore left behind, and
fsync'ed once at the end so the renames are durable.
"""

from __future__ import annotations

import os
import stat
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from syncd.download import (
    EMPTY_MD5,
    BadDownload,
    Expected,
    TargetExists,
    clean_stale_temps,
    default_file_mode,
    empty_temp,
    fetch_to_temp,
    file_md5,
    fsync_dir,
    place,
)
from syncd.errors import (
    ApiError,
    AuthRefused,
    LocalError,
    RemoteError,
    RemoteUnavailable,
    SyncdError,
    WrongPath,
    result_exit_code,
)
from syncd.log import get_logger
from syncd.model import parent_of
from syncd.progress import NullReporter, Reporter
from syncd.remote.base import Remote
from syncd.remote_walk import safe_name

log = get_logger("syncd.restore")

FATAL = (RemoteUnavailable, AuthRefused, WrongPath)  # the run cannot go on: exit 75 / 77 / 78
DIFFERS = "exists with other content (left untouched; --overwrite replaces it)"


@dataclass(frozen=True, slots=True)
class Job:
    path: str  # relative POSIX path below the destination
    file_id: str | None  # None: a recorded zero-byte file, recreated empty
    size: int | None
    md5: str | None = None
    mtime_ns: int | None = None

    @property
    def expected(self) -> Expected:
        return Expected(self.size, self.md5, self.mtime_ns)


@dataclass
class RestoreResult:
    """The outcome of restoring one pair (or one ``--from-remote`` folder)."""

    pair: str | None
    remote_path: str | None
    to: Path
    dry_run: bool = False
    restored: int = 0  # files written (downloaded or recreated empty)
    present: int = 0  # already there with the right content
    bytes: int = 0
    folders: int = 0  # directories created or found
    empty: int = 0  # zero-byte files recreated (never stored remotely)
    verified_md5: int = 0
    verified_size: int = 0  # restored or found with only the size to check against
    not_restored: list[tuple[str, str]] = field(default_factory=list)
    not_in_backup: list[tuple[str, str]] = field(default_factory=list)  # skipped by rule
    planned: list[tuple[str, str]] = field(default_factory=list)  # dry run: (action, path)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    fatal: SyncdError | None = None

    @property
    def exit_code(self) -> int:
        return result_exit_code(self.fatal, failed=bool(self.not_restored or self.error))


class Restorer:
    """Runs jobs into ``to`` with ``workers`` threads; ``finish()`` waits for them."""

    def __init__(
        self,
        remote: Remote,
        to: Path,
        result: RestoreResult,
        *,
        overwrite: bool,
        dry_run: bool,
        workers: int,
        reporter: Reporter | None = None,
        attempts: int | None = None,
    ) -> None:
        self.remote, self.to, self.result = remote, to, result
        self.overwrite, self.dry_run = overwrite, dry_run
        self.workers = max(1, workers)
        self.reporter = reporter or NullReporter()
        self.attempts = attempts
        self._lock = threading.Lock()  # result counters and the directory cache
        self._dirs: set[str] = {""}
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.Semaphore(self.workers * 2)  # bounded queue: flat memory
        self._futures: list[Future[None]] = []
        self._cancelled = False
        default_file_mode()  # read the umask now, in the calling (main) thread
        if not dry_run:
            clean_stale_temps(to)

    @property
    def stopped(self) -> bool:
        return self.result.fatal is not None or self._cancelled

    def cancel(self) -> None:
        """Ctrl-C: queued jobs are dropped; downloads in flight finish (or fail) first."""
        self._cancelled = True

    # -- directories ---------------------------------------------------------------------
    def make_dir(self, path: str) -> None:
        """Recreate a recorded / listed directory (empty ones too)."""
        if self.dry_run:
            self.result.planned.append(("mkdir", path))
            return
        try:
            self._ensure_dir(path)
        except LocalError as exc:
            self._not_restored(path + "/", str(exc))

    def _ensure_dir(self, path: str) -> Path:
        """``to/path``, creating missing parts; refuses to go through a symlink or a file."""
        with self._lock:
            if path in self._dirs:
                return self.to / path
            done = ""
            for part in path.split("/"):
                done = f"{done}/{part}" if done else part
                if done in self._dirs:
                    continue
                target = self.to / done
                try:
                    os.mkdir(target)
                except FileExistsError:
                    st = os.lstat(target)
                    if stat.S_ISLNK(st.st_mode):
                        raise LocalError(f"{done} is a symlink: not restoring through it") from None
                    if not stat.S_ISDIR(st.st_mode):
                        raise LocalError(f"{done} exists and is not a directory") from None
                    clean_stale_temps(target)
                except OSError as exc:
                    raise LocalError(f"cannot create {target}: {exc.strerror or exc}") from exc
                self._dirs.add(done)
                self.result.folders += 1
            return self.to / path

    # -- files ---------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        if self.stopped:
            self._not_restored(job.path, f"not attempted: {self.result.fatal or 'interrupted'}")
            return
        if not all(safe_name(part) for part in job.path.split("/")):
            self._not_restored(job.path, "unsafe name: not restored")
            return
        if self.dry_run:
            self._plan(job)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="syncd-restore")
        self._slots.acquire()
        self.reporter.queued(job.size or 0)
        self._futures.append(self._pool.submit(self._run, job))
        if len(self._futures) > self.workers * 64:  # do not keep a future per file
            self._futures = [f for f in self._futures if not f.done()]

    def finish(self) -> None:
        """Wait for every job, then make the renames durable."""
        if self._pool is not None:
            for future in self._futures:
                future.result()  # _run never raises: failures are listed in the result
            self._pool.shutdown(wait=True)
            self._futures.clear()
        if not self.dry_run:
            for path in sorted(self._dirs):
                fsync_dir(self.to / path)

    def _run(self, job: Job) -> None:
        status = "failed"
        try:
            status = self._restore(job)
        except FATAL as exc:
            with self._lock:
                self.result.fatal = self.result.fatal or exc
            self._not_restored(job.path, str(exc))
        except (BadDownload, LocalError, ApiError, TargetExists, RemoteError) as exc:
            self._not_restored(job.path, _reason(exc))
        except Exception as exc:  # a bug: keep the other files going, and say so
            log.exception("restore bug", path=job.path)
            self._not_restored(job.path, f"internal error: {exc!r}")
        finally:
            self._slots.release()
            self.reporter.done(job.path, status)

    def _restore(self, job: Job) -> str:
        """One file; returns "restored" or "present" or raises with the reason."""
        if self.stopped:
            raise LocalError(f"not attempted: {self.result.fatal or 'interrupted'}")
        directory = self._ensure_dir(parent_of(job.path))
        target = self.to / job.path
        verdict = self._existing(target, job)
        if verdict == "same":
            self._count_present(job)
            return "present"
        if verdict in ("differs", "not a file") and not self.overwrite:
            raise TargetExists(DIFFERS if verdict == "differs" else "exists and is not a file")
        if verdict == "directory":
            raise TargetExists("exists and is a directory (never replaced)")
        name = job.path.rpartition("/")[2]
        if job.file_id is None:
            tmp, md5 = empty_temp(directory, name, job.mtime_ns), EMPTY_MD5
        else:
            kwargs = {} if self.attempts is None else {"attempts": self.attempts}
            tmp, got = fetch_to_temp(
                self.remote,
                job.file_id,
                directory,
                name,
                job.expected,
                on_progress=self.reporter.advance,
                **kwargs,
            )
            md5 = got.md5
        if verdict == "compare" and not self.overwrite:  # only the size was known
            same = file_md5(target) == md5
            tmp.unlink()
            if not same:
                raise TargetExists(DIFFERS)
            self._count_present(job)
            return "present"
        place(tmp, target, overwrite=self.overwrite)
        with self._lock:
            self.result.restored += 1
            self.result.bytes += job.size or 0
            if job.file_id is None:
                self.result.empty += 1
            elif job.md5 is not None:
                self.result.verified_md5 += 1
            else:
                self.result.verified_size += 1
        log.debug("restored", path=job.path, file_id=job.file_id, bytes=job.size)
        return "restored"

    def _existing(self, target: Path, job: Job) -> str:
        """missing | same | differs | compare (size-only match) | not a file | directory"""
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            return "missing"
        except OSError as exc:
            raise LocalError(f"cannot stat {target}: {exc.strerror or exc}") from exc
        if stat.S_ISDIR(st.st_mode):
            return "directory"
        if not stat.S_ISREG(st.st_mode):
            return "not a file"
        if job.size is not None and st.st_size != job.size:
            return "differs"
        expected = EMPTY_MD5 if job.file_id is None else job.md5
        if expected is None:
            return "compare"
        return "same" if file_md5(target) == expected else "differs"

    def _plan(self, job: Job) -> None:
        try:
            verdict = self._existing(self.to / job.path, job)
        except LocalError as exc:
            self._not_restored(job.path, str(exc))
            return
        if verdict == "same":
            self.result.planned.append(("present", job.path))
        elif verdict == "missing" or (self.overwrite and verdict != "directory"):
            action = "create empty" if job.file_id is None else "restore"
            self.result.planned.append((action if verdict == "missing" else "replace", job.path))
        elif verdict == "compare":
            self.result.planned.append(("compare", job.path))
        else:
            self._not_restored(job.path, DIFFERS if verdict == "differs" else f"exists: {verdict}")

    def _count_present(self, job: Job) -> None:
        with self._lock:
            self.result.present += 1
            if job.md5 is None and job.file_id is not None:
                self.result.verified_size += 1
            else:
                self.result.verified_md5 += 1

    def _not_restored(self, path: str, reason: str) -> None:
        with self._lock:
            self.result.not_restored.append((path, reason))
        log.warning("not restored", path=path, error=reason)


def _reason(exc: SyncdError) -> str:
    if isinstance(exc, ApiError):
        return f"missing on the remote ({exc.server_message})"
    return str(exc)
