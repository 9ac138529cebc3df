"""The state store and the state lock on real SQLite files (and real processes)."""

from __future__ import annotations

import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import syncd.state
from syncd.errors import StateError, StateLocked
from syncd.lock import StateLock, lock_path_for, read_holder
from syncd.model import FileRecord, FileState, FolderRecord, Intent
from syncd.state import StateStore

REPO = str(Path(syncd.state.__file__).parents[1])


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[StateStore]:
    st = StateStore(db_path)
    yield st
    st.close()


def rec(path: str, pair: str = "p", **kw: object) -> FileRecord:
    fields: dict[str, object] = {"size": 10, "mtime_ns": 1, "inode": 2, "state": FileState.SYNCED}
    fields.update(kw)
    return FileRecord(pair, path, **fields)  # type: ignore[arg-type]


def run_python(
    code: str, *args: str, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": REPO}
    argv = [*(prefix or []), sys.executable, "-c", code, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/", check=False)


# What a child process prints: the StateError message, or "opened".
TRY_OPEN = """
import sys
from pathlib import Path
from syncd.errors import StateError
from syncd.model import FileRecord
from syncd.state import StateStore
try:
    st = StateStore(Path(sys.argv[1]))
    for i in range(int(sys.argv[2]) if len(sys.argv) > 2 else 0):
        st.put_file(FileRecord("p", f"f{i}", md5="x" * 2000))
    print("opened")
except StateError as exc:
    print(exc)
"""


# -- opening, schema ---------------------------------------------------------------


def test_open_twice_migrations_idempotent(db_path: Path) -> None:
    StateStore(db_path).close()
    st = StateStore(db_path)
    st.set_meta("k", "v")
    st.close()
    conn = sqlite3.connect(db_path)
    applied = conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = 'syncd'")
    assert [r[0] for r in applied] == ["m001_initial", "m002_quiet_index"]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with StateStore(db_path) as again:
        assert again.get_meta("k") == "v"
        assert again._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_a_db_of_the_first_schema_is_upgraded_in_place(db_path: Path) -> None:
    """A state DB written by a syncd with only m001 gains the quiet index, records kept."""
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

    from syncd import migrations

    first = Migrations(migrations.MIGRATION_SET)
    first()(migrations.m001_initial)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db = Database(db_path)
    db.enable_wal()
    first.apply(db)
    db.execute(
        "INSERT INTO files (pair, path, dir, size, mtime_ns, inode, file_id, state) "
        "VALUES ('p', 'd/a', 'd', 3, 4, 5, 'f1', 'synced')"
    )
    db.conn.commit()
    db.close()
    with StateStore(db_path) as st:
        assert st.quiet_keys("p", "d") == {("d/a", 3, 4, 5)}
        assert st.file("p", "d/a").file_id == "f1"  # type: ignore[union-attr]


def test_corrupt_file_is_a_state_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite at all" * 200)
    with pytest.raises(StateError) as e:
        StateStore(db_path)
    assert str(e.value) == f"{db_path} is not a syncd state database (file is not a database)"


def test_foreign_sqlite_database_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE files (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match=r"is not a syncd state database \(it holds other tables"):
        StateStore(db_path)


def test_newer_schema_refused(db_path: Path) -> None:
    StateStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
        "VALUES ('syncd', 'm999_future', 'x')"
    )
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="written by a newer syncd"):
        StateStore(db_path)


def test_path_is_a_directory(db_path: Path) -> None:
    db_path.mkdir(parents=True)
    with pytest.raises(StateError, match="it is a directory") as e:
        StateStore(db_path)
    assert str(db_path) in str(e.value) and "\n" not in str(e.value)


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StateError, match="cannot create the directory of state database"):
        StateStore(tmp_path / "file" / "state.db")


def test_permission_denied_as_unprivileged_user() -> None:
    """Permission bits do not stop root: the open runs in a child as ``nobody``."""
    base = Path(tempfile.mkdtemp(prefix="syncd-state-perm-"))  # /tmp: nobody can traverse
    try:
        base.chmod(0o755)  # root-owned: nobody may not create files here
        prefix = None
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("needs setpriv to drop root privileges")
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        else:
            base.chmod(0o555)
        proc = run_python(TRY_OPEN, str(base / "state.db"), prefix=prefix)
    finally:
        shutil.rmtree(base)
    if proc.returncode:
        pytest.skip(f"cannot run python unprivileged: {proc.stderr[-200:]}")
    assert proc.stdout.strip() == (
        f"cannot write state database {base}/state.db: permission denied "
        "(unable to open database file)"
    )


def in_private_mount(setup: str) -> list[str]:
    """argv prefix running a command in a private mount namespace after ``setup``."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    if probe.returncode:
        pytest.skip("mount namespaces are not available here")
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-ec",
        f'{setup}; exec "$@"',
        "sh",
    ]


def test_read_only_file_system(tmp_path: Path) -> None:
    """A real read-only mount (root ignores permission bits, not ``ro`` mounts)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    StateStore(ro / "existing.db").close()
    prefix = in_private_mount(f"mount --bind {ro} {ro}; mount -o remount,ro,bind {ro}")
    fresh = run_python(TRY_OPEN, str(ro / "state.db"), prefix=prefix)
    existing = run_python(TRY_OPEN, str(ro / "existing.db"), "1", prefix=prefix)
    assert fresh.stdout.strip().startswith(
        f"cannot write state database {ro}/state.db: read-only file system ("
    ), fresh.stderr
    assert existing.stdout.strip().startswith(
        f"cannot write state database {ro}/existing.db: read-only file system ("
    ), existing.stderr


def test_disk_full_on_a_tiny_file_system(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    prefix = in_private_mount(f"mount -t tmpfs -o size=256k tmpfs {small}")
    proc = run_python(TRY_OPEN, str(small / "state.db"), "1000", prefix=prefix)
    assert proc.stdout.strip() == (
        f"state database {small}/state.db: disk full (database or disk is full)"
    ), proc.stderr


def test_disk_full_mid_write_rolls_back(store: StateStore) -> None:
    """SQLite's own SQLITE_FULL path (max_page_count), the same error as ENOSPC."""
    store.put_file(rec("kept"))
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    full = r"disk full \(database or disk is full\)"
    with pytest.raises(StateError, match=full), store.transaction():
        for i in range(100):
            store.put_file(rec(f"big{i}", md5="x" * 4000))
    assert [r.path for r in store.iter_files("p")] == ["kept"]
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    store.put_file(rec("after"))  # the store is still usable


def test_locked_beyond_busy_timeout(db_path: Path) -> None:
    st = StateStore(db_path, busy_timeout=0.2)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    try:
        t = time.monotonic()
        with pytest.raises(StateError, match="is locked by another process"):
            st.put_file(rec("a"))
        assert time.monotonic() - t >= 0.15
    finally:
        other.execute("ROLLBACK")
        other.close()
    st.put_file(rec("a"))
    assert st.file("p", "a") is not None
    st.close()


# -- round trips ---------------------------------------------------------------------


def test_pairs_and_passes(store: StateStore) -> None:
    assert store.pair_info("p") is None and store.remote_root("p") is None
    store.set_pair_root("p", "/srv/p", "125")
    store.begin_pass("p")
    info = store.pair_info("p")
    assert info is not None
    assert (info["local"], info["remote_root_id"], info["last_pass"]) == ("/srv/p", "125", None)
    assert info["pass_started"].endswith("Z")
    store.end_pass("p", ok=False, error="remote unreachable")
    assert store.last_error("p") == "remote unreachable"
    assert store.pair_info("p")["last_pass"] is None  # type: ignore[index]
    store.end_pass("p", ok=True, error=None)
    info = store.pair_info("p")
    assert info is not None and info["pass_started"] is None and info["last_error"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["last_pass"])
    store.end_pass("new", ok=True, error="2 files failed")  # creates the row
    assert store.last_error("new") == "2 files failed"
    assert store.pair_names() == ["new", "p"]
    assert store.remote_root("p") == "125"


def test_file_round_trip_and_upsert(store: StateStore) -> None:
    full = FileRecord(
        "p", "a/b.txt", size=5, mtime_ns=1_700_000_000_123_456_789, inode=(1 << 64) - 1,
        md5="d41d8cd98f00b204e9800998ecf8427e", file_id="77", folder_id="12",
        remote_name="b.txt", url="https://x/77", short_url="https://x/s", uploaded_at="T",
        state=FileState.FAILED, error="boom", attempts=3, next_try=1234.5, verified="md5",
        deleted_at="D",
    )  # fmt: skip
    store.put_file(full)
    got = store.file("p", "a/b.txt")
    assert got == full and isinstance(got.state, FileState)
    full.state, full.error, full.inode = FileState.SYNCED, None, 42
    store.put_file(full)
    assert store.file("p", "a/b.txt") == full
    store.update_stat("p", "a/b.txt", 6, 99, 1 << 63)
    got = store.file("p", "a/b.txt")
    assert got is not None and (got.size, got.mtime_ns, got.inode) == (6, 99, 1 << 63)
    store.update_file("p", "a/b.txt", state=FileState.PENDING, attempts=0)
    assert store.file("p", "a/b.txt").state is FileState.PENDING  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        store.update_file("p", "a/b.txt", nonsense=1)
    store.delete_file_record("p", "a/b.txt")
    assert store.file("p", "a/b.txt") is None


def test_files_in_direct_children_by_utf8_order(store: StateStore) -> None:
    names = ["b", "a", "Z", "é", "e\u0301", "日本", "a b", "a.txt", "~"]
    for n in random.sample(names, len(names)):
        store.put_file(rec(f"d/{n}"))
    store.put_file(rec("d/sub/deeper"))
    store.put_file(rec("dx/other"))
    store.put_file(rec("d/a", pair="q"))
    got = [r.path for r in store.files_in("p", "d")]
    assert got == [f"d/{n}" for n in sorted(names, key=lambda s: s.encode())]
    assert [r.path for r in store.files_in("p", "")] == []
    store.put_file(rec("top"))
    assert [r.path for r in store.files_in("p", "")] == ["top"]


def test_folders(store: StateStore) -> None:
    for path, fid in [("", "1"), ("a", "2"), ("a/b", "3"), ("a/b/c", "4"), ("ab", "5")]:
        store.put_folder(FolderRecord("p", path, fid))
    store.put_file(rec("a/b/c/f"))
    store.put_file(rec("a/g"))
    store.put_file(rec("ab/h"))
    assert [f.path for f in store.folders_in("p", "")] == ["a", "ab"]
    assert [f.path for f in store.folders_in("p", "a")] == ["a/b"]
    store.put_folder(FolderRecord("p", "a/b", "33", state="failed", error="bad name"))
    assert store.folder("p", "a/b") == FolderRecord("p", "a/b", "33", "failed", "bad name")
    assert [f.path for f in store.iter_folders("p", prefix="a")] == ["a", "a/b", "a/b/c"]
    store.forget_tree("p", "a")
    assert [f.path for f in store.iter_folders("p")] == ["", "ab"]
    assert [r.path for r in store.iter_files("p")] == ["ab/h"]
    store.mark_folder_trashed("p", "a", "2")
    store.mark_folder_trashed("p", "a", "2")
    assert store.trashed_folder_ids("p") == {"2"} and store.trashed_folder_ids("q") == set()
    store.forget_tree("p", "")
    assert list(store.iter_folders("p")) == [] and list(store.iter_files("p")) == []


def test_mark_tree_gone_and_count_under(store: StateStore) -> None:
    for path in ("a", "a/b", "ab"):
        store.put_folder(FolderRecord("p", path, path))
    store.put_file(rec("a/f"))
    store.put_file(rec("a/b/g", state=FileState.PENDING))
    store.put_file(rec("a/b/old", deleted_at="EARLIER"))
    store.put_file(rec("a/skip", state=FileState.SKIPPED))
    store.put_file(rec("ab/h"))
    assert store.count_under("p", "a") == 2  # live records only: f and g
    assert store.count_under("p", "") == 3
    store.mark_tree_gone("p", "a", "NOW")
    assert [(f.path, f.state) for f in store.iter_folders("p")] == [
        ("a", "gone"), ("a/b", "gone"), ("ab", "active")
    ]  # fmt: skip
    deleted = {r.path: r.deleted_at for r in store.iter_files("p")}
    assert deleted == {
        "a/b/g": "NOW", "a/b/old": "EARLIER", "a/f": "NOW", "a/skip": "NOW", "ab/h": None
    }  # fmt: skip
    assert store.count_under("p", "a") == 0


def test_intents_and_referenced_ids(store: StateStore) -> None:
    it = Intent("p", "upload", "d/f.txt", folder_id="9", name="f.txt", size=5, old_file_id="70")
    first = store.add_intent(it)
    assert it.id == first
    second = store.add_intent(Intent("p", "trash", "x", file_id="71", folder_id="8"))
    store.add_intent(Intent("q", "rename", "y", file_id="72"))
    store.update_intent(first, kind="replace", file_id="80")
    got = store.intents("p")
    assert [i.id for i in got] == [first, second]
    assert got[0] == Intent("p", "replace", "d/f.txt", "9", "f.txt", 5, "80", "70", first)
    with pytest.raises(TypeError):
        store.update_intent(first, created_at="x")
    store.put_file(rec("d/f.txt", file_id="80", folder_id="9"))
    store.put_file(rec("d/g.txt", file_id="81", folder_id="9", deleted_at="T"))
    store.put_file(rec("d/h.txt", folder_id="9"))
    store.put_file(rec("other", pair="q", file_id="82", folder_id="9"))
    assert store.referenced_file_ids("p", "9") == {"70", "80", "81"}
    store.remove_intent(first)
    assert store.referenced_file_ids("p", "9") == {"80", "81"}
    assert [i.kind for i in store.intents("p")] == ["trash"]


def test_meta(store: StateStore) -> None:
    assert store.get_meta("queue") is None
    store.set_meta("queue", "5")
    store.set_meta("queue", "6")
    assert store.get_meta("queue") == "6"
    store.set_meta("queue", None)
    assert store.get_meta("queue") is None


# -- transactions, durability, streaming, counts --------------------------------------


def test_transaction_rolls_back_on_exception(store: StateStore) -> None:
    store.put_file(rec("before"))
    with pytest.raises(RuntimeError), store.transaction():
        store.put_file(rec("inside"))
        store.set_meta("m", "1")
        with store.transaction():  # nested: a savepoint
            store.put_folder(FolderRecord("p", "dir", "5"))
        raise RuntimeError("crash between two recorded steps")
    assert [r.path for r in store.iter_files("p")] == ["before"]
    assert store.get_meta("m") is None and store.folder("p", "dir") is None
    with store.transaction():
        store.put_file(rec("x"))
        store.set_meta("m", "2")
    assert store.get_meta("m") == "2" and store.file("p", "x") is not None


def test_every_write_is_committed_before_it_returns(db_path: Path, store: StateStore) -> None:
    reader = sqlite3.connect(db_path)
    store.put_file(rec("a"))
    assert reader.execute("SELECT path FROM files").fetchall() == [("a",)]
    with store.transaction():
        store.put_file(rec("b"))
        assert reader.execute("SELECT count(*) FROM files").fetchone()[0] == 1
    assert reader.execute("SELECT count(*) FROM files").fetchone()[0] == 2
    reader.close()


def test_iter_files_prefix_and_filters(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syncd.state, "BATCH", 3)  # cross several batch boundaries
    paths = ["a", "a b", "a.txt", "a/x", "a/y/z", "a/y0", "ab", "a0", "b/a"]
    for i, p in enumerate(paths):
        store.put_file(rec(p, state=FileState.PENDING if i % 2 else FileState.SYNCED))
    store.put_file(rec("a/gone", deleted_at="T"))
    store.put_file(rec("a/x", pair="other"))
    under_a = ["a", "a/gone", "a/x", "a/y/z", "a/y0"]  # not "a b", "a.txt", "a0", "ab"
    assert [r.path for r in store.iter_files("p", prefix="a")] == under_a
    assert [r.path for r in store.iter_files("p", prefix="./a/")] == under_a  # normalised
    assert [r.path for r in store.iter_files("p", prefix="a/x")] == ["a/x"]
    assert [r.path for r in store.iter_files("p", prefix="a", include_deleted=False)] == [
        "a", "a/x", "a/y/z", "a/y0"
    ]  # fmt: skip
    pending = sorted(p for i, p in enumerate(paths) if i % 2)
    assert [r.path for r in store.iter_files("p", state=FileState.PENDING)] == pending
    assert [r.path for r in store.iter_files("p", state="pending", prefix="a")] == ["a/x", "a/y0"]
    every = [(r.pair, r.path) for r in store.iter_files()]
    assert every == sorted([("p", p) for p in [*paths, "a/gone"]] + [("other", "a/x")])
    with pytest.raises(ValueError):
        list(store.iter_files("p", prefix="../x"))


def test_iter_files_streams_while_writing(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(syncd.state, "BATCH", 10)
    with store.transaction():
        for i in range(95):
            store.put_file(rec(f"f{i:03d}", state=FileState.PENDING))
    seen = []
    for r in store.iter_files("p", state="pending"):
        seen.append(r.path)
        store.update_file("p", r.path, state=FileState.SYNCED)  # a worker finishing it
    assert seen == [f"f{i:03d}" for i in range(95)]
    assert store.counts("p")["synced"] == 95


def test_counts(store: StateStore) -> None:
    store.put_file(rec("a", size=100))
    store.put_file(rec("b", size=50))
    store.put_file(rec("c", size=7, state=FileState.PENDING))
    store.put_file(rec("d", state=FileState.FAILED, error="too big"))
    store.put_file(rec("e", size=0, state=FileState.SKIPPED))
    store.put_file(rec("gone", size=1000, deleted_at="T"))
    store.put_file(rec("x", pair="q", size=5))
    assert store.counts("p") == {
        "synced": 2, "pending": 1, "failed": 1, "skipped": 1, "bytes_synced": 150
    }  # fmt: skip
    assert store.counts("none") == dict.fromkeys(
        ["synced", "pending", "failed", "skipped", "bytes_synced"], 0
    )


def test_threads_write_concurrently(store: StateStore) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(150):
                store.put_file(rec(f"t{n}/f{i}"))
                if i % 10 == 0:
                    with store.transaction():
                        store.update_file("p", f"t{n}/f{i}", state=FileState.PENDING)
                        store.set_meta(f"w{n}", str(i))
                assert len(store.files_in("p", f"t{n}")) == i + 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.counts("p") == {
        "synced": 8 * 135, "pending": 8 * 15, "failed": 0, "skipped": 0, "bytes_synced": 8 * 1350
    }  # fmt: skip
    assert {store.get_meta(f"w{n}") for n in range(8)} == {"140"}


def test_files_in_is_fast(store: StateStore) -> None:
    """Sanity bound only (the 100,000-record figure is measured in the bench script)."""
    with store.transaction():
        for d in range(100):
            for f in range(100):
                store.put_file(rec(f"dir{d:03d}/f{f:03d}", md5="0" * 32, file_id=str(f)))
    t = time.perf_counter()
    total = sum(len(store.files_in("p", f"dir{d:03d}")) for d in range(100))
    elapsed = time.perf_counter() - t
    assert total == 10_000
    assert elapsed < 0.5, f"10,000 records took {elapsed:.3f} s"  # ~0.04 s measured


# -- the state lock --------------------------------------------------------------------

HOLD_LOCK = """
import sys
from pathlib import Path
from syncd.lock import StateLock
lock = StateLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
sys.stdin.read()
"""


def test_lock_refuses_a_second_process(db_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": REPO}
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    ) as child:  # fmt: skip
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        with pytest.raises(StateLocked) as e:
            StateLock(db_path).acquire()
        assert e.value.pid == child.pid
        assert f"another syncd (pid {child.pid}) is running" in str(e.value)
        assert str(lock_path_for(db_path)) in str(e.value)
        assert read_holder(db_path) == child.pid
        assert child.stdin is not None
        child.stdin.close()  # the child exits: its flock goes with it
        child.wait(10)
    assert read_holder(db_path) is None  # the lock died with its process
    with StateLock(db_path) as lock:
        assert lock.held and read_holder(db_path) == os.getpid()
        assert lock_path_for(db_path).read_text() == f"{os.getpid()}\n"
    assert not lock.held and read_holder(db_path) is None
    assert lock_path_for(db_path).read_text() == ""


def test_lock_same_process_second_holder_and_missing_file(tmp_path: Path) -> None:
    db = tmp_path / "s" / "state.db"
    assert read_holder(db) is None  # no lock file yet
    first = StateLock(db).acquire()
    with pytest.raises(StateLocked):
        StateLock(db).acquire()  # flock is per open file: refused in-process too
    first.release()
    first.release()  # idempotent
    StateLock(db).acquire().release()
