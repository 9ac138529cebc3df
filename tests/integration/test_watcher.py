"""The watchdog adapter with a real inotify Observer and real files (no fixed sleeps)."""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from watchdog.events import (
    DirCreatedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from syncd.debounce import HintKind
from syncd.watcher import Watcher, relative, translate

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")

Hint = tuple[str, str, HintKind]
WAIT = 5.0  # seconds; events normally arrive within milliseconds


class Hints:
    """A thread-safe hint sink the test can wait on."""

    def __init__(self) -> None:
        self.seen: list[Hint] = []
        self._cond = threading.Condition()

    def __call__(self, pair: str, rel: str, kind: HintKind) -> None:
        with self._cond:
            self.seen.append((pair, rel, kind))
            self._cond.notify_all()

    def wait_for(self, *expected: Hint, timeout: float = WAIT) -> None:
        """Wait until every expected hint has been seen (in any order)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: all(h in self.seen for h in expected), timeout)
            assert ok, f"missing {[h for h in expected if h not in self.seen]}; saw {self.seen}"

    def wait_until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition not reached in time"
            time.sleep(0.01)

    def index(self, hint: Hint) -> int:
        with self._cond:
            return self.seen.index(hint)

    def snapshot(self) -> list[Hint]:
        with self._cond:
            return list(self.seen)


@pytest.fixture
def hints() -> Hints:
    return Hints()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def watcher(root: Path, hints: Hints) -> Iterator[Watcher]:
    with Watcher({"p": root}, hints) as w:
        yield w


def write(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# -- live events --------------------------------------------------------------------------


def test_created_modified_deleted_file(watcher: Watcher, root: Path, hints: Hints) -> None:
    write(root / "a.txt")
    hints.wait_for(("p", "a.txt", "change"))
    with (root / "a.txt").open("ab") as f:
        f.write(b"more")
    (root / "a.txt").unlink()
    hints.wait_for(("p", "a.txt", "delete"))
    assert watcher.healthy and watcher.fallback_pairs() == set()


def test_renamed_file_reports_both_ends_delete_first(
    watcher: Watcher, root: Path, hints: Hints
) -> None:
    write(root / "old.txt")
    hints.wait_for(("p", "old.txt", "change"))
    (root / "old.txt").rename(root / "new.txt")
    hints.wait_for(("p", "old.txt", "delete"), ("p", "new.txt", "change"))
    assert hints.index(("p", "old.txt", "delete")) < hints.index(("p", "new.txt", "change"))


def test_new_directory_with_files(watcher: Watcher, root: Path, hints: Hints) -> None:
    write(root / "d" / "sub" / "f.txt")  # may race the watch on "d": the dir hint covers it
    hints.wait_for(("p", "d", "dir"))
    write(root / "d" / "sub" / "g.txt")  # by now "d/sub" is watched
    hints.wait_for(("p", "d/sub/g.txt", "change"))


def test_renamed_directory_reports_two_trees_and_stays_watched(
    watcher: Watcher, root: Path, hints: Hints
) -> None:
    write(root / "before" / "f.txt")
    hints.wait_for(("p", "before", "dir"))
    write(root / "before" / "g.txt")
    hints.wait_for(("p", "before/g.txt", "change"))
    (root / "before").rename(root / "after")
    hints.wait_for(("p", "before", "dir"), ("p", "after", "dir"))
    assert ("p", "after/f.txt", "change") not in hints.snapshot()  # synthetic: covered
    write(root / "after" / "h.txt")
    hints.wait_for(("p", "after/h.txt", "change"))


def test_move_out_of_and_into_the_root(
    watcher: Watcher, root: Path, tmp_path: Path, hints: Hints
) -> None:
    write(root / "leaving.txt")
    hints.wait_for(("p", "leaving.txt", "change"))
    (root / "leaving.txt").rename(tmp_path / "outside.txt")
    hints.wait_for(("p", "leaving.txt", "delete"))  # unpaired move: after watchdog's 0.5 s
    (tmp_path / "outside.txt").rename(root / "back.txt")
    hints.wait_for(("p", "back.txt", "change"))


def test_ignored_paths_are_not_reported(root: Path, hints: Hints) -> None:
    def ignore(pair: str, rel: str) -> bool:
        return rel.endswith(".tmp") or rel == "cache" or rel.startswith("cache/")

    with Watcher({"p": root}, hints, ignore=ignore):
        write(root / "x.tmp")
        (root / "cache").mkdir()
        write(root / "cache" / "blob")
        write(root / "kept.txt")
        hints.wait_for(("p", "kept.txt", "change"))
    assert [h for h in hints.snapshot() if "tmp" in h[1] or "cache" in h[1]] == []


def test_two_pairs_report_under_their_own_names(tmp_path: Path, hints: Hints) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    with Watcher({"one": one, "two": two}, hints):
        write(one / "a")
        write(two / "b")
        hints.wait_for(("one", "a", "change"), ("two", "b", "change"))


# -- limits, overflow, failures ----------------------------------------------------------


def make_tree(root: Path, dirs: int) -> None:
    for i in range(dirs):
        (root / f"d{i}").mkdir(parents=True)


def limit_warnings(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["log_level"] == "warning" and "limit" in str(e["event"])]


def test_watch_limit_falls_back_and_warns_once(tmp_path: Path, hints: Hints) -> None:
    small, big, bigger = tmp_path / "small", tmp_path / "big", tmp_path / "bigger"
    small.mkdir()
    make_tree(big, 5)
    make_tree(bigger, 5)
    roots = {"small": small, "big": big, "bigger": bigger}
    with capture_logs() as logs, Watcher(roots, hints, max_watches=2) as watcher:
        assert watcher.fallback_pairs() == {"big", "bigger"}
        assert watcher.healthy
        warnings = limit_warnings(logs)
        assert len(warnings) == 1
        assert "sysctl fs.inotify.max_user_watches=524288" in str(warnings[0]["fix"])
        assert "/etc/sysctl.d/" in str(warnings[0]["fix"])
        # The watched pair still works, and the failed pairs gave their watches back:
        (small / "one").mkdir()  # the second and last watch
        hints.wait_for(("small", "one", "dir"))
        write(small / "one" / "f")
        hints.wait_for(("small", "one/f", "change"))
        # A directory beyond the limit appears later: hinted, and the pair falls back.
        (small / "two").mkdir()
        hints.wait_for(("small", "two", "dir"))
        hints.wait_until(lambda: "small" in watcher.fallback_pairs())
        assert len(limit_warnings(logs)) == 1  # said once, with the fix


def test_out_of_inotify_instances_every_pair_falls_back(
    tmp_path: Path, hints: Hints, monkeypatch: pytest.MonkeyPatch
) -> None:
    from watchdog.observers.inotify_c import InotifyFD

    def refuse(cls: type[InotifyFD]) -> int:
        # What InotifyFD._raise_error() raises when inotify_init() fails with EMFILE
        raise OSError(errno.EMFILE, "inotify instance limit reached")

    monkeypatch.setattr(InotifyFD, "_create_inotify_fd", classmethod(refuse))
    with capture_logs() as logs, Watcher({"a": tmp_path, "b": tmp_path}, hints) as watcher:
        assert watcher.fallback_pairs() == {"a", "b"}
        assert not watcher.healthy
    warnings = limit_warnings(logs)
    assert len(warnings) == 1
    assert "fs.inotify.max_user_instances" in str(warnings[0]["fix"])


def test_unwatchable_root_falls_back(tmp_path: Path, hints: Hints) -> None:
    with Watcher({"gone": tmp_path / "missing"}, hints) as watcher:
        assert watcher.fallback_pairs() == {"gone"}


def test_queue_overflow_asks_for_a_full_rescan_of_every_pair(tmp_path: Path, hints: Hints) -> None:
    """A real IN_Q_OVERFLOW: stall watchdog's reader, then queue more events than
    fs.inotify.max_queued_events allows."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    max_queued = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    # Each file gives IN_CREATE + IN_CLOSE_WRITE; the reader may hold one 2048-event buffer.
    files = (max_queued + 2048) // 2 + 1000
    with capture_logs() as logs, Watcher({"one": one, "two": two}, hints) as watcher:
        fd = watcher._observer.inotify_fd  # type: ignore[union-attr]
        with fd._lock:  # InotifyFD takes this lock after every read(): the reader stalls
            for i in range(files):
                os.close(os.open(one / f"f{i}", os.O_CREAT | os.O_WRONLY, 0o600))
        hints.wait_for(("one", "", "dir"), ("two", "", "dir"))
        assert "inotify queue overflowed" in [e["event"] for e in logs]
        write(one / "still-watched")  # watchdog re-added its watches
        hints.wait_for(("one", "still-watched", "change"))


def test_a_failing_hint_sink_does_not_kill_the_watcher(root: Path) -> None:
    calls: list[str] = []

    def broken(pair: str, rel: str, kind: HintKind) -> None:
        calls.append(rel)
        raise RuntimeError("bug")

    with capture_logs() as logs, Watcher({"p": root}, broken) as watcher:
        write(root / "a")
        Hints().wait_until(lambda: "p" in watcher.fallback_pairs())
        assert watcher.healthy
    assert any(e["event"] == "watch hint failed" for e in logs)


def test_nested_directories_created_in_a_burst_keep_the_watcher_alive(
    watcher: Watcher, root: Path, hints: Hints
) -> None:
    # Stock watchdog 7.1 warns "Callback ... already exists" from its reader thread here,
    # which kills the thread under filterwarnings=error (pytest would report it).
    for i in range(200):
        (root / f"d{i}" / "sub" / "subsub").mkdir(parents=True)
    write(root / "last.txt")
    hints.wait_for(("p", "last.txt", "change"))
    assert watcher.healthy and watcher.fallback_pairs() == set()


def test_stop_joins_every_thread(root: Path, hints: Hints) -> None:
    before = set(threading.enumerate())
    watcher = Watcher({"p": root}, hints)
    watcher.start()
    assert set(threading.enumerate()) - before
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 5
    assert set(threading.enumerate()) - before == set()
    assert not watcher.healthy
    watcher.stop()  # idempotent
    with pytest.raises(RuntimeError):
        watcher.start()


# -- translation (no observer) -------------------------------------------------------------


def test_translate_events_to_hints() -> None:
    r = "/srv/root"
    assert translate(FileCreatedEvent(f"{r}/a"), r) == [("a", "change")]
    assert translate(FileClosedEvent(f"{r}/a"), r) == [("a", "change")]
    assert translate(FileDeletedEvent(f"{r}/d/a"), r) == [("d/a", "delete")]
    assert translate(FileMovedEvent(f"{r}/a", f"{r}/b"), r) == [("a", "delete"), ("b", "change")]
    assert translate(DirMovedEvent(f"{r}/x", f"{r}/y"), r) == [("x", "dir"), ("y", "dir")]
    assert translate(DirCreatedEvent(f"{r}/x"), r) == [("x", "dir")]
    assert translate(DirModifiedEvent(r), r) == []
    assert translate(FileOpenedEvent(f"{r}/a"), r) == []
    assert translate(FileClosedNoWriteEvent(f"{r}/a"), r) == []
    assert translate(FileCreatedEvent(f"{r}/x/a", is_synthetic=True), r) == []


def test_relative_paths_are_passed_through_for_the_scanner_to_judge() -> None:
    assert relative("/srv/root", "/srv/root") == ""
    assert relative(b"/srv/root/a/b", "/srv/root") == "a/b"
    assert relative("/srv/other/x", "/srv/root") == "../other/x"
    assert relative(b"/srv/root/caf\xe9", "/srv/root") == "caf\udce9"  # not UTF-8
    assert relative("/x", "/") == "x"
