"""Bring one remote file back to disk, verified: the only way restore writes a file.

    tmp = fetch_to_temp(remote, file_id, directory, name, Expected(size, md5, mtime_ns))
    place(tmp, directory / name, overwrite=False)

``fetch_to_temp`` streams the download into a temporary file *beside* the target (same
directory, so the final rename is atomic and never crosses a filesystem), judges it by
its size and MD5 only (a status code proves nothing: servers answer errors with 200 HTML
pages; API-observed "Download URLs"), fetches it again a bounded number of times when the
check fails, fsyncs it and sets its mtime. A copy that fails its check is deleted: the
target is never touched by a bad download. ``place`` renames the verified copy into place,
refusing to replace an existing file unless asked to (atomically where the filesystem has
hard links, so a file that appears meanwhile is never clobbered).

Temporary names are ``.<name>.syncd-XXXXXXXX.tmp``: they match the default ignore pattern
``*.tmp`` (a daemon watching the directory never uploads a half-restored file), and
``clean_stale_temps`` removes the ones a killed restore left behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from syncd.errors import LocalError, RemoteUnavailable, SyncdError
from syncd.log import get_logger
from syncd.remote.base import DownloadResult, ProgressFn, Remote

log = get_logger("syncd.download")

DOWNLOAD_ATTEMPTS = 3  # tries per file, each with a fresh download URL; then "not restored"
HASH_CHUNK = 1024 * 1024
TMP_PREFIX_NAME_BYTES = 64  # keeps ".<name>.syncd-XXXXXXXX.tmp" under NAME_MAX (255 bytes)
_TMP_NAME = re.compile(r"\..*\.syncd-[a-z0-9_]{8}\.tmp", re.DOTALL)
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV}
EMPTY_MD5 = hashlib.md5(b"").hexdigest()


class BadDownload(SyncdError):
    """Every attempt at a download failed its size/MD5 check."""


class TargetExists(SyncdError):
    """The target exists (or appeared) and ``overwrite`` is off."""


@dataclass(frozen=True, slots=True)
class Expected:
    """What a good copy looks like. ``size`` None: unknown (never for real records);
    ``md5`` None: size only (adopted records, ``--from-remote`` without a state DB)."""

    size: int | None
    md5: str | None = None
    mtime_ns: int | None = None


def judge(got: DownloadResult, expected: Expected) -> str | None:
    """Why ``got`` is not the expected content, or None if it is."""
    if expected.size is not None and got.size != expected.size:
        return f"got {got.size} bytes, expected {expected.size}"
    if expected.md5 is not None and got.md5 != expected.md5:
        return f"MD5 {got.md5} != recorded {expected.md5}"
    return None


def fetch_to_temp(
    remote: Remote,
    file_id: str,
    directory: Path,
    name: str,
    expected: Expected,
    *,
    attempts: int = DOWNLOAD_ATTEMPTS,
    on_progress: ProgressFn | None = None,
) -> tuple[Path, DownloadResult]:
    """Download ``file_id`` into a new temporary file in ``directory`` until it passes
    its check (at most ``attempts`` tries); returns the fsync'ed temp path and what it holds.

    Raises BadDownload when every try failed its check; ApiError (e.g. the file is gone),
    LocalError (cannot write) and RemoteUnavailable (after the last try) propagate. The
    temporary file is removed on every failure."""
    fd, tmp = _mkstemp(directory, name)
    path = Path(tmp)
    try:
        with os.fdopen(fd, "w+b") as fh:
            problem = "no attempt made"
            for attempt in range(1, attempts + 1):
                fh.seek(0)
                fh.truncate()
                counted = _Counted(on_progress)
                try:
                    got = remote.download(file_id, fh, on_progress=counted)
                except RemoteUnavailable as exc:
                    counted.take_back()
                    if attempt == attempts:
                        raise
                    problem = str(exc)
                    log.warning("download retried", file_id=file_id, attempt=attempt, error=problem)
                    continue
                problem = judge(got, expected) or ""
                if not problem:
                    break
                counted.take_back()
                log.warning("download rejected", file_id=file_id, attempt=attempt, error=problem)
                if attempt == 1:
                    _check_copy(remote, file_id, expected)  # fetching again cannot help?
            else:
                raise BadDownload(f"download failed its check {attempts} times: {problem}")
            fh.flush()
            _finish(fh.fileno(), expected.mtime_ns)
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return path, got


def _check_copy(remote: Remote, file_id: str, expected: Expected) -> None:
    """After a bad download: raise BadDownload at once if the remote copy itself is not
    what we want (trashed, another size); ApiError if it is gone."""
    info = remote.file_info(file_id)
    if info.status != "active":
        raise BadDownload(
            f"the remote copy is in the site's trash (status {info.status}); "
            "restore it there, then run restore again"
        )
    if expected.size is not None and info.size != expected.size:
        raise BadDownload(f"the remote copy has {info.size} bytes, recorded {expected.size}")


def empty_temp(directory: Path, name: str, mtime_ns: int | None) -> Path:
    """A zero-byte temp file (a recorded empty file: the API never stored it)."""
    fd, tmp = _mkstemp(directory, name)
    try:
        _finish(fd, mtime_ns)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    return Path(tmp)


def place(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Rename the verified ``tmp`` to ``target``. Without ``overwrite`` an existing target
    (file, link, anything) raises TargetExists and is left as it was; ``tmp`` is removed
    whenever it was not placed."""
    try:
        if overwrite:
            try:
                os.replace(tmp, target)
            except OSError as exc:
                raise LocalError(f"cannot replace {target}: {exc.strerror or exc}") from exc
            return
        try:
            os.link(tmp, target)  # fails if target exists: no window to clobber a new file
        except FileExistsError:
            raise TargetExists(f"{target} exists") from None
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise LocalError(f"cannot create {target}: {exc.strerror or exc}") from exc
            if os.path.lexists(target):  # no hard links here: check, then rename
                raise TargetExists(f"{target} exists") from None
            try:
                os.rename(tmp, target)
            except OSError as exc2:
                raise LocalError(f"cannot create {target}: {exc2.strerror or exc2}") from exc2
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # after link: the extra name; after a failure: the copy


def file_md5(path: Path) -> str:
    """MD5 hex of a local file, streamed."""
    digest = hashlib.md5()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def clean_stale_temps(directory: Path) -> int:
    """Remove temp files an interrupted restore left in ``directory``; returns how many."""
    removed = 0
    try:
        with os.scandir(directory) as entries:
            stale = [e.path for e in entries if _TMP_NAME.fullmatch(e.name) and e.is_file()]
    except OSError:
        return 0
    for path in stale:
        with contextlib.suppress(OSError):
            os.unlink(path)
            removed += 1
    return removed


def fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- helpers ---------------------------------------------------------------------------


def _mkstemp(directory: Path, name: str) -> tuple[int, str]:
    short = name.encode()[:TMP_PREFIX_NAME_BYTES].decode(errors="ignore")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{short}.syncd-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise LocalError(f"cannot write in {directory}: {exc.strerror or exc}") from exc
    with contextlib.suppress(OSError):  # mkstemp makes 0600; restored files get the umask's
        os.fchmod(fd, default_file_mode())
    return fd, tmp


def _finish(fd: int, mtime_ns: int | None) -> None:
    try:
        os.fsync(fd)
        if mtime_ns is not None:
            os.utime(fd, ns=(mtime_ns, mtime_ns))
    except OSError as exc:
        raise LocalError(f"cannot write restored file: {exc.strerror or exc}") from exc


_mode_lock = threading.Lock()
_mode: int | None = None


def default_file_mode() -> int:
    """0666 minus the umask, as ``open()`` would create it. Read once, and first from the
    main thread: reading the umask means setting it, and it is process-wide."""
    global _mode
    with _mode_lock:
        if _mode is None:
            mask = os.umask(0o022)
            os.umask(mask)
            _mode = 0o666 & ~mask
        return _mode


class _Counted:
    """Forwards progress deltas and can take back what one failed attempt reported."""

    def __init__(self, on_progress: Callable[[int], None] | None) -> None:
        self.on_progress = on_progress
        self.total = 0

    def __call__(self, delta: int) -> None:
        self.total += delta
        if self.on_progress is not None:
            self.on_progress(delta)

    def take_back(self) -> None:
        if self.on_progress is not None and self.total:
            self.on_progress(-self.total)
        self.total = 0
