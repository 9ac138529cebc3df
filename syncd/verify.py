"""``syncd verify``: does every recorded remote copy still exist, whole and unchanged?

``file/info`` proves existence, status and size; only a download (``--deep``) proves the
content, since no API call returns a hash. ``--repair`` queues bad copies for the next
sync: a missing copy is forgotten (re-uploaded as new), a wrong one is replaced.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from syncd.config import PairConfig
from syncd.digest import file_md5
from syncd.errors import ApiError
from syncd.log import get_logger
from syncd.model import FileRecord, FileState
from syncd.remote.base import Remote
from syncd.state import StateStore

log = get_logger("syncd.verify")


@dataclass
class VerifyReport:
    checked: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)


class _Discard(io.RawIOBase):
    """A write-only sink: --deep needs the digest, not the bytes. Seekable so a retried
    download can rewind it like a file."""

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return 0

    def truncate(self, size: int | None = None) -> int:
        return 0


def verify_pair(
    state: StateStore, remote: Remote, pair: PairConfig, *, deep: bool, repair: bool
) -> VerifyReport:
    report = VerifyReport()
    records = [r for r in state.iter_files(pair.name, state="synced", include_deleted=True)
               if r.file_id]  # fmt: skip
    for rec in records:
        report.checked += 1
        problem, copy_exists, md5 = _check(remote, rec, pair.local, deep=deep)
        if problem is None:
            if md5 is not None and (rec.verified != "md5" or rec.md5 != md5):
                rec.md5, rec.verified = md5, "md5"
                state.put_file(rec)
            continue
        report.problems.append((rec.path, problem))
        log.warning("verify failed", pair=pair.name, path=rec.path, file_id=rec.file_id,
                    error=problem)  # fmt: skip
        if repair:
            rec.state, rec.md5, rec.error = FileState.PENDING, None, f"verify: {problem}"
            if not copy_exists:
                rec.file_id = None
            state.put_file(rec)
    return report


def _check(
    remote: Remote, rec: FileRecord, local_root: Path, *, deep: bool
) -> tuple[str | None, bool, str | None]:
    """(problem or None, whether a remote copy exists that a replace should trash, the
    MD5 proven by a deep check or None)."""
    assert rec.file_id
    try:
        info = remote.file_info(rec.file_id)
    except ApiError as exc:
        return f"missing on the remote ({exc.server_message})", False, None
    if info.status != "active":
        return f"remote copy is in the trash (status {info.status})", False, None
    if info.size != rec.size:
        return f"remote size {info.size} != recorded {rec.size}", True, None
    if not deep:
        return None, True, None
    sink: BinaryIO = _Discard()  # type: ignore[assignment]
    with sink:
        got = remote.download(rec.file_id, sink)
    if got.size != rec.size:
        return f"downloaded {got.size} bytes, recorded {rec.size}", True, None
    expected = rec.md5 or _local_md5(local_root / rec.path, rec)
    if expected is None:
        return None, True, None  # adopted, and the local file changed since: size only
    if got.md5 != expected:
        source = "recorded" if rec.md5 else "the local file's"
        return f"downloaded MD5 {got.md5} != {source} {expected}", True, None
    return None, True, got.md5


def _local_md5(path: Path, rec: FileRecord) -> str | None:
    """For an adopted record (no MD5 known): the local file's MD5, when the local file
    is still exactly the one adopted (same size, mtime and inode)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if (st.st_size, st.st_mtime_ns, st.st_ino) != (rec.size, rec.mtime_ns, rec.inode):
        return None
    try:
        return file_md5(path)
    except OSError:
        return None
