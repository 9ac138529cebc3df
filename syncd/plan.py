"""PURE planning: one directory's local entries + its records -> actions.

The planner runs one directory at a time (the scanner streams ``DirScan``s) so memory is
bounded by the largest directory, never by the tree. It never reads a file: when the
stat triple ``(size, mtime_ns, inode)`` differs from the record but the size is the same,
it asks the engine to hash first (``Upload.hash_first``) so a touched file costs a read,
not an upload.

Decision table for a local file against its record:

    no record                                  -> Upload (new)
    record never uploaded (no file_id)         -> Upload (new), unless backing off
    stat equal, synced, present                -> nothing (the no-op fast path)
    stat equal, synced, marked deleted         -> Undelete (it came back)
    stat differs / record failed or pending    -> Upload (replace), unless backing off

A record without a local entry: never uploaded -> DropRecord / DropFolder; ``on_delete = keep`` ->
MarkDeleted; ``trash`` -> TrashFile. A folder record without a local directory:
``keep`` -> MarkDirGone; ``trash`` -> TrashFolder. A directory that could not be read
plans nothing below it: an unreadable directory is never mistaken for a deleted one.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.model import DirScan, FileRecord, FileState, FolderRecord, Kind, LocalEntry, join


@dataclass(frozen=True, slots=True)
class Mkdir:
    path: str
    existing: FolderRecord | None = None  # a "gone" or "failed" record to reuse / retry


@dataclass(frozen=True, slots=True)
class Upload:
    entry: LocalEntry
    record: FileRecord | None = None  # the record being replaced, if any
    hash_first: bool = False  # same size: hash before sending, maybe only the stat changed


@dataclass(frozen=True, slots=True)
class Undelete:
    path: str


@dataclass(frozen=True, slots=True)
class NoteSkip:
    """Record a file that is not uploaded: skipped by rule, or failed before any request."""

    entry: LocalEntry
    record: FileRecord | None = None


@dataclass(frozen=True, slots=True)
class DropRecord:
    path: str


@dataclass(frozen=True, slots=True)
class DropFolder:
    path: str


@dataclass(frozen=True, slots=True)
class MarkDeleted:
    path: str


@dataclass(frozen=True, slots=True)
class TrashFile:
    record: FileRecord


@dataclass(frozen=True, slots=True)
class MarkDirGone:
    folder: FolderRecord


@dataclass(frozen=True, slots=True)
class TrashFolder:
    folder: FolderRecord


@dataclass(frozen=True, slots=True)
class DirFailed:
    path: str
    reason: str


Action = (
    Mkdir
    | Upload
    | Undelete
    | NoteSkip
    | DropRecord
    | DropFolder
    | MarkDeleted
    | TrashFile
    | MarkDirGone
    | TrashFolder
    | DirFailed
)
DELETES = (TrashFile, TrashFolder)  # sent last, guarded by max_delete_ratio


def plan_dir(
    scan: DirScan,
    files: list[FileRecord],
    folders: list[FolderRecord],
    *,
    on_delete: str,
    now: float,
    honour_backoff: bool,
) -> list[Action]:
    """Actions for one directory. ``files``/``folders`` are the records of its children."""
    if scan.error is not None:
        return [DirFailed(scan.path, scan.error)]
    actions: list[Action] = []
    records = {r.name: r for r in files}
    dirs = {f.path.rpartition("/")[2]: f for f in folders}
    present_files: set[str] = set()
    present_dirs: set[str] = set()
    for entry in scan.entries:
        name = entry.name
        if entry.kind is Kind.DIR:
            present_dirs.add(name)
            folder = dirs.get(name)
            if folder is None or folder.state != "active":
                actions.append(Mkdir(entry.path, folder))
            continue
        present_files.add(name)
        record = records.get(name)
        if entry.kind is Kind.FILE:
            action = _plan_file(entry, record, now=now, honour_backoff=honour_backoff)
        else:
            action = _plan_not_uploaded(entry, record)
        if action is not None:
            actions.append(action)
    for name, record in records.items():
        if name not in present_files:
            gone = _plan_gone_file(record, on_delete)
            if gone is not None:
                actions.append(gone)
    for name, folder in dirs.items():
        if name in present_dirs or folder.state == "gone":
            continue
        if folder.state != "active" or folder.folder_id is None:
            actions.append(DropFolder(join(scan.path, name)))
        elif on_delete == "trash":
            actions.append(TrashFolder(folder))
        else:
            actions.append(MarkDirGone(folder))
    return actions


def _backing_off(record: FileRecord, now: float, honour_backoff: bool) -> bool:
    return honour_backoff and record.next_try is not None and now < record.next_try


def _plan_file(
    entry: LocalEntry, record: FileRecord | None, *, now: float, honour_backoff: bool
) -> Action | None:
    if record is None:
        return Upload(entry)
    if record.file_id is None:
        if record.state in (FileState.FAILED, FileState.PENDING) and _backing_off(
            record, now, honour_backoff
        ):
            return None
        return Upload(entry, record)
    same = entry.same_stat(record.size, record.mtime_ns, record.inode)
    if same and record.state is FileState.SYNCED:
        return Undelete(entry.path) if record.deleted_at else None
    if record.state in (FileState.FAILED, FileState.PENDING) and _backing_off(
        record, now, honour_backoff
    ):
        return None
    hash_first = record.md5 is not None and entry.size == record.size
    return Upload(entry, record, hash_first=hash_first)


def _plan_not_uploaded(entry: LocalEntry, record: FileRecord | None) -> Action | None:
    wanted = FileState.SKIPPED if entry.kind is Kind.SKIP else FileState.FAILED
    if record is not None and record.state is wanted and record.error == entry.reason:
        return None
    return NoteSkip(entry, record)


def _plan_gone_file(record: FileRecord, on_delete: str) -> Action | None:
    if record.deleted_at:
        return None
    if record.file_id is None:
        return DropRecord(record.path)
    if on_delete == "trash":
        return TrashFile(record)
    return MarkDeleted(record.path)
