"""Value types shared by the scanner, the state store, the planner and the engine. No I/O.

Paths are *relative POSIX strings* from the pair root ("" is the root itself, no leading
or trailing "/", never ".."). ``parent_of`` / ``name_of`` split them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for annotations only: the model imports nothing of syncd at start
    from syncd.config import PairConfig


class Kind(StrEnum):
    FILE = "file"
    DIR = "dir"
    SKIP = "skip"  # not uploaded by rule (ignored, special file, symlink, zero-byte)
    FAIL = "fail"  # cannot be uploaded; the user should act (bad name, unreadable, too big)


class FileState(StrEnum):
    SYNCED = "synced"
    PENDING = "pending"
    FAILED = "failed"
    SKIPPED = "skipped"


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def name_of(path: str) -> str:
    return path.rpartition("/")[2]


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def target_key(pair: PairConfig) -> str:
    """The state DB meta key that holds ``target_value(pair)``."""
    return f"target:{pair.name}"


def target_value(pair: PairConfig) -> str:
    """What a pair mirrors (local root, remote path, remote folder id), as recorded in the
    state DB: a pass that finds another value drops the pair's records and starts over."""
    return f"{pair.local}|{pair.remote_path}|{pair.remote_folder_id or ''}"


@dataclass(frozen=True, slots=True)
class LocalEntry:
    """One directory entry as the scanner saw it (lstat only; nothing opened)."""

    path: str
    kind: Kind
    size: int = 0
    mtime_ns: int = 0
    inode: int = 0
    reason: str | None = None  # why SKIP / FAIL

    @property
    def name(self) -> str:
        return name_of(self.path)

    def same_stat(self, size: int | None, mtime_ns: int | None, inode: int | None) -> bool:
        return (self.size, self.mtime_ns, self.inode) == (size, mtime_ns, inode)


@dataclass(frozen=True, slots=True)
class DirScan:
    """The entries of one directory, sorted by name; ``error`` when it could not be read.

    ``unchanged``: paths of files the scanner left out because the state DB already has
    them synced with the same stat (``walk(known=…)``); they exist, nothing is to be done.
    """

    path: str
    entries: list[LocalEntry]
    error: str | None = None
    unchanged: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FileRecord:
    """What the state DB knows of one local file and its remote copy."""

    pair: str
    path: str
    size: int | None = None
    mtime_ns: int | None = None
    inode: int | None = None
    md5: str | None = None
    file_id: str | None = None
    folder_id: str | None = None
    remote_name: str | None = None
    url: str | None = None
    short_url: str | None = None
    uploaded_at: str | None = None
    state: FileState = FileState.PENDING
    error: str | None = None
    attempts: int = 0
    next_try: float | None = None  # unix time before which a failed upload is not retried
    verified: str | None = None  # "md5" (uploaded / deep-verified) | "size" (adopted)
    deleted_at: str | None = None  # set when the local file is gone and on_delete = keep

    @property
    def name(self) -> str:
        return name_of(self.path)

    @property
    def dir(self) -> str:
        return parent_of(self.path)


@dataclass(slots=True)
class FolderRecord:
    pair: str
    path: str
    folder_id: str | None
    # "active"; "pending": not mirrored yet, for a reason that passes (a lost answer, a
    # parent not mirrored yet) - retried soon; "failed": refused for good; "gone", "trashed"
    state: str = "active"
    error: str | None = None


@dataclass(slots=True)
class Intent:
    """A remote operation that may be in flight; written before it is sent (crash recovery).

    kind:
      "upload"  - uploading ``path`` into ``folder_id`` as ``name``; ``old_file_id`` set for
                  a replace. Left over after a crash: list the folder, trash any unrecorded
                  copy whose name is ``name`` or a server variant of it with ``size`` bytes.
      "replace" - the new copy ``file_id`` is recorded; still to do: trash ``old_file_id``
                  (when set) then rename ``file_id`` back to ``name``.
      "rename"  - still to do: rename ``file_id`` to ``name``.
      "trash"   - still to do: file/delete ``file_id`` (a record already forgotten).
      "mkdir"   - creating folder ``name`` in folder ``folder_id`` for directory ``path``;
                  left over: list that folder and adopt a folder of that name.
      "trash_folder" - still to do: folder/delete ``folder_id`` (its subtree's records
                  already forgotten, the id already listed as trashed).
    """

    pair: str
    kind: str
    path: str
    folder_id: str | None = None
    name: str | None = None
    size: int | None = None
    file_id: str | None = None
    old_file_id: str | None = None
    id: int | None = None
