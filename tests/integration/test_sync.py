"""One-shot sync scenarios: real files, a real SQLite file, the emulator over HTTP."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import unicodedata
from pathlib import Path

import pytest

from syncd.emulator import EmulatorServer
from tests.conftest import EmulatorFactory
from tests.scenario import Scenario

HOSTILE = [
    "with space.txt",
    "quote's.txt",
    'double "q".txt',
    "hash#.txt",
    "per%cent.txt",
    "plus+sign.txt",
    "-leading-dash.txt",
    "back\\slash.txt",
    ".dotfile",
    unicodedata.normalize("NFC", "café-nfc.txt"),
    unicodedata.normalize("NFD", "café-nfd.txt"),
    "文件 ünï.txt",
    "Case.txt",
    "case.txt",
    "b" * 196 + ".txt",
]


def writes(sc: Scenario) -> list[tuple[str, str]]:
    return [r for r in sc.requests() if r[1] in ("file/upload", "folder/create", "file/delete",
                                                 "file/edit", "file/move", "folder/delete")]


def test_hostile_names_nested_tree_and_empty_dirs(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    for i, name in enumerate(HOSTILE):
        sc.write(f"top dir/sub #{i % 3}/{name}", f"content {i} {name}")
        sc.write(name, f"root {i}")
    sc.mkdir("empty")
    sc.mkdir("top dir/empty inside")
    result = sc.sync()
    assert result.exit_code == 0, (result.failed, result.error)
    sc.assert_in_sync()


def test_second_run_sends_no_upload_and_no_folder_create(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    sc = Scenario(tmp_path, emulator)
    for i in range(30):
        sc.write(f"d{i % 4}/f{i}.txt", f"{i}")
    assert sc.sync().exit_code == 0
    emulator.clear_requests()
    result = sc.sync()
    assert result.exit_code == 0 and result.uploaded == 0
    assert sc.requests() == [], "an unchanged tree must not even authorize"


def test_touched_file_is_hashed_not_uploaded(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    path = sc.write("a.txt", "same bytes")
    sc.sync()
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    emulator.clear_requests()
    result = sc.sync()
    assert result.unchanged == 1 and result.uploaded == 0
    assert sc.requests("file/upload") == []
    emulator.clear_requests()
    assert sc.sync().unchanged == 0 and sc.requests() == []  # the new stat was recorded


def test_content_change_leaves_exactly_one_copy_with_the_real_name(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.write("docs/it's.txt", "version 1")
    sc.write("docs/plain.txt", "version 1")
    sc.sync()
    sc.write("docs/it's.txt", "version 2, longer")
    sc.write("docs/plain.txt", "version 2")
    result = sc.sync()
    assert result.exit_code == 0 and result.uploaded == 2
    sc.assert_in_sync()
    names = sorted(f["name"] for f in sc.remote_files())
    assert names == ["it's.txt", "plain.txt"]
    trashed = [f for f in emulator.tree()["files"] if f["status"] != "active"]
    assert len(trashed) == 2, "each old copy goes to the site's trash"


def test_delete_with_keep_leaves_the_remote_copy(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator, on_delete="keep")
    sc.write("a.txt", "a")
    sc.write("gone/b.txt", "b")
    sc.sync()
    sc.remove("a.txt")
    sc.remove("gone")
    emulator.clear_requests()
    result = sc.sync()
    assert result.exit_code == 0 and writes(sc) == []
    assert sorted(f["rel"] for f in sc.remote_files()) == ["a.txt", "gone/b.txt"]
    listing = json.loads(sc.cli("ls", "--json").stdout)
    assert {row["path"]: row["deleted"] for row in listing} == {"a.txt": True, "gone/b.txt": True}
    emulator.clear_requests()
    assert sc.sync().exit_code == 0 and sc.requests() == []  # marked once, then quiet
    sc.write("a.txt", "a")  # it comes back unchanged: nothing to upload
    result = sc.sync()
    assert result.uploaded == 0 and result.unchanged == 1


def test_delete_with_trash(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator, on_delete="trash")
    sc.write("keep.txt", "k")
    sc.write("a.txt", "a")
    sc.write("gone/b.txt", "b")
    sc.write("gone/deeper/c.txt", "c")
    sc.sync()
    sc.remove("a.txt")
    sc.remove("gone")
    result = sc.sync()
    assert result.exit_code == 0 and result.trashed == 2
    sc.assert_in_sync()
    emulator.clear_requests()
    assert sc.sync().exit_code == 0 and sc.requests() == []


def test_mass_delete_is_refused_loudly(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator, on_delete="trash", max_delete_ratio=0.5)
    for i in range(10):
        sc.write(f"f{i}.txt", str(i))
    sc.sync()
    for i in range(8):
        sc.remove(f"f{i}.txt")
    proc = sc.cli("sync")
    assert proc.returncode == 1
    assert "refusing to trash 8 of 10 files" in proc.stdout + proc.stderr
    assert len(sc.remote_files()) == 10
    assert [r for r in sc.requests() if r[1] == "file/delete"] == []


def test_dry_run_sends_no_write_request(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator, on_delete="trash")
    sc.write("old.txt", "o")
    sc.sync()
    sc.remove("old.txt")
    sc.write("new/a.txt", "a")
    emulator.clear_requests()
    proc = sc.cli("sync", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    planned = {(p["action"], p["path"]) for p in json.loads(proc.stdout)["pairs"][0]["planned"]}
    assert {("mkdir", "new"), ("upload", "new/a.txt"), ("trashfile", "old.txt")} <= planned
    assert writes(sc) == []
    assert sc.requests("authorize") == []


def test_files_not_uploaded_are_listed_with_a_reason(
    tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory(max_upload_size=1000)
    sc = Scenario(tmp_path, server)
    sc.write("ok.txt", "fine")
    sc.write("empty.txt", b"")
    sc.write("big.bin", b"x" * 2000)
    os.mkfifo(sc.local / "pipe")
    sc.mkdir("loop")
    os.symlink("..", sc.local / "loop" / "up")
    os.symlink("ok.txt", sc.local / "link.txt")
    bad = os.fsencode(sc.local) + b"/bad-\xff-name.txt"
    with open(bad, "wb") as handle:
        handle.write(b"undecodable")
    sc.write("emoji 😀.txt", "e")
    result = sc.sync()
    assert result.exit_code == 1
    rows = {row["path"]: row for row in json.loads(sc.cli("ls", "--json").stdout)}
    assert rows["ok.txt"]["state"] == "synced"
    expect = {
        "empty.txt": ("skipped", "zero-byte"),
        "pipe": ("skipped", "fifo"),
        "loop/up": ("skipped", "symlink"),
        "link.txt": ("skipped", "symlink"),
        "big.bin": ("failed", "max upload size"),
        "emoji 😀.txt": ("failed", "4-byte"),
    }
    for path, (state, fragment) in expect.items():
        assert rows[path]["state"] == state, (path, rows[path])
        assert fragment in rows[path]["error"], (path, rows[path])
    [undecodable] = [r for r in rows.values() if r["path"].startswith("bad-")]
    assert undecodable["state"] == "failed" and "UTF-8" in undecodable["error"]
    status = json.loads(sc.cli("status", "--json").stdout)
    files = status["pairs"][0]["files"]
    assert files == {"synced": 1, "pending": 0, "failed": 3, "skipped": 4}
    assert [f["rel"] for f in sc.remote_files()] == ["ok.txt"]


def test_file_changing_during_upload_is_retried_then_reported(
    tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory(latency=0.05)
    sc = Scenario(tmp_path, server)
    path = sc.write("busy.log", b"start\n" * 100_000)
    stop = threading.Event()

    def keep_appending() -> None:
        while not stop.is_set():
            with open(path, "ab") as handle:
                handle.write(b"more\n")
            time.sleep(0.002)

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        result = sc.sync()
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 1
    assert any("changed during upload" in error for _, error in result.failed)
    result = sc.sync()  # quiet now: the next pass uploads it once and cleans up
    assert result.exit_code == 0
    sc.assert_in_sync()


def test_the_state_lock_refuses_a_second_process(tmp_path: Path, emulator: EmulatorServer) -> None:
    from syncd.lock import StateLock

    sc = Scenario(tmp_path, emulator)
    sc.write("a.txt", "a")
    with StateLock(sc.state_db):
        proc = sc.cli("sync")
    assert proc.returncode == 75
    assert f"another syncd (pid {os.getpid()}) is running" in proc.stderr
    assert sc.cli("sync").returncode == 0


@pytest.mark.parametrize("style", ["status", "_status"])
def test_both_error_styles(tmp_path: Path, emulator_factory: EmulatorFactory, style: str) -> None:
    server = emulator_factory(error_style=style)
    sc = Scenario(tmp_path, server)
    sc.write("x/it's.txt", "q")
    sc.write("x/empty", b"")
    assert sc.sync().exit_code == 0
    sc.assert_in_sync()


def test_a_folder_not_created_for_a_passing_reason_keeps_its_files_pending(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    """folder/create answers lost every time (transient): in ``run`` the files inside wait a
    short backoff and the next pass mirrors the folder - not a refusal's 10 minutes."""
    sc = Scenario(tmp_path, emulator)
    sc.write("top.txt", b"top")
    assert sc.sync().exit_code == 0  # the pair's root folder exists
    sc.write("new/a.txt", b"a")
    emulator.faults.endpoints = frozenset({"folder/create"})
    emulator.faults.reset_rate = 1.0
    started = time.time()
    sc.sync(one_shot=False)
    with sc.state() as state:
        rec = state.file("main", "new/a.txt")
        folder = state.folder("main", "new")
    assert folder is not None and folder.state == "pending"
    assert rec is not None and rec.state == "pending" and rec.next_try is not None
    assert rec.next_try - started < 60
    emulator.faults.reset_rate = 0.0
    result = sc.sync()
    assert result.exit_code == 0
    sc.assert_in_sync()


def test_a_big_tree_is_walked_with_the_scan_helper_and_changes_on_its_side_are_synced(
    tmp_path: Path, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SPLIT_MIN_FOLDERS folders a whole-pair pass walks half the tree in a second
    process (syncd.scan_split); what it finds there is planned like everything else."""
    import syncd.pass_scans
    from syncd.scan_split import SPLIT_MIN_FOLDERS

    helpers: list[object] = []
    real_split_walk = syncd.pass_scans.split_walk

    def spy(*args: object, **kwargs: object) -> object:
        """Records whether a helper was asked for, and makes the walk wait for it: in a
        tree this small the walk could end before the helper is ready."""
        helper = kwargs["helper"]
        helpers.append(helper)
        if helper is not None:
            kwargs["helper"] = dataclasses.replace(helper, wait_ready=30)  # type: ignore[type-var]
        return real_split_walk(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(syncd.pass_scans, "split_walk", spy)
    sc = Scenario(tmp_path, emulator, on_delete="trash")
    dirs = [f"d{i:03d}" for i in range(SPLIT_MIN_FOLDERS + 10)]
    for d in dirs:
        sc.write(f"{d}/a.txt", f"a in {d}")
        sc.write(f"{d}/b.txt", f"b in {d}")
    assert sc.sync().exit_code == 0
    assert helpers == [None]  # no folder records yet: walked alone
    last, before_last = dirs[-1], dirs[-2]  # walked last: on the helper's side
    sc.write(f"{last}/a.txt", "changed")
    sc.write(f"{last}/new.txt", "new")
    sc.remove(f"{before_last}/b.txt")
    emulator.clear_requests()
    result = sc.sync()
    assert helpers[-1] is not None
    assert (result.exit_code, result.uploaded, result.trashed) == (0, 2, 1)
    sc.assert_in_sync()
    emulator.clear_requests()
    assert sc.sync().uploaded == 0 and sc.requests() == []
