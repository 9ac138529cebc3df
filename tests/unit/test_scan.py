"""The scanner on real files: classification, ignore rules, symlinks, odd names, order."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import syncd.scan
from syncd.lock import state_files
from syncd.model import DirScan, Kind, LocalEntry
from syncd.paths import IgnoreRules
from syncd.scan import scan_dir, walk


def write(root: Path, rel: str, data: bytes = b"x") -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def rules(root: Path, *patterns: str) -> IgnoreRules:
    return IgnoreRules.load(root, patterns)


def entries(scan: DirScan) -> dict[str, LocalEntry]:
    return {e.path: e for e in scan.entries}


def kinds(root: Path, *patterns: str, follow: bool = False) -> dict[str, tuple[Kind, str | None]]:
    """Every entry of a whole walk: path -> (kind, reason)."""
    return {
        e.path: (e.kind, e.reason)
        for s in walk(root, rules(root, *patterns), follow_symlinks=follow)
        for e in s.entries
    }


def test_nested_tree_parent_before_children_in_name_order(tmp_path: Path) -> None:
    for rel in ("b/2.txt", "b/1.txt", "a/z/deep.txt", "a/file", "top.txt", "c.d/x"):
        write(tmp_path, rel, b"data")
    (tmp_path / "empty").mkdir()
    scans = list(walk(tmp_path, rules(tmp_path)))
    assert [s.path for s in scans] == ["", "a", "a/z", "b", "c.d", "empty"]
    root = scans[0]
    assert [e.path for e in root.entries] == ["a", "b", "c.d", "empty", "top.txt"]
    assert [e.kind for e in root.entries] == [Kind.DIR] * 4 + [Kind.FILE]
    assert [e.path for e in scans[1].entries] == ["a/file", "a/z"]
    assert scans[-1].entries == [] and scans[-1].error is None
    top = entries(root)["top.txt"]
    st = os.lstat(tmp_path / "top.txt")
    assert (top.size, top.mtime_ns, top.inode) == (4, st.st_mtime_ns, st.st_ino)
    assert top.reason is None and top.name == "top.txt"


def test_walk_from_a_start_directory(tmp_path: Path) -> None:
    write(tmp_path, "a/b/c.txt")
    write(tmp_path, "x.txt")
    assert [s.path for s in walk(tmp_path, rules(tmp_path), start="./a/")] == ["a", "a/b"]
    assert [e.path for e in scan_dir(tmp_path, "a/b", rules(tmp_path)).entries] == ["a/b/c.txt"]


def test_walk_is_lazy(tmp_path: Path) -> None:
    write(tmp_path, "a/1")
    write(tmp_path, "b/1")
    it = walk(tmp_path, rules(tmp_path))
    assert next(it).path == ""
    write(tmp_path, "a/2")  # created after the parent was listed, before "a" is read
    assert [e.path for e in next(it).entries] == ["a/1", "a/2"]


def test_zero_byte_fifo_socket_skipped(tmp_path: Path) -> None:
    write(tmp_path, "empty.txt", b"")
    os.mkfifo(tmp_path / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
        got = kinds(tmp_path)
    finally:
        sock.close()
    assert got["empty.txt"] == (Kind.SKIP, "zero-byte file (the API rejects empty uploads)")
    assert got["pipe"] == (Kind.SKIP, "special file (fifo)")
    assert got["sock"] == (Kind.SKIP, "special file (socket)")


def test_device_skipped(tmp_path: Path) -> None:
    try:
        os.mknod(tmp_path / "null", 0o600 | 0o020000, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD")
    assert kinds(tmp_path)["null"] == (Kind.SKIP, "special file (character device)")


def test_symlinks_skipped_by_default(tmp_path: Path) -> None:
    write(tmp_path, "real/f.txt")
    (tmp_path / "to_file").symlink_to("real/f.txt")
    (tmp_path / "to_dir").symlink_to("real")
    got = kinds(tmp_path)
    assert got["to_file"] == (Kind.SKIP, "symlink (follow_symlinks = false)")
    assert got["to_dir"] == (Kind.SKIP, "symlink (follow_symlinks = false)")
    assert "to_dir/f.txt" not in got


def test_follow_symlinks_inside_root_outside_and_loops(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "real/f.txt", b"12345")
    write(tmp_path, "outside/secret.txt")
    (root / "to_file").symlink_to("real/f.txt")
    (root / "to_dir").symlink_to("real")
    (root / "out_file").symlink_to(tmp_path / "outside" / "secret.txt")
    (root / "out_dir").symlink_to(tmp_path / "outside")
    (root / "real" / "up").symlink_to("..")  # a directory on the current path
    (root / "self").symlink_to("self")  # ELOOP
    (root / "dangling").symlink_to("nowhere")
    got = kinds(root, follow=True)
    assert got["to_file"][0] is Kind.FILE
    assert got["to_dir"] == (Kind.DIR, None)
    assert got["to_dir/f.txt"][0] is Kind.FILE  # followed: contents listed under the link
    assert got["out_file"] == (Kind.SKIP, "symlink points outside the root")
    assert got["out_dir"] == (Kind.SKIP, "symlink points outside the root")
    assert got["real/up"] == (Kind.SKIP, "symlink loop")
    assert got["to_dir/up"] == (Kind.SKIP, "symlink loop")
    assert got["self"] == (Kind.SKIP, "symlink loop")
    assert got["dangling"] == (Kind.SKIP, "broken symlink")
    assert not any("secret" in p for p in got)
    target = os.stat(root / "real" / "f.txt")
    e = entries(scan_dir(root, "", rules(root), follow_symlinks=True))["to_file"]
    assert (e.size, e.inode) == (5, target.st_ino)  # the target's stat, not the link's


def test_follow_symlinks_mutual_loop_terminates(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "to_b").symlink_to("../b")
    (tmp_path / "b" / "to_a").symlink_to("../a")
    got = kinds(tmp_path, follow=True)
    assert got["a/to_b"] == (Kind.DIR, None)
    assert got["a/to_b/to_a"] == (Kind.SKIP, "symlink loop")
    assert got["b/to_a/to_b"] == (Kind.SKIP, "symlink loop")
    # scan_dir on a path reached through links knows its ancestors too
    scan = scan_dir(tmp_path, "a/to_b", rules(tmp_path), follow_symlinks=True)
    assert entries(scan)["a/to_b/to_a"].reason == "symlink loop"


def test_name_not_utf8_fails_and_is_not_descended(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path)
    fd = os.open(raw + b"/bad\xff.txt", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"data")
    os.close(fd)
    os.mkdir(raw + b"/dir\xfe")
    with open(raw + b"/dir\xfe/inner.txt", "wb") as f:
        f.write(b"x")
    scans = list(walk(tmp_path, rules(tmp_path)))
    assert [s.path for s in scans] == [""]
    got = entries(scans[0])
    assert got["bad\\xff.txt"].kind is Kind.FAIL
    assert got["bad\\xff.txt"].reason == "name is not valid UTF-8"
    assert got["dir\\xfe"].kind is Kind.FAIL
    for path in got:
        path.encode("utf-8")  # printable and storable


def test_ignored_entries_listed_as_skip_and_not_descended(tmp_path: Path) -> None:
    write(tmp_path, "keep.txt")
    write(tmp_path, "a.swp")
    write(tmp_path, "build/out.o")
    write(tmp_path, "src/build/x.o")
    write(tmp_path, "src/main.c")
    write(tmp_path, "logs/a.log")
    write(tmp_path, "logs/keep.log")
    (tmp_path / ".syncdignore").write_text("logs/*.log\n!logs/keep.log\n")
    scans = {s.path: s for s in walk(tmp_path, rules(tmp_path, "*.swp", "build/"))}
    assert "build" not in scans and "src/build" not in scans
    root = entries(scans[""])
    assert (root["a.swp"].kind, root["a.swp"].reason) == (Kind.SKIP, "ignored")
    assert (root["build"].kind, root["build"].reason) == (Kind.SKIP, "ignored")
    assert root["keep.txt"].kind is Kind.FILE
    assert root[".syncdignore"].kind is Kind.FILE  # uploaded like any file
    assert entries(scans["src"])["src/build"].kind is Kind.SKIP
    assert entries(scans["src"])["src/main.c"].kind is Kind.FILE
    logs = entries(scans["logs"])
    assert logs["logs/a.log"].reason == "ignored"
    assert logs["logs/keep.log"].kind is Kind.FILE


def test_ignore_wins_over_other_verdicts(tmp_path: Path) -> None:
    write(tmp_path, "empty.tmp", b"")
    os.mkfifo(tmp_path / "fifo.tmp")
    os.close(os.open(os.fsencode(tmp_path) + b"/bad\xff.tmp", os.O_CREAT, 0o644))
    got = kinds(tmp_path, "*.tmp")
    assert got["empty.tmp"] == (Kind.SKIP, "ignored")
    assert got["fifo.tmp"] == (Kind.SKIP, "ignored")
    assert got["bad\\xff.tmp"] == (Kind.SKIP, "ignored")


def test_state_db_inside_root_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, "data.txt")
    for p in state_files(tmp_path / ".syncd" / "state.db"):
        write(tmp_path, str(p.relative_to(tmp_path)))
    r = rules(tmp_path).with_excluded(state_files(tmp_path / ".syncd" / "state.db"))
    got = {e.path: e for s in walk(tmp_path, r) for e in s.entries}
    assert got["data.txt"].kind is Kind.FILE
    for name in ("state.db", "state.db-wal", "state.db-shm", "state.db-journal", "state.db.lock"):
        assert got[f".syncd/{name}"].reason == "ignored (syncd state file)"


_real_scandir = os.scandir


class _VanishingScandir:
    """os.scandir whose listing is taken before ``victim`` is deleted: the real DirEntry
    then fails its real lstat with FileNotFoundError, as in a race with a deleter."""

    def __init__(self, path: str, victim: Path) -> None:
        self._it = _real_scandir(path)
        self._victim = victim

    def __enter__(self) -> Iterator[os.DirEntry[str]]:
        listed = list(self._it)
        if self._victim.exists():
            self._victim.unlink()
        return iter(listed)

    def __exit__(self, *exc: Any) -> None:
        self._it.close()


def test_file_vanishing_between_listing_and_stat_is_omitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "stays.txt")
    victim = write(tmp_path, "goes.txt")
    monkeypatch.setattr(os, "scandir", lambda p: _VanishingScandir(p, victim))
    scan = scan_dir(tmp_path, "", rules(tmp_path))
    monkeypatch.undo()
    assert [e.path for e in scan.entries] == ["stays.txt"]
    assert scan.error is None


def test_unreadable_or_missing_directory_sets_error(tmp_path: Path) -> None:
    write(tmp_path, "a/x")
    assert scan_dir(tmp_path, "nope", rules(tmp_path)).error == (
        "cannot read directory: No such file or directory"
    )
    assert scan_dir(tmp_path, "a/x", rules(tmp_path)).error == (
        "cannot read directory: Not a directory"
    )
    missing_root = list(walk(tmp_path / "gone", rules(tmp_path)))
    assert len(missing_root) == 1 and missing_root[0].error is not None


def run_unprivileged(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as ``nobody`` when we are root (permission bits do not stop root)."""
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("needs setpriv (util-linux) to drop root privileges")
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    env = {**os.environ, "PYTHONPATH": str(Path(syncd.scan.__file__).parents[1])}
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/", check=False)


def test_permission_denied_directory() -> None:
    """Root reads every directory, so the walk runs in a child process as ``nobody``."""
    base = Path(tempfile.mkdtemp(prefix="syncd-perm-"))  # /tmp: traversable by nobody
    try:
        base.chmod(0o755)
        write(base, "locked/x")
        write(base, "open/y")
        (base / "locked").chmod(0)
        code = (
            "import json, sys; from pathlib import Path; "
            "from syncd.paths import IgnoreRules; from syncd.scan import walk; "
            "root = Path(sys.argv[1]); "
            "print(json.dumps([[s.path, s.error, [[e.path, e.kind] for e in s.entries]] "
            "for s in walk(root, IgnoreRules.load(root, []))]))"
        )
        proc = run_unprivileged([sys.executable, "-c", code, str(base)])
        if proc.returncode != 0:
            pytest.skip(f"cannot run a walk as an unprivileged user: {proc.stderr[-200:]}")
        scans = {path: (error, dict(ents)) for path, error, ents in json.loads(proc.stdout)}
    finally:
        (base / "locked").chmod(0o755)
        shutil.rmtree(base)
    assert scans[""][1] == {"locked": "dir", "open": "dir"}
    assert scans["locked"] == ("cannot read directory: Permission denied", {})
    assert scans["open"] == (None, {"open/y": "file"})


def test_start_a_walk_never_reaches_is_refused(tmp_path: Path) -> None:
    """A hint must not get around what a walk from the root would skip."""
    root = tmp_path / "root"
    write(tmp_path, "outside/secret.txt")
    write(root, "real/f.txt")
    write(root, "secrets/key.txt")
    (root / "out").symlink_to(tmp_path / "outside")
    (root / "in").symlink_to("real")
    r = rules(root, "secrets/")
    assert scan_dir(root, "out", r).error == ("not scanned: symlink (follow_symlinks = false)")
    assert scan_dir(root, "out", r, follow_symlinks=True).error == (
        "not scanned: symlink points outside the root"
    )
    assert scan_dir(root, "in", r).error is not None
    assert [e.path for e in scan_dir(root, "in", r, follow_symlinks=True).entries] == ["in/f.txt"]
    assert scan_dir(root, "secrets", r).error == "not scanned: inside an ignored directory"
    (only,) = list(walk(root, r, start="out"))
    assert only.entries == [] and only.error is not None
    assert scan_dir(root, "missing/deeper", r).error is not None


def test_rejects_paths_escaping_the_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        scan_dir(tmp_path, "../etc", rules(tmp_path))
    with pytest.raises(ValueError):
        next(walk(tmp_path, rules(tmp_path), start="/etc"))


def test_hundred_levels_deep(tmp_path: Path) -> None:
    rel = "/".join(f"d{i}" for i in range(100))
    write(tmp_path, rel + "/leaf.txt")
    scans = list(walk(tmp_path, rules(tmp_path)))
    assert len(scans) == 101
    assert [e.path for e in scans[-1].entries] == [rel + "/leaf.txt"]


def test_ten_thousand_files_in_one_directory(tmp_path: Path) -> None:
    for i in range(10_000):
        (tmp_path / f"f{i:05d}").write_bytes(b"x")
    t = time.perf_counter()
    (scan,) = list(walk(tmp_path, rules(tmp_path, "*.tmp")))
    elapsed = time.perf_counter() - t
    assert len(scan.entries) == 10_000
    assert [e.path for e in scan.entries] == sorted(e.path for e in scan.entries)
    assert elapsed < 1.0, f"10,000 entries took {elapsed:.2f} s"  # ~0.05 s measured


def test_unicode_names_kept_as_on_disk_and_sorted_by_utf8_bytes(tmp_path: Path) -> None:
    nfc = unicodedata.normalize("NFC", "café.txt")
    nfd = unicodedata.normalize("NFD", "café.txt")
    names = [nfc, nfd, "Zed", "apple", "ängel", "日本.txt", "~tilde"]
    for n in names:
        write(tmp_path, n)
    got = [e.path for e in scan_dir(tmp_path, "", rules(tmp_path)).entries]
    assert set(got) == set(names) and nfc in got and nfd in got
    assert got == sorted(names, key=lambda n: n.encode("utf-8"))
