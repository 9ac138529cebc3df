"""The emulated site's database: users, tokens, folders, files; file bytes on disk.

One lock guards all metadata; file bytes live in content-addressed blobs under
``data_dir/blobs`` (written outside the lock). Metadata is kept in memory with indexes
sized for large trees (listing a folder, the ``(N)`` check and the content-dedupe check
never scan the whole account) and, when persisting, journalled (``journal``) so that
``--data DIR`` survives a restart.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from syncd.emulator import journal, names
from syncd.emulator.index import ActiveFiles
from syncd.emulator.records import (
    TRASH,
    File,
    Folder,
    Record,
    Token,
    User,
    now_str,
    short_code,
)

TOKEN_CHARS = string.ascii_letters + string.digits
DOWNLOAD_TOKEN_TTL = 24 * 3600.0  # real sites store download tokens for 24 hours
MAX_DOWNLOAD_TOKENS = 100_000  # bounds memory in long runs; far more than any test holds


class Store:
    """Thread-safe account data. Methods take and return live records: read them only
    under ``store.lock`` if other threads may be writing."""

    def __init__(
        self,
        data_dir: Path,
        *,
        key1: str,
        key2: str,
        token_ttl: float,
        clock: Callable[[], float] = time.time,
        persist: bool = True,
        reserved_shorts: frozenset[str] = frozenset(),
    ) -> None:
        self.lock = threading.RLock()
        self.token_ttl = token_ttl
        self.clock = clock
        self.data_dir = data_dir
        self.blob_dir = data_dir / "blobs"
        self.tmp_dir = data_dir / "tmp"
        for d in (self.blob_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        for i in range(256):  # shard blobs: file creation slows down in huge directories
            (self.blob_dir / f"{i:02x}").mkdir(exist_ok=True)
        for stale in self.tmp_dir.iterdir():  # partial uploads of a previous run
            stale.unlink(missing_ok=True)
        self.users: dict[int, User] = {}
        self.tokens: dict[str, Token] = {}
        self.folders: dict[int, Folder] = {}
        self.files: dict[int, File] = {}
        self._shorts: dict[str, int] = {}
        self._reserved = reserved_shorts
        self._sub_folders: dict[tuple[int, int | None], set[int]] = {}
        self._active = ActiveFiles()
        self._download_tokens: dict[str, tuple[int, float]] = {}
        self._journal: journal.Journal | None = None
        journal_path = data_dir / "store.jsonl"
        if persist:
            self._restore(journal.load(journal_path))
        self._next_folder = max(self.folders, default=0) + 1
        self._next_file = max(self.files, default=0) + 1
        self.main_user_id = self._ensure_main_user(key1, key2)
        if persist:
            tables: journal.Tables = {
                "user": self.users,
                "token": self.tokens,
                "folder": self.folders,
                "file": self.files,
            }
            self._journal = journal.Journal(journal_path, tables)

    def _restore(self, tables: journal.Tables) -> None:
        self.users = tables["user"]
        self.tokens = tables["token"]
        self.folders = tables["folder"]
        self.files = tables["file"]
        for f in self.files.values():
            self._shorts[f.short] = f.id
            self._active.add(f)
        for d in self.folders.values():
            self._sub_folders.setdefault((d.user_id, d.parent_id), set()).add(d.id)

    def _save(self, kind: str, rec: Record) -> None:
        if self._journal is not None:
            self._journal.save(kind, rec)

    def close(self) -> None:
        with self.lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    # -- users and tokens ----------------------------------------------------------------
    def _ensure_main_user(self, key1: str, key2: str) -> int:
        user = self.users.get(1)
        if user is None:
            user = User(1, "syncuser", key1, key2, "syncuser@example.invalid", now_str())
        user.key1, user.key2 = key1, key2
        self.users[1] = user
        self._save("user", user)
        return 1

    def add_user(self, key1: str, key2: str, username: str = "") -> str:
        """Another account (for ownership tests); returns its account_id."""
        with self.lock:
            uid = max(self.users) + 1
            user = User(uid, username or f"user{uid}", key1, key2, "x@example.invalid", now_str())
            self.users[uid] = user
            self._save("user", user)
            return str(uid)

    def authorize(self, key1: str, key2: str) -> Token | None:
        """A new token for the key pair's owner, after revoking all of the owner's tokens."""
        with self.lock:
            user = next((u for u in self.users.values() if (u.key1, u.key2) == (key1, key2)), None)
            if user is None:
                return None
            for tok in [t for t in self.tokens.values() if t.user_id == user.id]:
                self._drop_token(tok.id)
            token = Token(
                "".join(secrets.choice(TOKEN_CHARS) for _ in range(128)), user.id, self.clock()
            )
            self.tokens[token.id] = token
            self._save("token", token)
            return token

    def validate(self, token: str, account_id: str | None) -> User | None:
        """The token's user if the token is live (and belongs to account_id, if given)."""
        with self.lock:
            now = self.clock()
            for tok in [
                t
                for t in self.tokens.values()
                if t.last_used is not None and t.last_used < now - self.token_ttl
            ]:
                self._drop_token(tok.id)
            found = self.tokens.get(token)
            if found is None or (account_id is not None and str(found.user_id) != account_id):
                return None
            found.last_used = now
            return self.users.get(found.user_id)

    def disable_token(self, token: str) -> None:
        with self.lock:
            if token in self.tokens:
                self._drop_token(token)

    def expire_tokens(self) -> None:
        """Test helper: every token dies, as after an hour of idleness."""
        with self.lock:
            for tok in list(self.tokens):
                self._drop_token(tok)

    def _drop_token(self, token: str) -> None:
        del self.tokens[token]
        if self._journal is not None:
            self._journal.delete("token", token)

    # -- index upkeep --------------------------------------------------------------------
    def _change_file(self, f: File, **changes: Any) -> File:
        self._active.remove(f)
        for k, v in changes.items():
            setattr(f, k, v)
        self._active.add(f)
        self._save("file", f)
        return f

    def _reparent(self, d: Folder, parent_id: int | None) -> None:
        self._sub_folders[(d.user_id, d.parent_id)].discard(d.id)
        d.parent_id = parent_id
        self._sub_folders.setdefault((d.user_id, parent_id), set()).add(d.id)

    # -- folders -------------------------------------------------------------------------
    def create_folder(
        self,
        user_id: int,
        name: str,
        parent_id: int | None,
        is_public: int,
        access_password: str | None,
    ) -> Folder:
        with self.lock:
            fid = self._next_folder
            self._next_folder += 1
            folder = Folder(
                fid, user_id, parent_id, names.to_db(name), is_public, access_password, now_str()
            )
            self.folders[fid] = folder
            self._sub_folders.setdefault((user_id, parent_id), set()).add(fid)
            self._save("folder", folder)
            return folder

    def folder(self, user_id: int, folder_id: int) -> Folder | None:
        """An owned folder, whatever its status (real sites never check it)."""
        with self.lock:
            found = self.folders.get(folder_id)
            return found if found is not None and found.user_id == user_id else None

    def sub_folders(self, user_id: int, parent_id: int | None) -> list[Folder]:
        with self.lock:
            ids = self._sub_folders.get((user_id, parent_id), ())
            return sorted((self.folders[i] for i in ids), key=lambda d: (names.fold(d.name), d.id))

    def active_files(self, user_id: int, folder_id: int | None) -> list[File]:
        with self.lock:
            ids = self._active.ids(user_id, folder_id)
            return sorted((self.files[i] for i in ids), key=lambda f: (names.fold(f.name), f.id))

    def folder_counts(self, folder: Folder) -> tuple[int, int]:
        """(child_folder_count of any status, file_count of active files)."""
        with self.lock:
            return (
                len(self._sub_folders.get((folder.user_id, folder.id), ())),
                len(self._active.ids(folder.user_id, folder.id)),
            )

    def update_folder(self, folder: Folder, **changes: Any) -> Folder:
        with self.lock:
            if "parent_id" in changes:
                self._reparent(folder, changes.pop("parent_id"))
            for k, v in changes.items():
                setattr(folder, k, v)
            self._save("folder", folder)
            return folder

    def delete_folder(self, folder: Folder) -> None:
        """Recursive soft delete; the top folder is re-parented to the root."""
        with self.lock:
            stamp = now_str()
            self._reparent(folder, None)
            for d in self._subtree(folder):
                d.status, d.date_updated = TRASH, stamp
                self._save("folder", d)
                for fid in list(self._active.ids(d.user_id, d.id)):
                    self._change_file(self.files[fid], status=TRASH)

    def _subtree(self, top: Folder) -> Iterator[Folder]:
        seen: set[int] = set()
        todo = [top]
        while todo:
            d = todo.pop()
            if d.id in seen:
                continue  # folder/move makes cycles possible
            seen.add(d.id)
            yield d
            todo.extend(self.folders[i] for i in self._sub_folders.get((d.user_id, d.id), ()))

    def in_cycle(self, folder: Folder) -> bool:
        """Whether the folder's parent chain loops (folder/move has no cycle check)."""
        with self.lock:
            seen: set[int] = set()
            cur: Folder | None = folder
            while cur is not None and cur.parent_id is not None:
                if cur.id in seen:
                    return True
                seen.add(cur.id)
                cur = self.folders.get(cur.parent_id)
            return False

    # -- files ---------------------------------------------------------------------------
    def content_known(self, md5: str, size: int) -> bool:
        """Whether an active file of any user already holds these bytes."""
        with self.lock:
            return self._active.content_known(md5, size)

    def name_taken(self, user_id: int, folder_id: int | None, name: str) -> bool:
        with self.lock:
            return self._active.name_taken(user_id, folder_id, names.to_db(name))

    def add_file(
        self, user_id: int, folder_id: int | None, name: str, kw: str, size: int, md5: str, ip: str
    ) -> File:
        with self.lock:
            fid = self._next_file
            short = short_code(fid + 10)
            while short in self._reserved or short in self._shorts:
                fid += 1
                short = short_code(fid + 10)
            self._next_file = fid + 1
            stored = names.to_db(name)
            f = File(
                fid,
                user_id,
                folder_id,
                stored,
                kw,
                names.extension(stored),
                "application/octet-stream",
                size,
                md5,
                short,
                secrets.token_hex(16),
                secrets.token_hex(32),
                ip,
                now_str(),
            )
            self.files[fid] = f
            self._shorts[short] = fid
            self._active.add(f)
            self._save("file", f)
            if folder_id and folder_id in self.folders:  # totalSize is refreshed on upload only
                d = self.folders[folder_id]
                d.total_size = self._active.total_bytes(user_id, folder_id)
                self._save("folder", d)
            return f

    def file(self, user_id: int, file_id: int) -> File | None:
        """An owned file, whatever its status."""
        with self.lock:
            found = self.files.get(file_id)
            return found if found is not None and found.user_id == user_id else None

    def update_file(self, f: File, **changes: Any) -> File:
        with self.lock:
            return self._change_file(f, **changes)

    def file_by_short(self, short: str) -> File | None:
        with self.lock:
            fid = self._shorts.get(short)
            return None if fid is None else self.files[fid]

    def record_download(self, f: File) -> None:
        with self.lock:
            f.downloads += 1
            f.last_accessed = now_str()
            self._save("file", f)

    # -- blobs and download tokens -------------------------------------------------------
    def blob_path(self, f: File | tuple[str, int]) -> Path:
        md5, size = (f.md5, f.size) if isinstance(f, File) else f
        return self.blob_dir / md5[:2] / f"{md5}_{size}"

    def new_download_token(self, f: File) -> str:
        with self.lock:
            token = secrets.token_hex(32)
            self._download_tokens[token] = (f.id, self.clock() + DOWNLOAD_TOKEN_TTL)
            if len(self._download_tokens) > MAX_DOWNLOAD_TOKENS:  # forget the oldest
                del self._download_tokens[next(iter(self._download_tokens))]
            return token

    def download_token_ok(self, token: str, f: File) -> bool:
        with self.lock:
            entry = self._download_tokens.get(token)
            return entry is not None and entry[0] == f.id and entry[1] > self.clock()
