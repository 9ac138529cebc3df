"""The planner: table cases for each rule, and properties over random directories."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.model import DirScan, FileRecord, FileState, FolderRecord, Kind, LocalEntry
from syncd.plan import (
    DirFailed,
    DropFolder,
    DropRecord,
    MarkDeleted,
    MarkDirGone,
    Mkdir,
    NoteSkip,
    TrashFile,
    TrashFolder,
    Undelete,
    Upload,
    plan_dir,
)

NOW = 1_000_000.0


def entry(name: str, size: int = 10, mtime: int = 5, inode: int = 7, kind: Kind = Kind.FILE,
          reason: str | None = None, parent: str = "d") -> LocalEntry:
    return LocalEntry(f"{parent}/{name}", kind, size, mtime, inode, reason)


def record(name: str, size: int = 10, mtime: int = 5, inode: int = 7, *, file_id: str | None = "9",
           state: FileState = FileState.SYNCED, parent: str = "d", **kw: object) -> FileRecord:
    return FileRecord("p", f"{parent}/{name}", size=size, mtime_ns=mtime, inode=inode,
                      md5="m" * 32 if file_id else None, file_id=file_id, state=state, **kw)  # type: ignore[arg-type]


def plan(entries: list[LocalEntry], files: list[FileRecord],
         folders: list[FolderRecord] | None = None, *, on_delete: str = "keep",
         honour_backoff: bool = False, error: str | None = None) -> list[object]:
    return plan_dir(DirScan("d", sorted(entries, key=lambda e: e.name), error), files,
                    folders or [],
                    on_delete=on_delete, now=NOW, honour_backoff=honour_backoff)


def test_unchanged_file_needs_nothing() -> None:
    assert plan([entry("a")], [record("a")]) == []


def test_new_file_is_uploaded() -> None:
    assert plan([entry("a")], []) == [Upload(entry("a"))]


def test_same_size_change_hashes_first_other_size_does_not() -> None:
    [touched] = plan([entry("a", mtime=6)], [record("a")])
    assert isinstance(touched, Upload) and touched.hash_first
    [grown] = plan([entry("a", size=11, mtime=6)], [record("a")])
    assert isinstance(grown, Upload) and not grown.hash_first and grown.record is not None


def test_inode_change_alone_is_a_change() -> None:
    [action] = plan([entry("a", inode=8)], [record("a")])
    assert isinstance(action, Upload)


def test_failed_file_waits_for_backoff_only_in_daemon_mode() -> None:
    failed = record("a", file_id=None, state=FileState.FAILED, next_try=NOW + 10)
    assert plan([entry("a")], [failed], honour_backoff=True) == []
    assert plan([entry("a")], [failed], honour_backoff=False) == [Upload(entry("a"), failed)]
    due = replace(failed, next_try=NOW - 1)
    assert plan([entry("a")], [due], honour_backoff=True) == [Upload(entry("a"), due)]


@pytest.mark.parametrize(
    ("on_delete", "expected"),
    [("keep", MarkDeleted("d/a")), ("trash", TrashFile(record("a")))],
)
def test_deleted_file(on_delete: str, expected: object) -> None:
    assert plan([], [record("a")], on_delete=on_delete) == [expected]


def test_already_marked_deleted_is_left_alone_and_comes_back() -> None:
    gone = record("a", deleted_at="2026-01-01T00:00:00Z")
    assert plan([], [gone]) == []
    assert plan([entry("a")], [gone]) == [Undelete("d/a")]


def test_record_never_uploaded_is_dropped_when_file_goes() -> None:
    assert plan([], [record("a", file_id=None, state=FileState.FAILED)]) == [DropRecord("d/a")]


def test_skips_are_recorded_once() -> None:
    fifo = entry("f", kind=Kind.SKIP, reason="special file (fifo)")
    [note] = plan([fifo], [])
    assert note == NoteSkip(fifo, None)
    noted = record("f", file_id=None, state=FileState.SKIPPED, error="special file (fifo)")
    assert plan([fifo], [noted]) == []


def test_directories() -> None:
    sub = entry("s", kind=Kind.DIR)
    assert plan([sub], []) == [Mkdir("d/s")]
    active = FolderRecord("p", "d/s", "42")
    assert plan([sub], [], [active]) == []
    gone = FolderRecord("p", "d/s", "42", state="gone")
    assert plan([sub], [], [gone]) == [Mkdir("d/s", gone)]
    assert plan([], [], [active]) == [MarkDirGone(active)]
    assert plan([], [], [active], on_delete="trash") == [TrashFolder(active)]
    assert plan([], [], [gone]) == []
    failed = FolderRecord("p", "d/s", None, state="failed", error="bad name")
    assert plan([], [], [failed]) == [DropFolder("d/s")]


def test_file_replaced_by_directory_and_back() -> None:
    as_dir = entry("x", kind=Kind.DIR)
    assert plan([as_dir], [record("x")]) == [Mkdir("d/x"), MarkDeleted("d/x")]
    folder = FolderRecord("p", "d/x", "42")
    assert plan([entry("x")], [], [folder], on_delete="trash") == [
        Upload(entry("x")), TrashFolder(folder)]


def test_unreadable_directory_plans_nothing_below_it() -> None:
    assert plan([], [record("a")], [FolderRecord("p", "d/s", "1")], on_delete="trash",
                error="Permission denied") == [DirFailed("d", "Permission denied")]


# -- properties -------------------------------------------------------------------------
names = st.sampled_from(["a", "b", "c", "d e", "é", "x.txt"])
local_entries = st.dictionaries(
    names,
    st.tuples(st.sampled_from([Kind.FILE, Kind.FILE, Kind.DIR, Kind.SKIP]),
              st.integers(1, 3), st.integers(1, 3)),
)
records = st.dictionaries(
    names,
    st.tuples(st.integers(1, 3), st.integers(1, 3),
              st.sampled_from(list(FileState)), st.booleans(), st.booleans()),
)
folder_records = st.dictionaries(names, st.sampled_from(["active", "gone", "failed"]))


def build(local: dict, recs: dict, folders: dict) -> tuple[list, list, list]:
    entries = [entry(n, size=s, mtime=m, kind=k, reason=None if k is not Kind.SKIP else "r")
               for n, (k, s, m) in local.items()]
    files = [record(n, size=s, mtime=m, state=state, file_id="1" if has_id else None,
                    deleted_at="t" if deleted else None)
             for n, (s, m, state, has_id, deleted) in recs.items()]
    dirs = [FolderRecord("p", f"d/{n}", None if s == "failed" else "5", state=s)
            for n, s in folders.items()]
    return entries, files, dirs


def apply(actions: list, entries: list, files: list, dirs: list) -> tuple[list, list]:
    """What the engine records after each action succeeds."""
    by_path = {f.path: f for f in files}
    folders = {f.path: f for f in dirs}
    for action in actions:
        if isinstance(action, Upload):
            e = action.entry
            by_path[e.path] = FileRecord("p", e.path, e.size, e.mtime_ns, e.inode, "m" * 32, "7",
                                         state=FileState.SYNCED)
        elif isinstance(action, NoteSkip):
            e = action.entry
            by_path[e.path] = FileRecord("p", e.path, state=FileState.SKIPPED, error=e.reason)
        elif isinstance(action, Undelete):
            by_path[action.path].deleted_at = None
        elif isinstance(action, MarkDeleted):
            by_path[action.path].deleted_at = "t"
        elif isinstance(action, TrashFile | DropRecord):
            by_path.pop(action.record.path if isinstance(action, TrashFile) else action.path)
        elif isinstance(action, Mkdir):
            folders[action.path] = FolderRecord("p", action.path, "6")
        elif isinstance(action, MarkDirGone):
            folders[action.folder.path] = replace(action.folder, state="gone")
        elif isinstance(action, TrashFolder):
            folders.pop(action.folder.path)
        elif isinstance(action, DropFolder):
            folders.pop(action.path)
    return list(by_path.values()), list(folders.values())


@settings(max_examples=300, deadline=None)
@given(local_entries, records, folder_records, st.sampled_from(["keep", "trash"]))
def test_applying_a_plan_then_replanning_yields_nothing(local, recs, folders, on_delete) -> None:
    entries, files, dirs = build(local, recs, folders)
    actions = plan(entries, files, dirs, on_delete=on_delete)
    files2, dirs2 = apply(actions, entries, files, dirs)
    assert plan(entries, files2, dirs2, on_delete=on_delete) == []


@settings(max_examples=300, deadline=None)
@given(local_entries, records, folder_records, st.sampled_from(["keep", "trash"]))
def test_never_trashes_unrecorded_paths_nor_plans_outside_the_directory(
    local, recs, folders, on_delete
) -> None:
    entries, files, dirs = build(local, recs, folders)
    actions = plan(entries, files, dirs, on_delete=on_delete)
    for action in actions:
        if isinstance(action, TrashFile):
            assert action.record in files and action.record.file_id
        if isinstance(action, TrashFolder):
            assert action.folder in dirs
        path = getattr(action, "path", None) or getattr(getattr(action, "entry", None), "path",
                                                        None)
        if path is not None:
            assert path.startswith("d/") and ".." not in path.split("/")
