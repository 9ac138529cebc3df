"""``split_walk`` yields exactly what ``walk`` yields, whatever its helper process does.

Real trees in temporary directories, a real state DB, a real helper process
(``python -m syncd.scan_helper``); the faults (a helper that dies, answers garbage or
cannot start) are other commands put in its place.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.model import DirScan, FileRecord, FileState
from syncd.paths import IgnoreRules
from syncd.scan import walk
from syncd.scan_split import HelperJob, split_walk
from syncd.state import StateStore

# The real helper's first answer, then a fault.
SAY_READY = (
    "import sys; from syncd.scan_helper import FRAME, READY; "
    "sys.stdout.buffer.write(FRAME.pack(len(READY)) + READY); sys.stdout.flush()\n"
)
# Answers the first two scans of its part as the real helper does, then dies.
DIES_MIDWAY = (
    SAY_READY
    + """
import os, pickle
from pathlib import Path
from syncd.scan import Walker
from syncd.scan_helper import _answer
req = pickle.loads(sys.stdin.buffer.read())
walker = Walker(Path(req["root"]), req["rules"], req["follow_symlinks"], None)
for n, scan in zip(range(2), walker.descend(req["stack"])):
    _answer(sys.stdout.buffer, scan)
sys.stdout.flush()
os._exit(5)
"""
)
EXITS_WHEN_READY = SAY_READY + "sys.exit(3)"
GARBAGE = SAY_READY + "sys.stdin.read(); sys.stdout.buffer.write(bytes([5]) + bytes(7) + b'junk!')"
# More on stderr than a pipe holds (64 KiB): it must be read as it comes, or both hang.
FLOODS_STDERR = SAY_READY + (
    "sys.stdin.read(); sys.stderr.write('x' * 300000 + '\\nflooded\\n'); sys.stderr.flush(); "
    "sys.exit(7)"
)


def make_tree(root: Path, dirs: int = 12) -> None:
    """Nested directories with files, an ignored directory and file, an empty file and a
    symlink loop: the walk's every kind of entry, on both sides of any split."""
    for d in range(dirs):
        sub = root / f"d{d:02d}"
        (sub / "inner" / "deeper").mkdir(parents=True)
        for name in ("a.txt", "b.bin", "inner/c.txt", "inner/deeper/d.txt", "x.tmp"):
            (sub / name).write_text(f"{d} {name}")
        (sub / "empty").touch()
        (sub / "node_modules").mkdir()
        (sub / "node_modules" / "m.js").write_text("m")
        (sub / "inner" / "loop").symlink_to("..")
    (root / "top.txt").write_text("top")


def rules_for(root: Path) -> IgnoreRules:
    return IgnoreRules.from_patterns(root, ["*.tmp", "node_modules/"])


def job(command: str | None = None, db: Path | None = None) -> HelperJob:
    """A helper the walk waits for before it starts: the split happens even in a tree
    this small (unwaited, the walk would be over before the helper is ready)."""
    argv = (sys.executable, "-c", command) if command else None
    return HelperJob(db, "p", argv, wait_ready=30)


@pytest.mark.parametrize("follow", [False, True])
def test_split_walk_yields_what_walk_yields(tmp_path: Path, follow: bool) -> None:
    make_tree(tmp_path)
    rules = rules_for(tmp_path)
    expected = list(walk(tmp_path, rules, follow_symlinks=follow))
    with capture_logs() as logs:
        got = list(split_walk(tmp_path, rules, follow_symlinks=follow, helper=job()))
    assert got == expected
    assert len(got) > 30
    assert not [e for e in logs if e["log_level"] == "warning"]  # the helper did its part


def test_the_helper_leaves_out_synced_files_from_its_own_reading_of_the_state(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    make_tree(root)
    (root / "d11" / "a.txt").write_text("changed after the records were written")
    with StateStore(tmp_path / "state dir #1 %20?" / "state.db") as state:  # URI-hostile
        for path in sorted(root.rglob("*.*")):
            if path.is_file() and not path.is_symlink():
                st = path.stat()
                state.put_file(FileRecord(
                    "p", path.relative_to(root).as_posix(), size=st.st_size,
                    mtime_ns=st.st_mtime_ns - (path.name == "a.txt" and "d11" in str(path)),
                    inode=st.st_ino, md5="m" * 32, file_id="9", state=FileState.SYNCED,
                ))  # fmt: skip
        known = partial(state.quiet_keys, "p")
        rules = rules_for(root)
        expected = list(walk(root, rules, known=known))
        with capture_logs() as logs:
            got = list(split_walk(root, rules, known=known, helper=job(db=state.path)))
    assert got == expected
    assert logs == []  # the helper read the state itself: no failure, no fallback
    by_path = {scan.path: scan for scan in got}
    assert "d11/b.bin" in by_path["d11"].unchanged  # the helper's part (walked last)
    assert [e.path for e in by_path["d11"].entries if e.path.endswith(".txt")] == ["d11/a.txt"]


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("import sys; sys.exit(3)", "exit code 3"),
        (EXITS_WHEN_READY, "exit code 3"),
        (DIES_MIDWAY, "exit code 5"),
        (GARBAGE, "unreadable answer"),
        (FLOODS_STDERR, "exit code 7) before it was done: flooded"),
    ],
    ids=["dies-before-ready", "exits-when-ready", "dies-midway", "garbage", "floods-stderr"],
)
def test_a_failing_helper_costs_nothing_but_a_warning(
    tmp_path: Path, command: str, why: str
) -> None:
    make_tree(tmp_path)
    rules = rules_for(tmp_path)
    expected = list(walk(tmp_path, rules))
    got: list[DirScan] = []
    with capture_logs() as logs:  # in a thread: a walk stuck on its helper fails, not hangs
        walker = threading.Thread(
            target=lambda: got.extend(split_walk(tmp_path, rules, helper=job(command))),
            daemon=True,
        )
        walker.start()
        walker.join(timeout=60)
    assert not walker.is_alive(), "the walk is stuck waiting for its helper"
    assert [s.path for s in got] == [s.path for s in expected]  # none twice, none missing
    assert got == expected
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1 and why in warnings[0]["error"], warnings


def test_a_helper_that_cannot_start_leaves_the_walk_to_this_process(tmp_path: Path) -> None:
    make_tree(tmp_path, dirs=3)
    rules = rules_for(tmp_path)
    missing = HelperJob(None, "p", (str(tmp_path / "no-such-python"),))
    with capture_logs() as logs:
        got = list(split_walk(tmp_path, rules, helper=missing))
    assert got == list(walk(tmp_path, rules))
    assert [e["event"] for e in logs] == ["cannot start the scan helper; walking alone"]


def test_closing_the_walk_early_kills_and_reaps_the_helper(
    tmp_path: Path, children: Callable[[], list[int]]
) -> None:
    make_tree(tmp_path)
    walk_gen = split_walk(tmp_path, rules_for(tmp_path), helper=job())
    first: list[DirScan] = [next(walk_gen) for _ in range(3)]
    assert first[0].path == ""
    assert children() != []  # the helper runs
    walk_gen.close()
    assert children() == []  # killed and reaped: no process, no zombie


def test_a_tree_with_nowhere_to_split_sends_the_helper_away(
    tmp_path: Path, children: Callable[[], list[int]]
) -> None:
    (tmp_path / "only" / "child").mkdir(parents=True)
    (tmp_path / "only" / "child" / "f").write_text("f")
    rules = rules_for(tmp_path)
    with capture_logs() as logs:
        assert list(split_walk(tmp_path, rules, helper=job())) == list(walk(tmp_path, rules))
    assert children() == [] and logs == []


def test_a_walk_over_before_the_helper_is_ready_is_walked_alone(
    tmp_path: Path, children: Callable[[], list[int]]
) -> None:
    make_tree(tmp_path, dirs=2)
    rules = rules_for(tmp_path)
    slow = HelperJob(None, "p", (sys.executable, "-c", "import time; time.sleep(30)"))
    with capture_logs() as logs:
        assert list(split_walk(tmp_path, rules, helper=slow)) == list(walk(tmp_path, rules))
    assert children() == [] and logs == []  # killed quietly: it was never needed


@pytest.fixture
def children() -> Callable[[], list[int]]:
    """Processes (zombies included) whose parent is this one and that were not there
    when the test began: other tests' leftovers are none of its business."""
    before = set(_all_children())
    return lambda: [pid for pid in _all_children() if pid not in before]


def _all_children() -> list[int]:
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == me:
                found.append(int(entry))
    return found


def test_the_helper_outlives_signals_meant_for_its_parent(
    tmp_path: Path, children: Callable[[], list[int]]
) -> None:
    """Ctrl-C reaches the whole process group and systemd's stop the whole cgroup; the
    parent decides what they mean, so the helper must not die of them mid-walk."""
    make_tree(tmp_path)
    rules = rules_for(tmp_path)
    walk_gen = split_walk(tmp_path, rules, helper=job())
    got = [next(walk_gen)]  # the root; the helper is ready and waits for its part
    (helper_pid,) = children()
    for sig in (signal.SIGTERM, signal.SIGINT):
        os.kill(helper_pid, sig)
    time.sleep(0.2)
    with capture_logs() as logs:
        got += list(walk_gen)
    assert got == list(walk(tmp_path, rules))
    assert logs == []  # no "scan helper failed": it did its part
