"""`syncd restore` against the emulator over HTTP: real files, real SQLite, injected faults.

Each test syncs a tree with the scenario helper, restores it (``restore()`` runs
``run_restore`` in-process and returns its ``--json`` document; ``sc.cli`` runs the real
command) and compares ``tree(out)`` with ``tree(sc.local)``: names, bytes, mtimes, empty
directories.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from syncd.emulator import EmulatorServer
from syncd.lock import StateLock
from syncd.remote.uploadapi.remote import UploadApiRemote
from syncd.restore import run_restore
from syncd.retry import RetryPolicy
from tests.conftest import EmulatorFactory
from tests.scenario import SYNCD, Scenario

NAMES = {
    "plain.txt": b"plain",
    "with space/and 'quote'.txt": b"quoted",
    'dq/say "hi".md': b'"hi"',
    "ünïcödé/文件 name.bin": os.urandom(5000),
    "deep/a/b/c/leaf.dat": os.urandom(70_000),
    "deep/a/sibling.txt": b"sibling",
    "zero-byte.txt": b"",
}
EMPTY_DIRS = ["empty", "deep/a/b/also-empty"]


def populate(sc: Scenario, files: dict[str, bytes] = NAMES) -> None:
    for n, (rel, data) in enumerate(sorted(files.items())):
        path = sc.write(rel, data)
        os.utime(path, ns=(1_600_000_000_123_456_789 + n, 1_600_000_000_123_456_789 + n * 1000))
    for rel in EMPTY_DIRS:
        sc.mkdir(rel)


def tree(root: Path, *, mtimes: bool = True) -> dict[str, Any]:
    """path -> "dir" | (md5, size, mtime_ns) for everything below ``root``."""
    out: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            out[rel] = "dir"
        else:
            st = path.stat()
            digest = hashlib.md5(path.read_bytes()).hexdigest()
            out[rel] = (digest, st.st_size, st.st_mtime_ns if mtimes else None)
    return out


def restore(sc: Scenario, *paths: str, to: Path | None, code: int = 0, **options: Any) -> Any:
    """run_restore in-process (fast retries), returning its --json document."""
    kwargs: dict[str, Any] = {"overwrite": False, "dry_run": False, "from_remote": None}
    kwargs.update(options)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        got = run_restore(
            sc.config(), (), to_dir=to, as_json=True, paths=paths,
            policy=RetryPolicy.fast(), **kwargs,
        )  # fmt: skip
    text = out.getvalue()  # structlog's default logger (unconfigured here) prints too
    doc = json.loads(text[text.index('{\n  "restores"') :])
    assert got == code == doc["exit_code"], doc
    return doc


def only(doc: Any) -> Any:
    [result] = doc["restores"]
    return result


def leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*.tmp")]


# -- whole pair, paths, prefixes -----------------------------------------------------------
def test_whole_pair_comes_back_byte_for_byte(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    populate(sc)
    os.symlink("plain.txt", sc.local / "link")  # skipped by rule: not in the backup
    assert sc.sync().exit_code == 0
    out = tmp_path / "out"
    result = only(restore(sc, to=out))
    expected = tree(sc.local)
    del expected["link"]
    assert tree(out) == expected
    assert result["restored"] == len(NAMES) and result["empty_files"] == 1
    assert result["verified"] == {"md5": len(NAMES) - 1, "size": 0}
    assert result["not_in_backup"] == [
        {"path": "link", "reason": "symlink (follow_symlinks = false)"}
    ]
    # Again: everything is already there, nothing is downloaded.
    before = emulator.requests.count(("GET", "download"))
    again = only(restore(sc, to=out))
    assert again["already_present"] == len(NAMES) and again["restored"] == 0
    assert emulator.requests.count(("GET", "download")) == before


def test_single_path_and_directory_prefix(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    populate(sc)
    sc.sync()
    out = tmp_path / "out"
    restore(sc, "plain.txt", "./deep/a/b/", to=out)
    local = tree(sc.local)
    assert tree(out) == {
        k: v for k, v in local.items()
        if k == "plain.txt" or k.startswith("deep/a/b") or k in ("deep", "deep/a")
    }  # fmt: skip
    pasted = only(restore(sc, "main/plain.txt", to=tmp_path / "pasted"))  # as `ls` prints it
    assert pasted["restored"] == 1 and (tmp_path / "pasted" / "plain.txt").exists()
    doc = restore(sc, "no/such/file", to=tmp_path / "out2", code=1)
    assert only(doc)["not_restored"] == [
        {"path": "no/such/file", "reason": "nothing recorded at this path"}
    ]


def test_dry_run_lists_and_downloads_nothing(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    populate(sc)
    sc.sync()
    before = len(emulator.requests)
    result = only(restore(sc, to=tmp_path / "out", dry_run=True))
    assert not (tmp_path / "out").exists()
    assert len(emulator.requests) == before  # not even authorize
    planned = {(p["action"], p["path"]) for p in result["planned"]}
    assert ("restore", "plain.txt") in planned and ("create empty", "zero-byte.txt") in planned
    assert ("mkdir", "empty") in planned


# -- existing targets ----------------------------------------------------------------------
def test_existing_files_are_never_overwritten_without_overwrite(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.write("same.txt", b"same content")
    sc.write("changed.txt", b"original")
    sc.sync()
    out = tmp_path / "out"
    out.mkdir()
    (out / "same.txt").write_bytes(b"same content")
    (out / "changed.txt").write_bytes(b"edited after the backup")
    os.utime(out / "changed.txt", ns=(1, 1_000_000_000))
    untouched = tree(out)
    result = only(restore(sc, to=out, code=1))
    assert tree(out) == untouched
    assert result["already_present"] == 1 and result["restored"] == 0
    [problem] = result["not_restored"]
    assert problem["path"] == "changed.txt" and "other content" in problem["reason"]
    result = only(restore(sc, to=out, overwrite=True))
    assert (out / "changed.txt").read_bytes() == b"original"
    assert result["restored"] == 1 and result["already_present"] == 1


def test_deleted_file_back_into_the_live_root(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    populate(sc)
    sc.sync()
    original = tree(sc.local)
    sc.remove("deep/a/sibling.txt")
    sc.sync()  # on_delete = keep: the record is marked deleted, the remote copy stays
    refused = sc.cli("restore", "--to", str(sc.local), "deep/a/sibling.txt")
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    inside = sc.cli("restore", "--to", str(sc.local / "deep"), "--overwrite")
    assert inside.returncode == 2 and "inside the live local root" in inside.stderr
    ok = sc.cli("restore", "--to", str(sc.local), "--overwrite", "deep/a/sibling.txt")
    assert ok.returncode == 0, ok.stderr
    assert tree(sc.local) == original
    uploads = len(sc.requests("file/upload"))
    assert sc.sync().exit_code == 0
    assert len(sc.requests("file/upload")) == uploads  # same MD5: only the stat is updated


def test_an_interrupted_restore_is_resumed(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    populate(sc)
    sc.sync()
    out = tmp_path / "out"
    restore(sc, "plain.txt", to=out)
    (out / "deep" / "a").mkdir(parents=True)  # what a kill -9 mid-download leaves behind
    (out / "deep" / "a" / ".sibling.txt.syncd-k3x_9a0q.tmp").write_bytes(b"sibl")
    (out / ".plain.txt.syncd-00000000.tmp").write_bytes(b"")
    result = only(restore(sc, to=out))
    assert result["already_present"] == 1 and result["restored"] == len(NAMES) - 1
    assert tree(out) == tree(sc.local) and leftovers(out) == []


def test_kill_9_mid_restore_then_again_ends_complete(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    sc = Scenario(tmp_path, emulator)
    files = {f"d{i % 3}/f{i}.bin": os.urandom(20_000 + i) for i in range(30)}
    populate(sc, files)
    sc.sync()
    emulator.faults.latency = 0.02
    out = tmp_path / "out"
    argv = [*SYNCD, "--config", str(sc.config_path), "restore", "--to", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(out.rglob("f*.bin"))) < 5:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(list(out.rglob("f*.bin"))) < len(files)  # it really was cut short
    emulator.faults.latency = 0
    restore(sc, to=out)
    assert tree(out) == tree(sc.local) and leftovers(out) == []


def test_never_restores_through_a_symlink(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.write("deep/x.txt", b"x")
    sc.write("y.txt", b"y")
    sc.sync()
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "deep").symlink_to(elsewhere)
    problems = only(restore(sc, to=out, code=1))["not_restored"]
    why = "deep is a symlink: not restoring through it"
    assert problems == [{"path": "deep/", "reason": why}, {"path": "deep/x.txt", "reason": why}]
    assert list(elsewhere.iterdir()) == [] and (out / "y.txt").read_bytes() == b"y"


def test_a_trashed_remote_copy_is_listed(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.write("kept.txt", b"kept")
    sc.write("gone.txt", b"gone")
    sc.sync()
    [gone] = [f for f in sc.remote_files() if f["rel"] == "gone.txt"]
    with UploadApiRemote(sc.config().remote) as remote:
        remote.delete_file(gone["id"])
    out = tmp_path / "out"
    [problem] = only(restore(sc, to=out, code=1))["not_restored"]
    assert problem["path"] == "gone.txt" and "in the site's trash" in problem["reason"]
    assert emulator.requests.count(("GET", "download")) == 2  # one each: no retry for gone
    assert sorted(p.name for p in out.iterdir()) == ["kept.txt"]


# -- faults --------------------------------------------------------------------------------
def test_corrupted_download_is_detected_and_fetched_again(
    tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    srv = emulator_factory(seed=1)  # seed 1, rate 0.5: the 1st download corrupt, the 2nd fine
    sc = Scenario(tmp_path, srv)
    data = os.urandom(200_000)
    sc.write("big.bin", data)
    sc.sync()
    srv.faults.corrupt_download_rate = 0.5
    out = tmp_path / "out"
    restore(sc, to=out)
    assert (out / "big.bin").read_bytes() == data
    assert srv.requests.count(("GET", "download")) == 2
    assert leftovers(out) == []


def test_download_that_stays_corrupt_is_never_left_in_place(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.write("a/big.bin", os.urandom(100_000))
    sc.sync()
    emulator.faults.corrupt_download_rate = 1.0
    out = tmp_path / "out"
    [problem] = only(restore(sc, to=out, code=1))["not_restored"]
    assert problem["path"] == "a/big.bin" and "failed its check 3 times" in problem["reason"]
    assert emulator.requests.count(("GET", "download")) == 3
    assert not (out / "a" / "big.bin").exists() and leftovers(out) == []


def test_restore_with_faults_converges(tmp_path: Path, emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory(seed=7)
    sc = Scenario(tmp_path, srv)
    files = {f"d{i % 4}/f{i}.bin": os.urandom(1000 + 937 * i) for i in range(24)}
    populate(sc, files)
    assert sc.sync().exit_code == 0
    srv.faults.fail_rate = srv.faults.reset_rate = 0.2
    out = tmp_path / "out"
    restore(sc, to=out)
    assert tree(out) == tree(sc.local) and leftovers(out) == []
    assert srv.requests.count(("GET", "download")) > len(files)  # faults did fire


# -- disaster mode -------------------------------------------------------------------------
def test_from_remote_restores_a_tree_synced_by_another_state_db(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    origin = Scenario(tmp_path / "origin", emulator)
    populate(origin)
    origin.sync()
    # A second "backup" folder in the root (a trashed one looks the same): the first in
    # listing order, the one sync adopted, wins.
    with UploadApiRemote(origin.config().remote) as remote:
        remote.create_folder("backup", None)
    fresh = Scenario(tmp_path / "fresh", emulator)  # no state DB there
    out = tmp_path / "out"
    run = fresh.cli("restore", "--from-remote", "backup", "--to", str(out), "--json")
    assert run.returncode == 0, run.stderr
    result = only(json.loads(run.stdout))
    expected = {k: v for k, v in tree(origin.local, mtimes=False).items() if k != "zero-byte.txt"}
    assert tree(out, mtimes=False) == expected
    assert result["verified"] == {"md5": 0, "size": len(NAMES) - 1}
    assert any("2 remote folders are named 'backup'" in note for note in result["notes"])
    assert not fresh.state_db.exists()


def test_from_remote_uses_an_existing_state_db_for_md5_and_mtimes(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    sc = Scenario(tmp_path, emulator)
    populate(sc)
    sc.sync()
    out = tmp_path / "out"
    result = only(restore(sc, "deep", to=out, from_remote="backup/deep/a", code=1))
    assert result["not_restored"] == [{"path": "deep", "reason": "no remote file at this path"}]
    result = only(restore(sc, to=out, from_remote="backup/deep/a"))
    assert result["verified"] == {"md5": 2, "size": 0}
    local = tree(sc.local / "deep" / "a")
    assert tree(out) == local


# -- command line ----------------------------------------------------------------------------
def test_cli_exit_codes(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.write("a.txt", b"a")
    sc.sync()
    no_db = Scenario(tmp_path / "other", emulator)
    run = no_db.cli("restore", "--to", str(tmp_path / "x"))
    assert run.returncode == 1 and "--from-remote" in run.stderr
    with StateLock(sc.state_db):
        run = sc.cli("restore", "--to", str(tmp_path / "out"))
    assert run.returncode == 75 and "another syncd" in run.stderr
    text = sc.config_path.read_text().replace(emulator.key1, "0" * 64)
    sc.config_path.write_text(text)
    run = sc.cli("restore", "--to", str(tmp_path / "out"))
    assert run.returncode == 77, run.stdout + run.stderr
    assert not (tmp_path / "out" / "a.txt").exists()


# -- streaming -----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_1_gib_file_is_restored_with_flat_memory(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    sc = Scenario(tmp_path, emulator)
    gib = 1 << 30
    path = sc.local / "huge.bin"
    with open(path, "wb") as fh:  # sparse, with a few real bytes so order matters
        fh.truncate(gib)
        for offset in (0, gib // 3, gib - 4096):
            fh.seek(offset)
            fh.write(os.urandom(4096))
    assert sc.sync().exit_code == 0
    out = tmp_path / "out"
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        result = only(restore(sc, to=out))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["restored"] == 1 and result["verified"]["md5"] == 1
    assert (out / "huge.bin").stat().st_size == gib
    assert peak - base < 50 * 1024 * 1024, f"peak grew by {(peak - base) >> 20} MiB"
