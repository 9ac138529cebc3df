"""The no-op pass's fast paths plan exactly what the plain paths plan.

``StateStore.changed_in`` drops unchanged files (and their records) before planning;
whatever a directory holds, planning what is left must give the same actions as
planning everything. ``scan``'s fast ``LocalEntry`` maker must build ordinary entries.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.model import DirScan, FileRecord, FileState, Kind, LocalEntry
from syncd.plan import plan_dir
from syncd.scan import _new_file_entry
from syncd.state import StateStore

NAMES = ["a", "b", "c", "d", "e", "f"]
# Few distinct stats, so that entries and records often agree (the interesting case).
STAT = st.sampled_from([(10, 5, 7), (10, 5, 7), (11, 5, 7), (10, 6, 7), (10, 5, 8)])


@st.composite
def directories(draw: st.DrawFn) -> tuple[DirScan, list[FileRecord]]:
    entries, records = [], []
    for name in NAMES:
        path = f"dir/{name}"
        if draw(st.booleans()):
            size, mtime, inode = draw(STAT)
            kind = draw(st.sampled_from([Kind.FILE, Kind.FILE, Kind.SKIP, Kind.DIR]))
            reason = "ignored" if kind is Kind.SKIP else None
            entries.append(LocalEntry(path, kind, size, mtime, inode, reason))
        if draw(st.booleans()):
            size, mtime, inode = draw(STAT)
            state = draw(st.sampled_from(list(FileState)))
            uploaded = draw(st.booleans())
            records.append(FileRecord(
                "p", path, size=size, mtime_ns=mtime, inode=inode,
                md5="m" * 32 if uploaded else None, file_id="9" if uploaded else None,
                state=state, error="ignored" if state is FileState.SKIPPED else None,
                deleted_at=draw(st.sampled_from([None, None, "2025-01-01T00:00:00Z"])),
            ))  # fmt: skip
    error = draw(st.sampled_from([None, None, None, "cannot read directory: denied"]))
    return DirScan("dir", entries, error), records


def plan(scan: DirScan, files: list[FileRecord]) -> list[object]:
    return list(plan_dir(scan, files, [], on_delete="keep", now=0.0, honour_backoff=True))


def test_changed_in_plans_like_the_full_directory(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as state:

        @settings(max_examples=300, deadline=None)
        @given(directories())
        def check(case: tuple[DirScan, list[FileRecord]]) -> None:
            scan, records = case
            state.forget_tree("p", "")
            for rec in records:
                state.put_file(rec)
            full = plan(scan, state.files_in("p", "dir"))
            rest, files = state.changed_in("p", scan)
            assert plan(rest, files) == full
            assert rest.path == scan.path and rest.error == scan.error

        check()


def test_changed_in_leaves_out_every_unchanged_file_and_reads_no_record(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as state:
        for name in NAMES:
            state.put_file(FileRecord("p", f"dir/{name}", size=10, mtime_ns=5, inode=7,
                                      md5="m" * 32, file_id="9", state=FileState.SYNCED))
        scan = DirScan("dir", [LocalEntry(f"dir/{n}", Kind.FILE, 10, 5, 7) for n in NAMES])
        assert state.changed_in("p", scan) == (DirScan("dir", []), [])


def test_fast_file_entry_is_an_ordinary_frozen_entry() -> None:
    entry = _new_file_entry("a/b.txt", 3, 4, 5)
    assert entry == LocalEntry("a/b.txt", Kind.FILE, 3, 4, 5)
    assert hash(entry) == hash(LocalEntry("a/b.txt", Kind.FILE, 3, 4, 5))
    assert entry.reason is None and entry.name == "b.txt"
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.size = 9  # type: ignore[misc]
