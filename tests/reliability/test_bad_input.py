"""Bad input, one test each: a clear one-line message naming the thing, the right exit
code, and every other file still synced.

Where the test is about messages and exit codes it runs the real CLI in a subprocess.
Root ignores permission bits, so "unreadable" is made real by running syncd without the
two capabilities that let root read anything (``setpriv`` drops CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH from the bounding set: the process is still uid 0, the files'
permission bits now apply). Full and read-only file systems are real tmpfs / read-only
bind mounts under the test's directory; without the right to mount, the same failures
are injected into the state store as the OSError-backed sqlite errors they become.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from syncd.emulator import EmulatorServer
from syncd.lock import StateLock
from syncd.retry import RetryPolicy
from syncd.state import StateStore
from tests.conftest import EmulatorFactory
from tests.reliability.conftest import Scale
from tests.reliability.kit import quiet_env, syncd_cmd
from tests.reliability.tamper import Rule, TamperProxy
from tests.scenario import Scenario

FAST = RetryPolicy.fast()


@pytest.fixture
def sc(tmp_path: Path, emulator: EmulatorServer) -> Scenario:
    scenario = Scenario(tmp_path, emulator, on_delete="trash")
    scenario.write("good/one.txt", "one")
    scenario.write("two.txt", "two")
    return scenario


def error_line(stderr: str) -> str:
    """The one ``syncd: error:`` line; nothing else may be a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("syncd: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def problem_lines(stdout: str, needle: str) -> list[str]:
    return [ln for ln in stdout.splitlines() if needle in ln]


# -- configuration (exit 78, the file and the key named, nothing sent) -------------------


def edit_config(sc: Scenario, old: str, new: str) -> None:
    text = sc.config_path.read_text()
    assert old in text
    sc.config_path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("[sync]", "[sync\n", "invalid TOML"),
        ("[sync]", "[sync]\nwrokers = 3", "unknown key [sync] wrokers (did you mean workers?)"),
        ("workers = 4", 'workers = "four"', '[sync] workers: expected an integer >= 1, got "four"'),
        ("timeout = 10", "timeout = true", "[remote] timeout: expected a number >= 1, got true"),
        ('on_delete = "trash"', "on_delete = 1", "[sync] on_delete: expected a string"),
    ],
    ids=["invalid TOML", "unknown key", "string for integer", "bool for number", "int for str"],
)
def test_config_errors_name_the_file_and_the_key(
    sc: Scenario, emulator: EmulatorServer, old: str, new: str, named: str
) -> None:
    edit_config(sc, old, new)
    done = sc.cli("sync")
    assert done.returncode == 78
    line = error_line(done.stderr)
    assert str(sc.config_path) in line and named in line, line
    assert emulator.requests == []


@pytest.mark.parametrize("key", ["key1", "key2"])
@pytest.mark.parametrize("length", [32, 63, 65, 128])
def test_a_key_of_the_wrong_length_is_named_and_never_echoed(
    sc: Scenario, emulator: EmulatorServer, key: str, length: int
) -> None:
    real = getattr(emulator, key)
    bad = (real * 2)[:length]
    edit_config(sc, real, bad)
    done = sc.cli("sync")
    assert done.returncode == 78
    line = error_line(done.stderr)
    assert f"[remote] {key}: must be 64 characters (got {length})" in line, line
    assert bad[:16] not in done.stderr + done.stdout
    assert emulator.requests == []


def test_keys_the_site_refuses_exit_77(sc: Scenario, emulator: EmulatorServer) -> None:
    edit_config(sc, emulator.key1, "0" * 64)
    done = sc.cli("sync")
    assert done.returncode == 77
    assert problem_lines(done.stdout, "authorize refused: Could not authenticate user"), done


# -- local trees -------------------------------------------------------------------------


def add_pair(sc: Scenario, name: str, local: Path) -> None:
    with sc.config_path.open("a") as fh:
        fh.write(f'\n[[pair]]\nname = "{name}"\nlocal = "{local}"\nremote_path = "{name}"\n')


def test_a_missing_local_root_fails_its_pair_only(sc: Scenario, tmp_path: Path) -> None:
    add_pair(sc, "gone", tmp_path / "not here")
    done = sc.cli("sync")
    assert done.returncode == 1
    assert problem_lines(done.stdout, f"local root {tmp_path / 'not here'} is missing"), done
    sc.assert_in_sync()  # pair "main" synced all the same


def test_a_local_root_that_is_a_file_fails_its_pair_only(sc: Scenario, tmp_path: Path) -> None:
    (tmp_path / "a file").write_text("x")
    add_pair(sc, "file", tmp_path / "a file" / "below")  # a directory inside a file: ENOTDIR
    done = sc.cli("sync")
    assert done.returncode == 1
    assert problem_lines(done.stdout, "below is missing or not a directory"), done.stdout
    sc.assert_in_sync()


def without_root_powers(cmd: list[str]) -> list[str]:
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", "--", *cmd]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_unreadable_directory_and_file_are_failed_never_taken_for_deleted(
    sc: Scenario, emulator: EmulatorServer
) -> None:
    sc.write("secret/kept.txt", "uploaded while readable")
    sc.write("locked.txt", "unreadable file")
    assert sc.sync().exit_code == 0
    (sc.local / "secret").chmod(0)
    (sc.local / "locked.txt").chmod(0)
    sc.write("locked.txt", "changed, still unreadable")
    (sc.local / "locked.txt").chmod(0)
    sc.write("new.txt", "new")
    try:
        done = subprocess.run(
            without_root_powers(syncd_cmd(sc, "sync")),
            capture_output=True,
            text=True,
            env=quiet_env(),
            timeout=120,
            check=False,
        )
        trashed = [r for r in emulator.requests if r[1] in ("file/delete", "folder/delete")]
    finally:
        (sc.local / "secret").chmod(0o755)
        (sc.local / "locked.txt").chmod(0o644)
    assert done.returncode == 1, done.stderr
    assert problem_lines(done.stdout, "main/secret: cannot read directory: Permission denied")
    locked = problem_lines(done.stdout, "main/locked.txt: ")
    assert locked and locked[0].endswith("cannot read: Permission denied"), done.stdout
    assert trashed == []  # on_delete = "trash", yet nothing unreadable was taken for gone
    assert sc.sync().exit_code == 0
    sc.assert_in_sync()


def test_a_directory_replaced_by_a_file_of_the_same_name(sc: Scenario) -> None:
    sc.write("thing/inside.txt", "in a directory")
    sc.write("other.txt", "a file")
    assert sc.sync().exit_code == 0
    sc.remove("thing")
    sc.write("thing", "now a file")
    sc.remove("other.txt")
    sc.write("other.txt/inside.txt", "now a directory")
    done = sc.cli("sync")
    assert done.returncode == 0, done.stdout
    sc.assert_in_sync()


NAMES_OK = ["back\\slash.txt", "é" * 127 + "x", "x" * 251 + ".txt"]  # the last two: 255 bytes


def test_names_with_newline_backslash_255_bytes_and_non_utf8(sc: Scenario) -> None:
    for name in NAMES_OK:
        sc.write(name, f"content of {name}")
    sc.write("new\nline.txt", "newline")
    bad_bytes = os.fsdecode(b"bad\xffname.txt")
    (sc.local / bad_bytes).write_text("not UTF-8")
    done = sc.cli("sync")
    assert done.returncode == 1
    assert problem_lines(done.stdout, "main/new\\nline.txt: name contains control characters")
    assert problem_lines(done.stdout, "main/bad\\xffname.txt: name is not valid UTF-8")
    assert not any(ln.startswith("line.txt") for ln in done.stdout.splitlines())  # one line
    sc.assert_in_sync(ignore={"new\nline.txt", bad_bytes})
    again = sc.cli("-v", "sync")  # reported again, re-sent never (-v: each upload logged)
    assert again.returncode == 1 and not problem_lines(again.stderr, '"uploaded"')


def test_a_tree_100_levels_deep(sc: Scenario, scale: Scale) -> None:
    deep = "/".join(f"level{i}" for i in range(scale.depth))
    sc.write(f"{deep}/bottom.txt", "bottom")
    sc.write(f"{deep[: len(deep) // 2]}/middle.txt", "middle")
    done = sc.cli("sync")
    assert done.returncode == 0, done.stdout
    sc.assert_in_sync()


def test_ten_thousand_files_in_one_directory(
    tmp_path: Path, emulator_factory: EmulatorFactory, scale: Scale
) -> None:
    srv = emulator_factory(persist=False)  # no journal: 10,000 appends are not the point
    sc = Scenario(tmp_path, srv)
    big = sc.mkdir("big")
    for i in range(scale.big_dir):
        (big / f"file {i:05d}.txt").write_bytes(b"%d" % i)
    done = sc.cli("-q", "sync")
    assert done.returncode == 0, done.stdout[-2000:]
    sc.write("big/file 00042.txt", "changed")
    before = len(srv.requests)
    again = sc.cli("-q", "sync")
    assert again.returncode == 0
    sent = [e for _, e in srv.requests[before:]]
    assert sorted(sent) == [
        "account/package",
        "authorize",
        "disable_access_token",
        "file/delete",
        "file/edit",
        "file/upload",
    ], sent
    sc.assert_in_sync()


# -- files that change while they are sent -----------------------------------------------


@pytest.fixture
def proxied(tmp_path: Path, emulator: EmulatorServer) -> Iterator[tuple[Scenario, TamperProxy]]:
    proxy = TamperProxy(emulator.api_url).start()
    scenario = Scenario(tmp_path, emulator, on_delete="trash")
    text = scenario.config_path.read_text().replace(emulator.api_url, proxy.api_url)
    scenario.config_path.write_text(text)
    scenario.write("bystander.txt", "unaffected")
    yield scenario, proxy
    proxy.stop()


BIG = 24 * 1024 * 1024  # larger than the socket buffers: the file is still being read


def _shrink(path: Path) -> None:
    os.truncate(path, BIG // 2)


def _grow(path: Path) -> None:
    with path.open("ab") as fh:
        fh.write(b"more" * 1000)


def _vanish(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize("change", [_shrink, _grow, _vanish], ids=["shrinks", "grows", "vanishes"])
def test_a_file_that_changes_while_it_is_sent(
    proxied: tuple[Scenario, TamperProxy], change: Callable[[Path], None]
) -> None:
    sc, proxy = proxied
    path = sc.write("moving.bin", os.urandom(BIG))
    rule = proxy.add(
        Rule("file/upload", needle=b'filename="moving.bin"', hook=lambda: change(path))
    )
    result = sc.sync(policy=FAST)
    assert rule.spoiled == 1
    assert result.exit_code == 0, (result.failed, result.pending)
    if change is _vanish:
        assert sc.sync(policy=FAST).exit_code == 0  # the next pass trashes the copy
    sc.assert_in_sync()


def test_a_file_that_never_stops_changing_is_failed_and_named(
    proxied: tuple[Scenario, TamperProxy],
) -> None:
    sc, proxy = proxied
    path = sc.write("log.bin", os.urandom(BIG))
    proxy.add(Rule("file/upload", needle=b'filename="log.bin"', times=99, hook=lambda: _grow(path)))
    done = sc.cli("sync")
    assert done.returncode == 1
    assert problem_lines(done.stdout, "main/log.bin: changed during upload"), done.stdout
    sc.assert_in_sync(ignore={"log.bin"})


# -- the state DB ------------------------------------------------------------------------


@contextmanager
def mounted(target: Path, *options: str) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", *options, str(target)], capture_output=True).returncode:
        pytest.skip("cannot mount here")  # pragma: no cover - CI runs as root
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_state_db_on_a_read_only_file_system(sc: Scenario, emulator: EmulatorServer) -> None:
    assert sc.sync().exit_code == 0
    sc.write("good/changed later.txt", "new")
    state_dir = sc.state_db.parent
    with mounted(state_dir, "--bind", "-o", "ro", str(state_dir)):
        uploads = sum(1 for _, e in emulator.requests if e == "file/upload")
        done = sc.cli("sync")
        sent_uploads = sum(1 for _, e in emulator.requests if e == "file/upload") - uploads
    assert done.returncode == 75
    line = error_line(done.stderr)
    assert str(sc.state_db) in line and "read-only file system" in line.lower(), line
    assert sent_uploads == 0  # nothing sent that could not be recorded
    assert sc.sync().exit_code == 0
    sc.assert_in_sync()


def test_state_db_in_a_read_only_directory_cannot_be_created(
    sc: Scenario, emulator: EmulatorServer
) -> None:
    state_dir = sc.state_db.parent
    with mounted(state_dir, "--bind", "-o", "ro", str(state_dir)):
        done = sc.cli("sync")
    assert done.returncode == 75
    line = error_line(done.stderr)
    assert str(state_dir) in line and "read-only file system" in line.lower(), line
    assert emulator.requests == []


def test_state_db_on_a_full_file_system(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    for i in range(400):  # long paths: the records outgrow the tiny file system mid-pass
        sc.write(f"dir {i % 7}/{'long name ' * 10}{i}.txt", f"{i}")
    state_dir = sc.state_db.parent
    with mounted(state_dir, "-t", "tmpfs", "-o", "size=400k", "tmpfs"):
        done = sc.cli("sync")
        assert done.returncode == 75
        line = error_line(done.stderr)
        assert str(sc.state_db) in line and "disk full" in line, line
        subprocess.run(["mount", "-o", "remount,size=16m", str(state_dir)], check=True)
        again = sc.cli("sync")
        assert again.returncode == 0, again.stdout
        sc.assert_in_sync()  # what was sent but not recorded was found and trashed


def test_state_db_full_injected(sc: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same as above without mount rights: sqlite's own error, from the store."""
    original = StateStore.put_file
    calls = {"n": 0}

    def full(self: StateStore, rec: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            with self._guard():
                raise sqlite3.OperationalError("database or disk is full")
        original(self, rec)  # type: ignore[arg-type]

    monkeypatch.setattr(StateStore, "put_file", full)
    for i in range(8):
        sc.write(f"more/{i}.txt", f"{i}")
    with pytest.raises(Exception, match="disk full"):
        sc.sync()
    monkeypatch.undo()
    assert sc.sync().exit_code == 0
    sc.assert_in_sync()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_state_db(sc: Scenario, emulator: EmulatorServer, damage: str) -> None:
    assert sc.sync().exit_code == 0
    for suffix in ("-wal", "-shm"):
        Path(f"{sc.state_db}{suffix}").unlink(missing_ok=True)
    raw = sc.state_db.read_bytes()
    sc.state_db.write_bytes(os.urandom(len(raw)) if damage == "garbage" else raw[: len(raw) // 2])
    done = sc.cli("sync")
    assert done.returncode == 75
    line = error_line(done.stderr)
    assert str(sc.state_db) in line, line
    assert "not a syncd state database" in line or "corrupt" in line, line


def test_a_locked_state_db_exits_75_naming_the_holder(
    sc: Scenario, emulator: EmulatorServer
) -> None:
    with StateLock(sc.state_db):
        done = sc.cli("sync")
    assert done.returncode == 75
    line = error_line(done.stderr)
    assert f"another syncd (pid {os.getpid()}) is running" in line, line
    assert emulator.requests == []
