"""The state DB: the only module that touches SQLite (sqlite-utils over one real file).

Crash safety (SPEC §4): WAL, ``synchronous=NORMAL`` (a ``kill -9`` never loses a commit).
Every public write method commits before it returns, so the engine records each confirmed
remote effect before its next request; ``transaction()`` makes several writes one commit.
Threads: one connection behind one ``RLock``; upload workers call the store directly.
``transaction()`` holds the lock for its block (keep requests out of it); ``iter_files``
reads keyset-paginated batches, releasing the lock in between.
Errors: corrupt / read-only / full / locked files become a one-line ``StateError`` naming
the file; programming errors (bad SQL, constraint violations) propagate: they are bugs.
Opening, schema and row mapping: ``migrations.py``; the one-process lock: ``lock.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from syncd import migrations as schema
from syncd.errors import StateError
from syncd.lock import state_files
from syncd.model import DirScan, FileRecord, FileState, FolderRecord, Intent, parent_of
from syncd.paths import normalize_rel

BATCH = 1000  # rows per iter_files query: bounded memory, few round trips
_STATE_NAMES = ("synced", "pending", "failed", "skipped")
_PAIR_KEYS = ("name", "local", "remote_root_id", "last_pass", "last_error", "pass_started")
_COUNT_IN_SQL = "SELECT count(*) FROM files WHERE pair = ? AND dir = ?"
_FOLDER_COUNT_SQL = "SELECT count(*) FROM folders WHERE pair = ?"
utc_now = schema.utc_now
__all__ = ["BATCH", "StateStore", "state_files", "utc_now"]


class StateStore:
    """Everything syncd remembers between runs, per pair: files, folders, intents, meta."""

    def __init__(self, db_path: Path, *, busy_timeout: float = schema.BUSY_TIMEOUT) -> None:
        """Open (creating it and its directory if needed) and migrate; StateError if unusable."""
        self.path = Path(db_path)
        self._lock = threading.RLock()
        self._conn = schema.open_database(self.path, busy_timeout)
        self._savepoints = itertools.count()

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # a bug, not a state of the file
        except sqlite3.Error as exc:
            raise StateError(schema.describe_error(self.path, exc)) from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: all are committed at the end of the block, or none if it raises."""
        with self._lock, self._guard(), self._atomic():  # nested: a SAVEPOINT
            yield

    @contextlib.contextmanager
    def _atomic(self) -> Iterator[None]:
        """BEGIN … COMMIT (ROLLBACK on error); nested, a SAVEPOINT. The same as
        sqlite_utils' ``Database.atomic``, without importing sqlite_utils at start."""
        conn = self._conn
        if conn.in_transaction:
            name = f"syncd_{next(self._savepoints)}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                if conn.in_transaction:  # an error may have ended the transaction
                    conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            conn.execute(f"RELEASE SAVEPOINT {name}")
            return
        conn.execute("BEGIN")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _exec(self, sql: str, *params: Any) -> sqlite3.Cursor:
        # The connection is in autocommit mode: outside transaction() one statement is
        # its own transaction, committed when it returns (one call, not BEGIN/x/COMMIT:
        # each call lets go of the GIL, which upload workers then queue to take back).
        with self._lock, self._guard():
            return self._conn.execute(sql, params)

    def _rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self._lock, self._guard():
            return self._conn.execute(sql, params).fetchall()

    def _one(self, sql: str, *params: Any) -> Any:
        rows = self._rows(sql, *params)
        return rows[0][0] if rows else None

    # -- pairs -----------------------------------------------------------------------

    def pair_info(self, pair: str) -> dict[str, Any] | None:
        """name, local, remote_root_id, last_pass, last_error, pass_started - or None."""
        rows = self._rows(f"SELECT {', '.join(_PAIR_KEYS)} FROM pairs WHERE name = ?", pair)
        return dict(zip(_PAIR_KEYS, rows[0], strict=True)) if rows else None

    def pair_names(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT name FROM pairs ORDER BY name")]

    def set_pair_root(self, pair: str, local: str, folder_id: str) -> None:
        self._exec(
            "INSERT INTO pairs (name, local, remote_root_id) VALUES (?, ?, ?) ON CONFLICT "
            "(name) DO UPDATE SET local = excluded.local, remote_root_id = excluded.remote_root_id",
            pair, local, folder_id,
        )  # fmt: skip

    def remote_root(self, pair: str) -> str | None:
        return cast(str | None, self._one("SELECT remote_root_id FROM pairs WHERE name = ?", pair))

    def begin_pass(self, pair: str) -> None:
        """Note that a pass started (still set after a crash: the pass did not finish)."""
        self._exec(
            "INSERT INTO pairs (name, pass_started) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET pass_started = excluded.pass_started",
            pair, utc_now(),
        )  # fmt: skip

    def end_pass(self, pair: str, *, ok: bool, error: str | None) -> None:
        """ok: ``last_pass`` = now. Either way ``last_error`` = ``error`` (None clears it)."""
        with self.transaction():
            self._exec("INSERT OR IGNORE INTO pairs (name) VALUES (?)", pair)
            self._exec(
                "UPDATE pairs SET last_pass = CASE WHEN ? THEN ? ELSE last_pass END, "
                "last_error = ?, pass_started = NULL WHERE name = ?",
                ok, utc_now(), error, pair,
            )  # fmt: skip

    def last_error(self, pair: str) -> str | None:
        return cast(str | None, self._one("SELECT last_error FROM pairs WHERE name = ?", pair))

    # -- folders ---------------------------------------------------------------------

    def folder(self, pair: str, path: str) -> FolderRecord | None:
        rows = self._rows(f"{schema.FOLDER_SQL} WHERE pair = ? AND path = ?", pair, path)
        return FolderRecord(pair, *rows[0]) if rows else None

    def folders_in(self, pair: str, parent: str) -> list[FolderRecord]:
        """Folder records whose parent is ``parent`` ("" = the pair root), by name."""
        sql = f"{schema.FOLDER_SQL} WHERE pair = ? AND parent = ? ORDER BY path"
        return [FolderRecord(pair, *r) for r in self._rows(sql, pair, parent)]

    def folder_count(self, pair: str) -> int:
        """How many folder records ``pair`` has (cheap: a rough size of its tree)."""
        with self._lock, self._guard():
            return int(self._conn.execute(_FOLDER_COUNT_SQL, (pair,)).fetchone()[0])

    def put_folder(self, rec: FolderRecord) -> None:
        self._exec(
            "INSERT INTO folders (pair, path, parent, folder_id, state, error) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pair, path) DO UPDATE SET "
            "folder_id = excluded.folder_id, state = excluded.state, error = excluded.error",
            rec.pair, rec.path, parent_of(rec.path) if rec.path else None,
            rec.folder_id, rec.state, rec.error,
        )  # fmt: skip

    def iter_folders(self, pair: str, *, prefix: str | None = None) -> Iterator[FolderRecord]:
        """Folder records of ``pair`` by path (``prefix`` as in ``iter_files``), streamed."""
        for rows in self._paginate(schema.FOLDER_SQL, pair, [], [], prefix):
            yield from (FolderRecord(pair, *r) for r in rows)

    def forget_tree(self, pair: str, path: str) -> None:
        """Drop the folder record ``path`` and every folder and file record below it."""
        cond, params = schema.subtree(path)
        with self.transaction():
            self._exec(f"DELETE FROM folders WHERE pair = ? {cond}", pair, *params)
            self._exec(f"DELETE FROM files WHERE pair = ? {cond}", pair, *params)

    def mark_tree_gone(self, pair: str, path: str, when: str) -> None:
        """``on_delete = keep`` for a vanished directory: the folder records at and below
        ``path`` become "gone", the file records below it deleted at ``when`` (an earlier
        ``deleted_at`` is kept)."""
        cond, params = schema.subtree(path)
        with self.transaction():
            self._exec(f"UPDATE folders SET state = 'gone' WHERE pair = ? {cond}", pair, *params)
            self._exec(
                f"UPDATE files SET deleted_at = coalesce(deleted_at, ?) WHERE pair = ? {cond}",
                when, pair, *params,
            )  # fmt: skip

    def count_under(self, pair: str, path: str) -> int:
        """Live records below ``path`` - the ones ``counts`` calls synced, pending or failed
        (not deleted, not skipped): what trashing that folder would take away."""
        cond, params = schema.subtree(path)
        sql = f"SELECT count(*) FROM files WHERE pair = ? {cond} AND deleted_at IS NULL"
        return int(self._one(f"{sql} AND state != 'skipped'", pair, *params))

    def mark_folder_trashed(self, pair: str, path: str, folder_id: str) -> None:
        """Remember that syncd trashed ``folder_id``: listings still show it, never adopt it."""
        self._exec(
            "INSERT OR REPLACE INTO trashed_folders (folder_id, pair, path, trashed_at) "
            "VALUES (?, ?, ?, ?)",
            folder_id, pair, path, utc_now(),
        )  # fmt: skip

    def trashed_folder_ids(self, pair: str) -> set[str]:
        sql = "SELECT folder_id FROM trashed_folders WHERE pair = ?"
        return {r[0] for r in self._rows(sql, pair)}

    # -- files -----------------------------------------------------------------------

    def files_in(self, pair: str, dir: str) -> list[FileRecord]:
        """The file records directly inside ``dir``, by name (the planner's hot path)."""
        return schema.records(pair, self._rows(schema.FILES_IN_SQL, pair, dir))

    def quiet_keys(self, pair: str, dir: str) -> set[schema.QuietKey]:
        """``(path, size, mtime_ns, inode)`` of each file in ``dir`` that is synced,
        present and uploaded: a local file with exactly that stat needs nothing (the
        scanner's ``known``; inode signed as stored). One index range, no table read."""
        with self._lock, self._guard():
            return set(self._conn.execute(schema.QUIET_SQL, (pair, dir)).fetchall())

    def records_left(self, pair: str, scan: DirScan) -> list[FileRecord]:
        """``files_in(pair, scan.path)`` less the records of ``scan.unchanged``: with
        ``scan`` it plans exactly as the whole directory does, and in a pass with nothing
        to do no record is built (one count per directory)."""
        if not scan.unchanged:
            return self.files_in(pair, scan.path)
        with self._lock, self._guard():
            (count,) = self._conn.execute(_COUNT_IN_SQL, (pair, scan.path)).fetchone()
        if count == len(scan.unchanged):
            return []
        same = set(scan.unchanged)
        return [r for r in self.files_in(pair, scan.path) if r.path not in same]

    def file(self, pair: str, path: str) -> FileRecord | None:
        rows = self._rows(f"{schema.FILE_SQL} WHERE pair = ? AND path = ?", pair, path)
        return schema.records(pair, rows)[0] if rows else None

    def put_file(self, rec: FileRecord) -> None:
        """Insert or replace the record of ``(rec.pair, rec.path)``."""
        self._exec(schema.PUT_FILE_SQL, *schema.file_row(rec))

    def update_file(self, pair: str, path: str, **fields: Any) -> None:
        """Set some columns of one record, e.g. ``state="failed", error="…"``."""
        bad = set(fields) - schema.FILE_FIELDS
        if bad:
            raise TypeError(f"update_file: unknown field(s) {sorted(bad)}")
        if "inode" in fields:
            fields["inode"] = schema.signed(fields["inode"])
        if fields.get("state") is not None:
            fields["state"] = str(fields["state"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        sql = f"UPDATE files SET {sets} WHERE pair = ? AND path = ?"
        self._exec(sql, *fields.values(), pair, path)

    def update_stat(self, pair: str, path: str, size: int, mtime_ns: int, inode: int) -> None:
        """The file changed on disk but not in content (same MD5): new stat, nothing else."""
        self.update_file(pair, path, size=size, mtime_ns=mtime_ns, inode=inode)

    def delete_file_record(self, pair: str, path: str) -> None:
        self._exec("DELETE FROM files WHERE pair = ? AND path = ?", pair, path)

    def iter_files(
        self,
        pair: str | None = None,
        *,
        state: str | None = None,
        prefix: str | None = None,
        include_deleted: bool = True,
    ) -> Iterator[FileRecord]:
        """File records by (pair, path), streamed in batches of ``BATCH``.

        ``prefix`` is a relative file or directory path: "a" yields "a" and "a/…" but not
        "ab". Writes made while iterating are seen or not depending on where they fall.
        """
        conds: list[str] = []
        params: list[Any] = []
        if state is not None:
            conds.append("state = ?")
            params.append(str(state))
        if not include_deleted:
            conds.append("deleted_at IS NULL")
        for p in [pair] if pair is not None else self._file_pairs():
            for rows in self._paginate(schema.FILE_SQL, p, conds, params, prefix):
                yield from schema.records(p, rows)

    def _file_pairs(self) -> Iterator[str]:
        # min(pair) > last is an index seek per pair; DISTINCT would scan every row.
        last: str | None = self._one("SELECT min(pair) FROM files")
        while last is not None:
            yield last
            last = self._one("SELECT min(pair) FROM files WHERE pair > ?", last)

    def _paginate(
        self, select: str, pair: str, conds: list[str], params: list[Any], prefix: str | None
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Batches of rows of one pair ordered by path: one short query each (keyset
        paging), the lock released in between so that workers never wait for a listing."""
        conds = ["pair = ?", *conds]
        params = [pair, *params]
        start = normalize_rel(prefix) if prefix else ""
        if start:
            # Range [prefix, prefix + "0") holds prefix, prefix/...; "0" follows "/" in
            # byte order. The OR filters out siblings such as "a.txt" inside that range.
            conds += ["path < ?", "(path = ? OR path >= ?)"]
            params += [start + "0", start, start + "/"]
        where = " AND ".join(conds)
        sql = f"{select} WHERE {where} AND path >= ? ORDER BY path LIMIT {BATCH}"
        while True:
            rows = self._rows(sql, *params, start)
            yield rows
            if len(rows) < BATCH:
                return
            sql = f"{select} WHERE {where} AND path > ? ORDER BY path LIMIT {BATCH}"
            start = rows[-1][0]

    def counts(self, pair: str) -> dict[str, int]:
        """synced / pending / failed / skipped records (deleted ones left out), bytes_synced."""
        out = dict.fromkeys(_STATE_NAMES, 0)
        out["bytes_synced"] = 0
        for state, n, size in self._rows(
            "SELECT state, count(*), total(size) FROM files "
            "WHERE pair = ? AND deleted_at IS NULL GROUP BY state",
            pair,
        ):
            out[state] = n
            if state == FileState.SYNCED:
                out["bytes_synced"] = int(size)
        return out

    def referenced_file_ids(self, pair: str, folder_id: str) -> set[str]:
        """file_ids syncd accounts for in remote folder ``folder_id``: recorded files plus
        copies named by pending intents (an old copy still to be trashed is not an orphan).
        """
        with self._lock:
            recorded = self._rows(
                "SELECT file_id FROM files WHERE folder_id = ? AND pair = ? "
                "AND file_id IS NOT NULL",
                folder_id, pair,
            )  # fmt: skip
            in_flight = self._rows(
                "SELECT file_id, old_file_id FROM intents WHERE pair = ? AND folder_id = ?",
                pair, folder_id,
            )  # fmt: skip
        return {i for row in recorded + in_flight for i in row if i}

    # -- intents ---------------------------------------------------------------------

    def add_intent(self, it: Intent) -> int:
        """Record ``it`` before its request is sent; sets and returns ``it.id``."""
        cur = self._exec(
            "INSERT INTO intents (pair, kind, path, folder_id, name, size, file_id, "
            "old_file_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            it.pair, it.kind, it.path, it.folder_id, it.name, it.size, it.file_id,
            it.old_file_id, utc_now(),
        )  # fmt: skip
        assert cur.lastrowid is not None
        it.id = cur.lastrowid
        return it.id

    def update_intent(self, intent_id: int, **fields: Any) -> None:
        """Change fields of a recorded intent (e.g. ``kind="replace", file_id=…``)."""
        bad = set(fields) - schema.INTENT_FIELDS
        if bad:
            raise TypeError(f"update_intent: unknown field(s) {sorted(bad)}")
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self._exec(f"UPDATE intents SET {sets} WHERE id = ?", *fields.values(), intent_id)

    def remove_intent(self, intent_id: int) -> None:
        self._exec("DELETE FROM intents WHERE id = ?", intent_id)

    def intents(self, pair: str) -> list[Intent]:
        """The intents of ``pair`` in the order they were added."""
        return [
            Intent(*r) for r in self._rows(f"{schema.INTENT_SQL} WHERE pair = ? ORDER BY id", pair)
        ]

    # -- daemon / status -------------------------------------------------------------

    def set_meta(self, key: str, value: str | None) -> None:
        """Set ``key`` (None deletes it)."""
        if value is None:
            self._exec("DELETE FROM meta WHERE key = ?", key)
        else:
            self._exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, value)

    def get_meta(self, key: str) -> str | None:
        return cast(str | None, self._one("SELECT value FROM meta WHERE key = ?", key))
