"""The service loop in-process: a real inotify watcher (through ``syncd.watcher``), real
files, the emulator over HTTP, ``Daemon(...).run()`` on a thread, ``request_stop()``.

Every wait is a deadline on a condition (``wait_until``); the one fixed window is the
"no busy loop" observation, whose point is how much happens in a given time.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from syncd.daemon import Daemon
from syncd.daemon_scope import scope_of
from syncd.debounce import Batch
from syncd.emulator import EmulatorServer
from syncd.engine import Engine
from syncd.metrics import Metrics
from syncd.model import FileRecord
from syncd.remote.uploadapi.remote import UploadApiRemote
from syncd.retry import RetryPolicy
from syncd.state import StateStore
from syncd.systemd import Notifier
from tests.scenario import Scenario

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")

DEBOUNCE = 0.5
WITHIN = DEBOUNCE + 2.0  # the bound: a change reaches the remote within this
START = 20.0  # generous bound for a start pass on a loaded CI machine


def wait_until(what: str, predicate: Callable[[], bool], timeout: float) -> float:
    """Poll ``predicate`` until true; returns the seconds it took, fails at the deadline."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.01)
    return time.monotonic() - start


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Clock:
    """The engine's wall clock, which a test may move forward (failed files' next_try)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class LiveDaemon:
    """One daemon on a thread over its own state handle, remote and engine."""

    def __init__(self, sc: Scenario, *, policy: RetryPolicy | None = None,
                 **options: Any) -> None:
        self.sc = sc
        config = sc.config()
        self.clock = Clock()
        self.state = StateStore(config.sync.state_db)
        self.remote = UploadApiRemote(config.remote, workers=config.sync.workers,
                                      bwlimit=config.sync.bwlimit,
                                      policy=policy or RetryPolicy.fast(),
                                      on_retry=lambda endpoint, exc: self.daemon.reporter.on_retry(
                                          endpoint, exc))
        self.engine = Engine(config, self.state, self.remote, clock=self.clock)
        self.daemon = Daemon(config, self.engine, notifier=Notifier(),
                             config_loader=sc.config, **options)
        self.exit_code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="daemon-under-test")

    def _run(self) -> None:
        try:
            self.exit_code = self.daemon.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def start(self) -> LiveDaemon:
        self.thread.start()
        wait_until("daemon ready", lambda: self.daemon.ready or not self.thread.is_alive(), START)
        assert self.error is None, self.error
        return self

    def stop(self, grace: float | None = None) -> int:
        self.daemon.request_stop(grace)
        self.thread.join(30)
        assert not self.thread.is_alive(), "the daemon did not stop"
        self.remote.close()  # disables the token, as the real session does
        self.state.close()
        if self.error is not None:
            raise self.error
        assert self.exit_code is not None
        return self.exit_code

    def settled(self) -> bool:
        """No hint waiting and nothing pending in the debouncers."""
        return self.daemon.hints.empty() and all(
            loop.debouncer.pending() == 0 for loop in list(self.daemon.loops.values()))

    def record(self, path: str, pair: str = "main") -> FileRecord | None:
        return self.state.file(pair, path)


@pytest.fixture
def sc(tmp_path: Path, emulator: EmulatorServer) -> Scenario:
    return Scenario(tmp_path, emulator, debounce=DEBOUNCE, rescan_interval=0)


@pytest.fixture
def live(sc: Scenario) -> Iterator[Callable[..., LiveDaemon]]:
    started: list[LiveDaemon] = []

    def make(**options: Any) -> LiveDaemon:
        d = LiveDaemon(sc, **options).start()
        started.append(d)
        return d

    yield make
    for d in started:
        if d.thread.is_alive() or d.exit_code is None:
            assert d.stop() == 0


def remote_md5s(sc: Scenario) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in sc.remote_files():
        out.setdefault(f["rel"], []).append(f["md5"])
    return out


def wait_remote(sc: Scenario, rel: str, data: bytes, timeout: float = WITHIN) -> float:
    """Wait until ``rel`` is on the remote with exactly this content (one active copy)."""
    return wait_until(f"{rel} uploaded", lambda: remote_md5s(sc).get(rel) == [md5(data)], timeout)


def uploads(sc: Scenario) -> int:
    return len(sc.requests("file/upload"))


# -- each kind of change reaches the remote within debounce + 2 s ------------------------


def test_new_and_modified_file(sc: Scenario, live: Callable[..., LiveDaemon]) -> None:
    sc.write("old.txt", b"old content")
    d = live()
    assert remote_md5s(sc) == {"old.txt": [md5(b"old content")]}  # the start pass
    sc.write("new.txt", b"a new file")
    wait_remote(sc, "new.txt", b"a new file")
    sc.write("old.txt", b"changed content")
    wait_remote(sc, "old.txt", b"changed content")
    rec = d.record("old.txt")
    assert rec is not None and rec.md5 == md5(b"changed content")
    sc.assert_in_sync()


def test_new_directory_with_files(sc: Scenario, live: Callable[..., LiveDaemon]) -> None:
    live()
    sc.write("photos/2024/a.jpg", b"jpeg a")  # parents made in a burst, files inside at once
    sc.write("photos/2024/b.jpg", b"jpeg b")
    sc.write("photos/index.txt", b"index")
    for rel, data in [("photos/2024/a.jpg", b"jpeg a"), ("photos/2024/b.jpg", b"jpeg b"),
                      ("photos/index.txt", b"index")]:
        wait_remote(sc, rel, data)
    sc.assert_in_sync()


@pytest.mark.parametrize("on_delete", ["keep", "trash"])
def test_renamed_directory(sc: Scenario, live: Callable[..., LiveDaemon], on_delete: str) -> None:
    sc.write_config(on_delete=on_delete)
    sc.write("before/one.txt", b"one")
    sc.write("before/sub/two.txt", b"two")
    d = live()
    (sc.local / "before").rename(sc.local / "after")
    wait_remote(sc, "after/one.txt", b"one")
    wait_remote(sc, "after/sub/two.txt", b"two")
    folder = d.state.folder("main", "before")
    if on_delete == "trash":
        wait_until("old folder trashed", lambda: "before" not in sc.remote_folders(), WITHIN)
        sc.assert_in_sync()
    else:  # the old copies stay, their records say they are gone locally
        assert "before/one.txt" in remote_md5s(sc)
        assert folder is not None and folder.state == "gone"


@pytest.mark.parametrize("on_delete", ["keep", "trash"])
def test_deleted_file(sc: Scenario, live: Callable[..., LiveDaemon], on_delete: str) -> None:
    sc.write_config(on_delete=on_delete)
    sc.write("doomed.txt", b"short-lived")
    sc.write("kept.txt", b"stays")
    d = live()
    file_id = (d.record("doomed.txt") or FileRecord("main", "")).file_id
    assert file_id is not None
    sc.remove("doomed.txt")
    if on_delete == "keep":
        wait_until("record marked deleted", lambda: (d.record("doomed.txt") or FileRecord(
            "main", "")).deleted_at is not None, WITHIN)
        assert "doomed.txt" in remote_md5s(sc)
    else:
        wait_until("remote copy trashed", lambda: "doomed.txt" not in remote_md5s(sc), WITHIN)
        assert ("POST", "file/delete") in sc.requests()
        wait_until("record dropped", lambda: d.record("doomed.txt") is None, WITHIN)
        sc.assert_in_sync()


# -- coalescing and stability ------------------------------------------------------------


def test_a_burst_of_writes_is_uploaded_at_most_twice(
    sc: Scenario, live: Callable[..., LiveDaemon]
) -> None:
    d = live()
    path = sc.local / "busy.log"
    for i in range(1000):
        with path.open("ab") as f:
            f.write(b"line %d\n" % i)
    final = path.read_bytes()
    wait_remote(sc, "busy.log", final)
    wait_until("daemon settled", d.settled, WITHIN)
    assert uploads(sc) <= 2
    sc.assert_in_sync()


@pytest.mark.parametrize("max_delay", [60.0, 1.0], ids=["quiet-first", "max-delay-1s"])
def test_a_slowly_written_file_is_not_recorded_half_written(
    sc: Scenario, live: Callable[..., LiveDaemon], max_delay: float
) -> None:
    sc.write_config(max_delay=max_delay)
    d = live()
    path = sc.local / "slow.bin"
    with path.open("wb") as f:
        for i in range(30):  # 3 s, one write every 0.1 s
            f.write(os.urandom(1000) + b"%d" % i)
            f.flush()
            time.sleep(0.1)  # the writer's pace, not a wait for the daemon
    final = path.read_bytes()
    wait_remote(sc, "slow.bin", final)
    wait_until("daemon settled", d.settled, WITHIN)
    rec = d.record("slow.bin")
    assert rec is not None and rec.md5 == md5(final) and rec.state == "synced"
    if max_delay > 3:
        assert uploads(sc) == 1  # quiet only at the end: one upload, of the final bytes
    # no partial copy stays active (with max_delay = 1 s partial states were sent, then
    # replaced): exactly the final one
    assert remote_md5s(sc)["slow.bin"] == [md5(final)]


def test_a_file_changing_during_every_send_is_sent_once_quiet(
    sc: Scenario, emulator: EmulatorServer, live: Callable[..., LiveDaemon]
) -> None:
    sc.write_config(max_delay=0.5)  # forced sends while it still changes
    live()
    emulator.faults.latency = 0.15  # every send outlasts the writer's pace
    path = sc.local / "growing.log"
    with path.open("wb") as f:
        for i in range(60):  # 3 s: the three sends of one try end by about 1.6 s
            f.write(b"log line %d\n" % i)
            f.flush()
            time.sleep(0.05)  # the writer's pace
    final = path.read_bytes()
    wait_remote(sc, "growing.log", final, timeout=WITHIN + 2)


# -- restarts, limits, faults ------------------------------------------------------------


def test_changes_made_while_stopped_are_caught_by_the_start_pass(
    sc: Scenario, live: Callable[..., LiveDaemon]
) -> None:
    sc.write_config(on_delete="trash")
    sc.write("a.txt", b"a")
    sc.write("dir/b.txt", b"b")
    sc.write("c.txt", b"c")
    first = live()
    assert first.stop() == 0
    sc.write("a.txt", b"a, edited while stopped")
    sc.remove("dir")
    sc.write("new/d.txt", b"d")
    live()  # returns once READY: after the start pass
    sc.assert_in_sync()


def test_watch_limit_falls_back_to_rescans(sc: Scenario, live: Callable[..., LiveDaemon]) -> None:
    sc.write("deep/er/file.txt", b"before")
    with capture_logs() as logs:
        d = live(max_watches=1)
    assert d.daemon.watcher is not None and d.daemon.watcher.fallback_pairs() == {"main"}
    assert any("inotify limit reached" in str(e["event"]) for e in logs)
    sc.write("deep/er/file.txt", b"after, seen by a rescan")
    sc.write("deep/new.txt", b"also")
    bound = 2.5 + WITHIN  # the fallback interval (max(2 s, 5 x debounce)) + a pass
    wait_remote(sc, "deep/er/file.txt", b"after, seen by a rescan", timeout=bound)
    wait_remote(sc, "deep/new.txt", b"also", timeout=bound)


def test_failing_uploads_back_off_and_are_retried_later(
    sc: Scenario, emulator: EmulatorServer, live: Callable[..., LiveDaemon]
) -> None:
    sc.write("first.txt", b"authorized and mirrored while the site works")
    d = live(policy=RetryPolicy.fast(attempts=2))
    # Every request is refused with 429 from now on: nothing is stored, so each try ends
    # cleanly with the file pending (a 5xx after the body would be a lost response).
    emulator.faults.retry_after = 0.05
    emulator.faults.rate_limit = 1.0
    before = uploads(sc)
    sc.write("stuck.txt", b"cannot be sent yet")

    def attempts() -> int:
        rec = d.record("stuck.txt")
        return rec.attempts if rec is not None else 0

    wait_until("first failure recorded", lambda: attempts() == 1, WITHIN)
    time.sleep(5.0)  # the observation window: no busy loop may fill it
    assert uploads(sc) - before <= 4, "retried in a busy loop"
    rec = d.record("stuck.txt")
    assert rec is not None and rec.state == "pending" and rec.next_try is not None
    first_wait = rec.next_try - d.clock()
    assert first_wait > 0
    d.clock.offset += first_wait + 1  # the backoff has passed
    d.daemon.wake()
    wait_until("second attempt", lambda: attempts() == 2, WITHIN)
    rec = d.record("stuck.txt")
    assert rec is not None and rec.next_try is not None
    assert rec.next_try - d.clock() > 1.5 * first_wait  # the backoff grows
    emulator.faults.rate_limit = 0.0
    d.clock.offset += rec.next_try - d.clock() + 1
    d.daemon.wake()
    wait_remote(sc, "stuck.txt", b"cannot be sent yet")


def test_token_is_refreshed_after_idle_expiry(
    sc: Scenario, emulator: EmulatorServer, live: Callable[..., LiveDaemon]
) -> None:
    sc.write("a.txt", b"a")
    live()
    assert len(sc.requests("authorize")) == 1
    emulator.store.expire_tokens()  # as after an hour without a request
    sc.write("b.txt", b"b")
    wait_remote(sc, "b.txt", b"b")
    assert len(sc.requests("authorize")) == 2


def test_metrics_count_uploads_bytes_retries_and_passes(
    sc: Scenario, emulator: EmulatorServer, live: Callable[..., LiveDaemon]
) -> None:
    metrics = Metrics()  # not served: read from its registry
    live(metrics=metrics, policy=RetryPolicy.fast(attempts=2))

    def value(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    assert value("syncd_last_successful_pass_timestamp_seconds") > 0  # the start pass
    sc.write("one.bin", b"x" * 1000)
    wait_until("upload counted", lambda: value("syncd_files_uploaded_total") == 1, WITHIN)
    assert value("syncd_bytes_uploaded_total") == 1000
    emulator.faults.retry_after = 0.05
    emulator.faults.rate_limit = 1.0
    sc.write("two.bin", b"refused")
    wait_until("retry counted", lambda: value("syncd_retries_total", cause="rate_limited") >= 1,
               WITHIN)
    wait_until("pending gauge", lambda: value("syncd_files_pending") >= 1, WITHIN)
    emulator.faults.rate_limit = 0.0


def add_pair(sc: Scenario, name: str, local: Path) -> None:
    with sc.config_path.open("a") as f:
        f.write(f'[[pair]]\nname = "{name}"\nlocal = "{local}"\nremote_path = "{name}"\n')


def test_reload_adds_and_removes_pairs(
    sc: Scenario, tmp_path: Path, live: Callable[..., LiveDaemon]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "existing.txt").write_bytes(b"there before the reload")
    d = live()
    add_pair(sc, "other", other)
    d.daemon.request_reload()  # what SIGHUP does (test_daemon_process sends a real one)
    wait_until("pair added", lambda: "other" in d.daemon.loops, WITHIN)
    wait_until("its start pass", lambda: any(
        f["path"] == "other/existing.txt" for f in sc.server.tree()["files"]), WITHIN)
    (other / "live.txt").write_bytes(b"watched")
    wait_until("its live change", lambda: any(
        f["path"] == "other/live.txt" for f in sc.server.tree()["files"]), WITHIN)
    sc.write_config()  # only "main" again
    d.daemon.request_reload()
    wait_until("pair removed", lambda: set(d.daemon.loops) == {"main"}, WITHIN)
    (other / "ignored.txt").write_bytes(b"no longer mirrored")
    sc.write("marker.txt", b"main still is")
    wait_remote(sc, "marker.txt", b"main still is")
    wait_until("daemon settled", d.settled, WITHIN)
    assert not any(f["path"] == "other/ignored.txt" for f in sc.server.tree()["files"])


def test_stop_abandons_an_upload_that_outlasts_the_grace(
    sc: Scenario, live: Callable[..., LiveDaemon]
) -> None:
    sc.write_config(bwlimit="256K")
    d = live()
    sc.write("big.bin", os.urandom(4 * 1024 * 1024))  # 16 s at this rate
    wait_until("upload in flight", lambda: bool(d.state.intents("main")), WITHIN)
    started = time.monotonic()
    assert d.stop(grace=0.5) == 0
    assert time.monotonic() - started < 5
    state = StateStore(sc.state_db)
    try:
        assert state.intents("main") == []
        rec = state.file("main", "big.bin")
        assert rec is not None and rec.state == "pending" and rec.file_id is None
    finally:
        state.close()
    assert "big.bin" not in remote_md5s(sc)  # the cut body stored nothing
    assert ("POST", "disable_access_token") in sc.requests()


# -- the mapping from a settled batch to what the engine rescans -------------------------


def test_scope_of_maps_hints_to_directories_and_trees(tmp_path: Path) -> None:
    root = tmp_path
    for d in ("a/b/new/deeper", "kept"):
        (root / d).mkdir(parents=True)
    mirrored = {"", "a", "kept"}.__contains__

    def scope(batch: Batch, extra: set[str] | None = None) -> tuple[list[str], list[str]]:
        return scope_of(root, batch, mirrored, extra or set())

    # a file hint: its directory; a deleted directory: its parent, never a walk of it
    assert scope(Batch(paths=("kept/f.txt",), deletes=("gone/x",))) == (["", "kept"], [])
    assert scope(Batch(trees=("kept/removed",))) == (["kept"], [])
    # a new directory two levels below the last mirrored one: its parents first
    assert scope(Batch(trees=("a/b/new",))) == (["a", "a/b"], ["a/b/new"])
    # a hint inside a directory that is not mirrored yet climbs the same way
    assert scope(Batch(paths=("a/b/new/deeper/f",))) == (
        ["a", "a/b", "a/b/new", "a/b/new/deeper"], [])
    # a tree covers the directories below it; the whole pair covers everything
    assert scope(Batch(trees=("kept",), paths=("kept/x",))) == ([], ["kept"])
    assert scope(Batch(trees=("",)), {"kept", "a"}) == ([], [""])
