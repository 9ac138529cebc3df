"""The no-op pass's fast paths plan exactly what the plain paths plan.

The scanner leaves out files that ``StateStore.quiet_keys`` says are synced with the
same stat, and ``StateStore.records_left`` drops their records; whatever a directory
holds, planning what is left must give the same actions as planning everything.
``scan``'s fast ``LocalEntry`` maker must build ordinary entries.
"""

from __future__ import annotations

import dataclasses
import os
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.model import DirScan, FileRecord, FileState, Kind, LocalEntry
from syncd.paths import IgnoreRules
from syncd.plan import plan_dir
from syncd.scan import _key, _new_file_entry, scan_dir, walk
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


def leave_out_quiet(state: StateStore, scan: DirScan) -> DirScan:
    """What ``walk(known=state.quiet_keys)`` makes of ``scan``: the scanner's own rule."""
    known = state.quiet_keys("p", scan.path)
    quiet = [e for e in scan.entries if e.kind is Kind.FILE and _key(e) in known]
    rest = [e for e in scan.entries if e not in quiet]
    return DirScan(scan.path, rest, scan.error, [e.path for e in quiet])


def test_leaving_out_quiet_files_plans_like_the_full_directory(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as state:

        @settings(max_examples=300, deadline=None)
        @given(directories())
        def check(case: tuple[DirScan, list[FileRecord]]) -> None:
            scan, records = case
            state.forget_tree("p", "")
            for rec in records:
                state.put_file(rec)
            full = plan(scan, state.files_in("p", "dir"))
            rest = leave_out_quiet(state, scan)
            assert plan(rest, state.records_left("p", rest)) == full

        check()


def test_a_walk_over_synced_files_builds_no_entry_and_reads_no_record(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    with StateStore(tmp_path / "s.db") as state:
        for name in NAMES:
            f = root / "dir" / name
            f.write_bytes(b"x" * 10)
            st_ = f.stat()
            state.put_file(FileRecord("p", f"dir/{name}", size=10, mtime_ns=st_.st_mtime_ns,
                                      inode=st_.st_ino, md5="m" * 32, file_id="9",
                                      state=FileState.SYNCED))  # fmt: skip
        (root / "dir" / "a").write_bytes(b"y" * 11)  # changed: listed with its record
        rules = IgnoreRules.from_patterns(root, [])
        scans = {s.path: s for s in walk(root, rules, known=partial(state.quiet_keys, "p"))}
        scan = scans["dir"]
        assert [e.path for e in scan.entries] == ["dir/a"]
        assert sorted(scan.unchanged) == [f"dir/{n}" for n in NAMES[1:]]  # listing order
        assert [r.path for r in state.records_left("p", scan)] == ["dir/a"]
        (root / "dir" / "a").write_bytes(b"x" * 10)
        os.utime(root / "dir" / "a", ns=(0, state.file("p", "dir/a").mtime_ns))  # type: ignore[union-attr]
        again = scan_dir(root, "dir", rules, known=partial(state.quiet_keys, "p"))
        assert again.entries == [] and len(again.unchanged) == len(NAMES)
        assert state.records_left("p", again) == []


def test_quiet_keys_match_inodes_above_two_to_the_63(tmp_path: Path) -> None:
    """st_ino is unsigned 64-bit; SQLite stores it signed: both sides must agree."""
    big = 2**64 - 5
    with StateStore(tmp_path / "s.db") as state:
        state.put_file(FileRecord("p", "dir/a", size=10, mtime_ns=5, inode=big,
                                  md5="m" * 32, file_id="9", state=FileState.SYNCED))  # fmt: skip
        assert _key(LocalEntry("dir/a", Kind.FILE, 10, 5, big)) in state.quiet_keys("p", "dir")


def test_fast_file_entry_is_an_ordinary_frozen_entry() -> None:
    entry = _new_file_entry("a/b.txt", 3, 4, 5)
    assert entry == LocalEntry("a/b.txt", Kind.FILE, 3, 4, 5)
    assert hash(entry) == hash(LocalEntry("a/b.txt", Kind.FILE, 3, 4, 5))
    assert entry.reason is None and entry.name == "b.txt"
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.size = 9  # type: ignore[misc]
