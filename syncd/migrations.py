"""The state DB file for ``state.py``: open, configure, check it is ours, migrate; and
how records map to rows.

``open_database`` fails only with a ``StateError`` whose one line names the file
(``describe_error``). The schema is the numbered ``sqlite_utils.Migrations`` below.
Never edit a migration that has shipped: add ``m00N_…`` after it. Each runs in one
transaction with its ``_sqlite_migrations`` row, so a crash mid-upgrade leaves the
previous version intact. Paths are TEXT in SQLite's BINARY collation, i.e. UTF-8 byte
order - the same order as Python's ``str`` sort and the scanner's.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from functools import partial
from itertools import starmap
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncd.errors import StateError
from syncd.model import FileRecord, FileState, Intent

if TYPE_CHECKING:  # imported when a schema must be checked or migrated: ~50 ms at start
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

BUSY_TIMEOUT = 10.0  # s: long enough to outwait a `status` read or a checkpoint
# Page cache per connection (SQLite's default size). Passes read the DB in index order
# (one directory at a time) and write it in path order, so a big cache buys little speed
# (pages come back from the OS page cache), while every page read stays resident: 32 MiB
# made a no-op pass over 100k files cost ~300 bytes per file.
CACHE_KIB = 2 * 1024

# The stat of every file a pass may skip without a look - synced, present and uploaded -
# read from the partial covering index ``files_quiet`` alone (migration m002). INDEXED BY:
# if the planner could not use it, the query fails instead of crawling.
QUIET_SQL = (
    "SELECT path, size, mtime_ns, inode FROM files INDEXED BY files_quiet "
    "WHERE pair = ? AND dir = ? AND state = 'synced' AND deleted_at IS NULL "
    "AND file_id IS NOT NULL"
)
QuietKey = tuple[str, int, int, int]  # (path, size, mtime_ns, inode as stored: signed)

MIGRATION_SET = "syncd"
MIGRATIONS_TABLE = "_sqlite_migrations"  # sqlite_utils.Migrations.migrations_table
KNOWN: list[str] = []  # every migration name this version knows, in order
_FUNCTIONS: list[Callable[[Database], None]] = []


def _migration(fn: Callable[[Database], None]) -> Callable[[Database], None]:
    KNOWN.append(fn.__name__)
    _FUNCTIONS.append(fn)
    return fn


def migrations() -> Migrations:
    """The ``sqlite_utils.Migrations`` of this schema."""
    from sqlite_utils.migrations import Migrations

    migration_set = Migrations(MIGRATION_SET)
    for fn in _FUNCTIONS:
        migration_set()(fn)
    return migration_set


def _run(db: Database, *statements: str) -> None:
    for sql in statements:
        db.execute(sql)


@_migration
def m001_initial(db: Database) -> None:
    """The first schema: pairs, files, folders, trashed folders, intents, meta."""
    _run(
        db,
        """CREATE TABLE pairs (
            name TEXT PRIMARY KEY,
            local TEXT,
            remote_root_id TEXT,
            last_pass TEXT,          -- ISO-8601 UTC end of the last successful pass
            last_error TEXT,
            pass_started TEXT        -- set while a pass runs; left set by a crash
        )""",
        # One row per local path that syncd knows of (uploaded, pending, failed or
        # skipped). ``dir`` is the parent path, so the per-directory planner reads one
        # index range; the index also carries ``path`` so rows come back in name order.
        """CREATE TABLE files (
            pair TEXT NOT NULL,
            path TEXT NOT NULL,
            dir TEXT NOT NULL,
            size INTEGER,
            mtime_ns INTEGER,
            inode INTEGER,           -- st_ino, stored as signed 64-bit
            md5 TEXT,
            file_id TEXT,
            folder_id TEXT,
            remote_name TEXT,
            url TEXT,
            short_url TEXT,
            uploaded_at TEXT,
            state TEXT NOT NULL DEFAULT 'pending',
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try REAL,
            verified TEXT,
            deleted_at TEXT,
            PRIMARY KEY (pair, path)
        )""",
        "CREATE INDEX files_dir ON files (pair, dir, path)",
        "CREATE INDEX files_state ON files (pair, state, path)",
        "CREATE INDEX files_folder ON files (folder_id)",
        """CREATE TABLE folders (
            pair TEXT NOT NULL,
            path TEXT NOT NULL,
            parent TEXT,             -- NULL for the pair root ("")
            folder_id TEXT,
            state TEXT NOT NULL DEFAULT 'active',  -- active | failed | gone | trashed
            error TEXT,
            PRIMARY KEY (pair, path)
        )""",
        "CREATE INDEX folders_parent ON folders (pair, parent, path)",
        # Real listings keep showing folders syncd sent to the trash; these ids are
        # not to be adopted again.
        """CREATE TABLE trashed_folders (
            folder_id TEXT PRIMARY KEY,
            pair TEXT NOT NULL,
            path TEXT NOT NULL,
            trashed_at TEXT NOT NULL
        )""",
        "CREATE INDEX trashed_folders_pair ON trashed_folders (pair)",
        # Write-ahead log of remote operations that may be in flight (see model.Intent).
        """CREATE TABLE intents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pair TEXT NOT NULL,
            kind TEXT NOT NULL,
            path TEXT NOT NULL,
            folder_id TEXT,
            name TEXT,
            size INTEGER,
            file_id TEXT,
            old_file_id TEXT,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX intents_pair ON intents (pair, id)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    )


@_migration
def m002_quiet_index(db: Database) -> None:
    """A partial covering index of the files a pass may skip without a look (synced,
    present, uploaded): a no-op pass reads their stat from the index alone, ~3x faster
    than through the table (bench/RESULTS.md)."""
    _run(
        db,
        "CREATE INDEX files_quiet ON files (pair, dir, path, size, mtime_ns, inode) "
        "WHERE state = 'synced' AND deleted_at IS NULL AND file_id IS NOT NULL",
    )


def open_database(path: Path, busy_timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    """A connection to the migrated DB at ``path`` (created with its directory if
    missing), WAL mode.

    One connection with ``check_same_thread=False`` (the caller serialises its use), in
    autocommit mode (``isolation_level=None``): the caller opens transactions with BEGIN.
    A DB already in WAL mode with exactly the known migrations applied (every start but
    the first of a version) is opened with two plain queries, without sqlite_utils.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"cannot create the directory of state database {path}: {exc.strerror}"
        ) from exc
    try:
        # isolation_level=None: autocommit; transactions are explicit (StateStore._atomic).
        conn = sqlite3.connect(str(path), timeout=busy_timeout, check_same_thread=False,
                               isolation_level=None)  # fmt: skip
    except sqlite3.Error as exc:
        raise StateError(describe_error(path, exc)) from exc
    try:
        if not _up_to_date(conn):
            from sqlite_utils import Database

            db = Database(conn, execute_plugins=False)
            db.enable_wal()
            _check_ours(db, path)
            migrations().apply(db)
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a kill -9 loses no commit
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    except (sqlite3.Error, StateError) as exc:
        conn.close()
        if isinstance(exc, StateError):
            raise
        raise StateError(describe_error(path, exc)) from exc
    return conn


def quiet_reader(path: Path, pair: str) -> Callable[[str], set[QuietKey]]:
    """``StateStore.quiet_keys(pair, …)`` for another process (the scan helper), over a
    read-only connection opened there: an SQLite connection must never cross a fork."""

    def fail(exc: sqlite3.Error) -> StateError:
        return StateError(describe_error(path, exc))

    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True,
                               timeout=BUSY_TIMEOUT, isolation_level=None)  # fmt: skip
    except sqlite3.Error as exc:
        raise fail(exc) from exc

    def quiet_keys(dir: str) -> set[QuietKey]:
        try:
            return set(conn.execute(QUIET_SQL, (pair, dir)).fetchall())
        except sqlite3.Error as exc:
            raise fail(exc) from exc

    return quiet_keys


def _up_to_date(conn: sqlite3.Connection) -> bool:
    """In WAL mode, with exactly the migrations this version knows applied."""
    try:
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
        applied = conn.execute(
            f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ? ORDER BY rowid",
            (MIGRATION_SET,),
        ).fetchall()
    except sqlite3.OperationalError:  # no migrations table: new, or not ours
        return False
    return bool(mode == "wal" and [name for (name,) in applied] == KNOWN)


def _check_ours(db: Database, path: Path) -> None:
    """Refuse a database that is not syncd's, or that a newer syncd has migrated."""
    applied = {m.name for m in migrations().applied(db)}
    unknown = applied - set(KNOWN)
    if unknown:
        raise StateError(
            f"state database {path} was written by a newer syncd "
            f"(unknown schema migration {min(unknown)})"
        )
    others = set(db.table_names()) - {MIGRATIONS_TABLE}
    if not applied and others:
        raise StateError(
            f"{path} is not a syncd state database "
            f"(it holds other tables: {', '.join(sorted(others)[:3])})"
        )


def describe_error(db_path: Path, exc: sqlite3.Error) -> str:
    """One line naming the file and what is wrong with it (a StateError message)."""
    msg = str(exc)
    if "file is not a database" in msg:
        return f"{db_path} is not a syncd state database (file is not a database)"
    if "malformed" in msg:
        return f"state database {db_path} is corrupt ({msg})"
    if "disk is full" in msg:
        return f"state database {db_path}: disk full ({msg})"
    if "locked" in msg or "busy" in msg:
        return f"state database {db_path} is locked by another process ({msg})"
    if "readonly" in msg or "unable to open" in msg:
        return f"cannot write state database {db_path}: {_why_unwritable(db_path)} ({msg})"
    return f"state database {db_path}: {msg}"


def _why_unwritable(db_path: Path) -> str:
    """The OS reason (read-only file system, permission denied, …) sqlite does not give."""
    if db_path.is_dir():
        return "it is a directory"
    try:
        if db_path.exists():
            os.close(os.open(db_path, os.O_RDWR))
        else:
            import tempfile

            fd, probe = tempfile.mkstemp(dir=db_path.parent, prefix=".syncd-probe-")
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        return str(exc.strerror or exc).lower()
    return "not writable"


# -- records <-> rows ---------------------------------------------------------------------

_FILE_COLS = [f.name for f in fields(FileRecord)]  # a row is FileRecord(pair, *row)
# Reads leave out ``pair`` (the caller knows it): each column costs ~0.2 us a row.
FILE_SQL = f"SELECT {', '.join(_FILE_COLS[1:])} FROM files"
FILES_IN_SQL = f"{FILE_SQL} WHERE pair = ? AND dir = ? ORDER BY path"
FOLDER_SQL = "SELECT path, folder_id, state, error FROM folders"
INTENT_SQL = "SELECT pair, kind, path, folder_id, name, size, file_id, old_file_id, id FROM intents"
PUT_FILE_SQL = (
    f"INSERT INTO files (dir, {', '.join(_FILE_COLS)}) VALUES (?{', ?' * len(_FILE_COLS)}) "
    "ON CONFLICT (pair, path) DO UPDATE SET dir = excluded.dir, "
    + ", ".join(f"{c} = excluded.{c}" for c in _FILE_COLS[2:])
)
FILE_FIELDS = frozenset(_FILE_COLS) - {"pair", "path"}
INTENT_FIELDS = frozenset(f.name for f in fields(Intent)) - {"pair", "id"}
_file_values = attrgetter(*_FILE_COLS)
_INODE_AT, _STATE_AT = _FILE_COLS.index("inode"), _FILE_COLS.index("state")
_STATES = {s.value: s for s in FileState}
_INODE_MAX = (1 << 63) - 1  # SQLite integers are signed 64-bit; st_ino is unsigned


def utc_now() -> str:
    """ISO-8601 UTC, to the second: "2025-01-31T12:00:00Z"."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def file_row(rec: FileRecord) -> list[Any]:
    """The ``PUT_FILE_SQL`` parameters for ``rec``."""
    values = list(_file_values(rec))
    values[_INODE_AT] = signed(values[_INODE_AT])
    values[_STATE_AT] = str(values[_STATE_AT])
    return [rec.dir, *values]


def records(pair: str, rows: list[tuple[Any, ...]]) -> list[FileRecord]:
    """``FILE_SQL`` rows as records (starmap: no Python frame per row but ``__init__``)."""
    recs = list(starmap(partial(FileRecord, pair), rows))
    for rec in recs:
        rec.state = _STATES[rec.state]
        if rec.inode is not None and rec.inode < 0:
            rec.inode += 1 << 64
    return recs


def signed(inode: int | None) -> int | None:
    """``st_ino`` as SQLite's signed 64-bit integer (``records`` undoes it)."""
    return inode - (1 << 64) if inode is not None and inode > _INODE_MAX else inode


def subtree(path: str) -> tuple[str, tuple[str, ...]]:
    """SQL condition (after ``pair = ?``) for ``path`` and everything below it; "0" is the
    character after "/", so the range holds exactly the paths that start with "path/"."""
    if not path:
        return "", ()
    return "AND (path = ? OR (path >= ? AND path < ?))", (path, path + "/", path + "0")
