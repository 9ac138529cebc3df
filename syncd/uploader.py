"""Upload one file, crash-safely: intent -> send -> record -> trash old copy -> rename.

Recovery rules (the write-ahead ``intents`` table; see ``syncd.recovery``):

1. Before a byte is sent, an ``upload`` intent records the folder, the name sent and the
   size. If syncd dies before the answer is recorded, the server may hold a copy nobody
   recorded (possibly renamed ``name (2).ext``). The next pass lists that folder and
   trashes every unrecorded copy whose name is the sent name or a server variant of it
   and whose size matches; then the file is simply planned again.
2. The answer is recorded in the same transaction that turns the intent into a
   ``replace`` (when an old copy must go or the server altered the name) or removes it.
   From then on the new copy is the file's copy: a crash leaves a ``replace`` intent
   whose remaining steps are idempotent (file/delete of the old id, file/edit of the name).
3. A lost answer (reset, timeout, 5xx after the body was sent, "Failed reading response")
   is handled like rule 1 at once: list, trash unrecorded variants, send again.
4. Trashing the copy of a deleted local file (``on_delete = "trash"``) forgets its record
   and writes a ``trash`` intent in one commit *before* ``file/delete`` is sent, so a copy
   that is gone on the server is never still recorded as the file's backup (a file that
   comes back with the same content would otherwise be taken for synced); a crash or a
   lost answer leaves the intent, and the next pass sends the idempotent delete again.

So at every instant there is a good remote copy (the old one until the new one is
recorded), and no copy survives that is not recorded.
"""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from syncd.digest import file_md5
from syncd.errors import (
    ApiError,
    ChangedDuringUpload,
    IntegrityError,
    LocalError,
    LostResponse,
    RemoteUnavailable,
    TransientError,
)
from syncd.log import get_logger
from syncd.model import FileRecord, FileState, Intent
from syncd.names import is_upload_variant, unstorable_reason, upload_stored_name
from syncd.plan import Upload
from syncd.remote_tree import api_folder_id
from syncd.state import StateStore

if TYPE_CHECKING:  # for annotations only: no import at start
    from syncd.remote.base import Remote

log = get_logger("syncd.upload")

SEND_ATTEMPTS = 4  # lost answers / integrity mismatches before a file is left pending
CHANGE_ATTEMPTS = 3  # a file that keeps changing while it is sent is then reported failed


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # "uploaded" | "unchanged" | "failed" | "pending" | "vanished"
    bytes: int = 0
    error: str | None = None


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def backoff_until(now: float, attempts: int, *, permanent: bool) -> float:
    """When a failed file may be tried again by the daemon (one-shot sync ignores it)."""
    base, cap = (600.0, 86400.0) if permanent else (15.0, 3600.0)
    return now + min(cap, base * 2.0 ** max(0, attempts - 1))


class InFlight:
    """Names being uploaded right now, per folder, so orphan cleanup spares them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, set[str]] = {}

    def add(self, folder_id: str, name: str) -> None:
        with self._lock:
            self._names.setdefault(folder_id, set()).add(name)

    def discard(self, folder_id: str, name: str) -> None:
        with self._lock:
            self._names.get(folder_id, set()).discard(name)

    def others(self, folder_id: str, name: str) -> set[str]:
        with self._lock:
            return {upload_stored_name(n) for n in self._names.get(folder_id, ()) if n != name}


class Uploader:
    """Runs ``Upload`` actions of one pair (called from worker threads)."""

    def __init__(
        self,
        pair: str,
        root: Path,
        state: StateStore,
        remote: Remote,
        *,
        max_upload_size: Callable[[], int],
        follow_symlinks: bool = False,
        on_progress: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.time,
        one_shot: bool = True,
    ) -> None:
        self.pair = pair
        self.one_shot = one_shot
        self.root = root
        self.state = state
        self.remote = remote
        self.max_upload_size = max_upload_size
        self.follow_symlinks = follow_symlinks
        self.on_progress = on_progress
        self.clock = clock
        self.inflight = InFlight()

    def run(self, action: Upload, folder_id: str) -> Outcome:
        entry, record = action.entry, action.record
        reason = unstorable_reason(entry.name)
        if reason is not None:
            return self.fail(entry.path, record, reason, permanent=True)
        source = self.root / entry.path
        hash_first = action.hash_first
        for _ in range(CHANGE_ATTEMPTS):
            try:
                st = os.stat(source) if self.follow_symlinks else os.lstat(source)
            except FileNotFoundError:
                return Outcome("vanished")
            except OSError as exc:
                return self.fail(entry.path, record, f"cannot stat: {exc.strerror}", True)
            if not stat_mod.S_ISREG(st.st_mode) or st.st_size == 0:
                return Outcome("vanished")  # no longer uploadable; the next scan classifies it
            limit = self.max_upload_size()
            if limit and st.st_size > limit:
                why = f"file is larger than the account's max upload size ({st.st_size} > {limit})"
                return self.fail(entry.path, record, why, permanent=True)
            if hash_first and record is not None and record.md5 and st.st_size == record.size:
                try:
                    same = file_md5(source) == record.md5
                except OSError as exc:
                    return self.fail(entry.path, record, f"cannot read: {exc.strerror}", True)
                if same:
                    self._touch(record, st)
                    return Outcome("unchanged")
            try:
                sent = self._send(entry.path, source, folder_id, st, record)
            except ChangedDuringUpload:
                record, hash_first = self.state.file(self.pair, entry.path), False
                continue
            if sent is not None:
                return sent
            after = _stat_or_none(source, self.follow_symlinks)
            if after is not None and _triple(after) == _triple(st):
                return Outcome("uploaded", st.st_size)
            if after is None:
                return Outcome("uploaded", st.st_size)  # deleted meanwhile: next pass decides
            # Changed while it was being sent: the recorded copy is stale; send it again.
            record, hash_first = self.state.file(self.pair, entry.path), False
        if self.one_shot:
            return self.fail(entry.path, record, "changed during upload (tried 3 times)", True)
        return self._still_changing(entry.path, record)

    # -- sending -----------------------------------------------------------------------
    def _send(
        self,
        path: str,
        source: Path,
        folder_id: str,
        st: os.stat_result,
        record: FileRecord | None,
    ) -> Outcome | None:
        """Upload and record; None on success, an Outcome when it did not succeed."""
        name = path.rpartition("/")[2]
        old_id = record.file_id if record is not None else None
        intent_id = self.state.add_intent(
            Intent(self.pair, "upload", path, folder_id, name, st.st_size, old_file_id=old_id)
        )
        self.inflight.add(folder_id, name)
        try:
            last: Exception | None = None
            for _attempt in range(SEND_ATTEMPTS):
                try:
                    result = self.remote.upload(
                        source, name, api_folder_id(folder_id), on_progress=self.on_progress
                    )
                except LostResponse as exc:
                    last = exc
                    log.warning("lost response", pair=self.pair, path=path, error=str(exc))
                    self.cleanup_orphans(folder_id, name, st.st_size)
                    continue
                except IntegrityError as exc:
                    last = exc
                    log.warning("upload corrupted", pair=self.pair, path=path, error=str(exc))
                    continue
                except ChangedDuringUpload:
                    self.state.remove_intent(intent_id)
                    raise
                except (LocalError, ApiError) as exc:
                    self.state.remove_intent(intent_id)
                    return self.fail(path, record, str(exc), permanent=True)
                except (RemoteUnavailable, TransientError) as exc:
                    # Nothing can have been stored (the client raises LostResponse otherwise).
                    self.state.remove_intent(intent_id)
                    self.fail(path, record, str(exc), permanent=False)
                    raise
                break
            else:
                self.cleanup_orphans(folder_id, name, st.st_size)
                self.state.remove_intent(intent_id)
                return self.fail(
                    path, record, f"upload failed {SEND_ATTEMPTS} times: {last}", False
                )
            new = FileRecord(
                self.pair,
                path,
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                inode=st.st_ino,
                md5=result.md5,
                file_id=result.file_id,
                folder_id=folder_id,
                remote_name=result.name,
                url=result.url,
                short_url=result.short_url,
                uploaded_at=utc_now(),
                state=FileState.SYNCED,
                verified="md5",
            )
            stale = old_id if old_id and old_id != result.file_id else None
            with self.state.transaction():
                self.state.put_file(new)
                if stale or result.name != name:
                    self.state.update_intent(
                        intent_id, kind="replace", file_id=result.file_id, old_file_id=stale
                    )
                else:
                    self.state.remove_intent(intent_id)
            if stale or result.name != name:
                finish_replace(
                    self.state,
                    self.remote,
                    self.pair,
                    intent_id,
                    path,
                    result.file_id,
                    stale,
                    result.name,
                    name,
                )
            # The daemon: a journal line per upload. sync: its summary and progress lines
            # say it (the line was ~5 % of an upload's CPU); -v lists each.
            (log.debug if self.one_shot else log.info)(
                "uploaded", pair=self.pair, path=path, file_id=result.file_id, bytes=st.st_size
            )
            return None
        finally:
            self.inflight.discard(folder_id, name)

    def cleanup_orphans(self, folder_id: str, name: str, size: int) -> int:
        """Trash unrecorded copies an unanswered upload of ``name`` may have left."""
        return trash_orphans(
            self.state,
            self.remote,
            self.pair,
            folder_id,
            name,
            size,
            spare=self.inflight.others(folder_id, name),
        )

    # -- records -----------------------------------------------------------------------
    def _touch(self, record: FileRecord, st: os.stat_result) -> None:
        record.size, record.mtime_ns, record.inode = st.st_size, st.st_mtime_ns, st.st_ino
        record.state, record.error, record.attempts, record.next_try = (
            FileState.SYNCED,
            None,
            0,
            None,
        )
        record.deleted_at = None
        self.state.put_file(record)

    def _still_changing(self, path: str, record: FileRecord | None) -> Outcome:
        """In ``run`` a file that kept changing is not a failure: it stays pending with no
        backoff, and the watcher's next hint sends it once it has gone quiet."""
        rec = self.state.file(self.pair, path) or record or FileRecord(self.pair, path)
        rec.state, rec.error, rec.next_try = FileState.PENDING, "changing during upload", None
        rec.attempts += 1
        self.state.put_file(rec)
        return Outcome("pending", error=rec.error)

    def fail(self, path: str, record: FileRecord | None, reason: str, permanent: bool) -> Outcome:
        """Record a failure, keeping whatever the record says about the remote copy."""
        rec = record if record is not None else FileRecord(self.pair, path)
        rec = self.state.file(self.pair, path) or rec
        rec.state = FileState.FAILED if permanent else FileState.PENDING
        rec.error = reason
        rec.attempts += 1
        rec.next_try = backoff_until(self.clock(), rec.attempts, permanent=permanent)
        self.state.put_file(rec)
        log.warning("upload failed", pair=self.pair, path=path, error=reason)
        return Outcome("failed" if permanent else "pending", error=reason)


def finish_replace(
    state: StateStore,
    remote: Remote,
    pair: str,
    intent_id: int,
    path: str,
    file_id: str,
    old_file_id: str | None,
    current_name: str,
    name: str,
) -> None:
    """The idempotent tail of a replace: trash the old copy, restore the real name.

    A rename the API refuses for good (the new copy is gone from the server, the name is
    refused) marks the file failed without an MD5, so the next pass sends it again rather
    than take the same bytes for synced; the intent is settled either way, since an
    intent that fails on every pass would stop every later pass."""
    if old_file_id:
        with contextlib.suppress(ApiError):  # already gone
            remote.delete_file(old_file_id)
        state.update_intent(intent_id, old_file_id=None)
    if current_name != name and old_file_id is None and current_name != upload_stored_name(name):
        # The server renamed a *new* upload because a copy it already held took the name:
        # one no record knows (a state DB lost without `adopt`). Local is the truth and
        # this file's new copy is recorded, so the unrecorded namesake goes to the trash
        # rather than stay beside it under the same name.
        trash_namesakes(state, remote, pair, path, name, file_id)
    if current_name != name:
        try:
            info = remote.rename_file(file_id, name)
        except ApiError as exc:
            with state.transaction():
                rec = state.file(pair, path)
                if rec is not None and rec.file_id == file_id:
                    why = f"uploaded as {current_name!r} but not renamed: {exc}"
                    state.update_file(pair, path, state=FileState.FAILED, error=why, md5=None)
                state.remove_intent(intent_id)
            log.warning("rename failed", pair=pair, path=path, file_id=file_id, error=str(exc))
            return
        rec = state.file(pair, path)
        if rec is not None and rec.file_id == file_id:
            rec.remote_name = info.name
            state.put_file(rec)
        if info.name != name:
            log.warning("server altered name", pair=pair, path=path, error=info.name)
    state.remove_intent(intent_id)


def trash_file(state: StateStore, remote: Remote, record: FileRecord) -> None:
    """Trash the remote copy of a file deleted locally (rule 4): forget, then delete."""
    assert record.file_id
    intent = Intent(
        record.pair, "trash", record.path, record.folder_id, record.name, record.size,
        file_id=record.file_id,
    )  # fmt: skip
    with state.transaction():
        intent_id = state.add_intent(intent)
        state.delete_file_record(record.pair, record.path)
    finish_trash(state, remote, intent_id, record.file_id)


def finish_trash(state: StateStore, remote: Remote, intent_id: int, file_id: str) -> None:
    """The idempotent tail of ``trash_file``: file/delete, then drop the intent."""
    with contextlib.suppress(ApiError):  # already gone
        remote.delete_file(file_id)
    state.remove_intent(intent_id)


def trash_namesakes(
    state: StateStore, remote: Remote, pair: str, path: str, name: str, keep_id: str
) -> None:
    """Trash unrecorded active files named ``name`` in the folder of ``path``'s record."""
    rec = state.file(pair, path)
    if rec is None or rec.folder_id is None:
        return
    referenced = state.referenced_file_ids(pair, rec.folder_id)
    for remote_file in remote.list_folder(api_folder_id(rec.folder_id)).files:
        if remote_file.name == name and remote_file.file_id not in referenced | {keep_id}:
            remote.delete_file(remote_file.file_id)
            log.info("trashed unrecorded copy", pair=pair, path=path,
                     file_id=remote_file.file_id)  # fmt: skip


def trash_orphans(
    state: StateStore,
    remote: Remote,
    pair: str,
    folder_id: str,
    name: str,
    size: int | None,
    *,
    spare: set[str] | None = None,
) -> int:
    """List ``folder_id`` and trash unrecorded copies of an upload sent as ``name``."""
    listing = remote.list_folder(api_folder_id(folder_id))
    referenced = state.referenced_file_ids(pair, folder_id)
    trashed = 0
    for remote_file in listing.files:
        if remote_file.file_id in referenced or (size is not None and remote_file.size != size):
            continue
        if not is_upload_variant(remote_file.name, name) or remote_file.name in (spare or ()):
            continue
        remote.delete_file(remote_file.file_id)
        log.info("trashed orphan", pair=pair, path=name, file_id=remote_file.file_id)
        trashed += 1
    return trashed


def _triple(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


def _stat_or_none(path: Path, follow: bool) -> os.stat_result | None:
    try:
        return os.stat(path) if follow else os.lstat(path)
    except OSError:
        return None
