"""Mirror local directories as remote folders, list-before-create, never duplicating.

Real servers allow duplicate folder names and list trashed folders as if they were live,
so a folder is only ever *found* by listing its parent and adopting an existing folder of
that exact name that syncd has not trashed itself; only if none exists is it created.
A crash between ``folder/create`` and the record, or a lost answer to ``folder/create``,
is therefore harmless: the next attempt lists, finds the folder and adopts it.

Listings are cached for one pass (a parent created in this pass is known to be empty),
so mirroring N new sibling folders costs one listing, not N.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from syncd.config import PairConfig
from syncd.errors import ApiError, LostResponse, TransientError
from syncd.model import FolderRecord, Intent, name_of, parent_of
from syncd.names import unstorable_reason
from syncd.state import StateStore

if TYPE_CHECKING:  # for annotations only: no import at start
    from syncd.remote.base import Listing, Remote, RemoteFolder

ROOT_ID = ""  # how the account root is stored in folder records (the API has no id for it)
_CREATE_ATTEMPTS = 4


def api_folder_id(folder_id: str | None) -> str | None:
    """Our stored id -> the id the API takes (None for the account root)."""
    return folder_id or None


def finish_mkdir(state: StateStore, remote: Remote, intent: Intent) -> None:
    """The tail of an interrupted ``RemoteTree.mkdir``: adopt the folder it may have made.

    The folder is recorded as the directory's, whether or not the directory still exists:
    the planner then keeps, trashes or reuses it like any other (list-before-create finds
    it too, but only while the directory exists)."""
    assert intent.id is not None and intent.folder_id is not None and intent.name
    rec = state.folder(intent.pair, intent.path)
    found = None
    if rec is None or rec.state != "active":
        trashed = state.trashed_folder_ids(intent.pair)
        listing = remote.list_folder(api_folder_id(intent.folder_id))
        found = next(
            (f for f in listing.folders if f.name == intent.name and f.folder_id not in trashed),
            None,
        )
    with state.transaction():
        if found is not None:
            state.put_folder(FolderRecord(intent.pair, intent.path, found.folder_id))
        state.remove_intent(intent.id)


def finish_folder_trash(state: StateStore, remote: Remote, intent_id: int, folder_id: str) -> None:
    """The idempotent tail of ``RemoteTree.trash``: folder/delete, then drop the intent."""
    # Already gone: 4.x answers "Failed deleting the folder." for those.
    with contextlib.suppress(ApiError):
        remote.delete_folder(folder_id)
    state.remove_intent(intent_id)


class RemoteTree:
    """Folder ids for one pair's directories; creates what is missing."""

    def __init__(self, pair: PairConfig, state: StateStore, remote: Remote) -> None:
        self.pair = pair
        self.state = state
        self.remote = remote
        self._listings: dict[str, Listing] = {}
        self._trashed: set[str] | None = None
        self._lock = threading.Lock()

    # -- the pair root ---------------------------------------------------------------
    def root_id(self) -> str:
        """The pair root's folder id, resolving (and creating) ``remote_path`` once."""
        with self._lock:
            known = self.state.folder(self.pair.name, "")
            if known is not None and known.folder_id is not None and known.state == "active":
                return known.folder_id
            folder_id = self._resolve_root()
            self.state.put_folder(FolderRecord(self.pair.name, "", folder_id))
            return folder_id

    def _resolve_root(self) -> str:
        if self.pair.remote_folder_id:
            self.remote.folder_info(self.pair.remote_folder_id)  # fails loudly if not ours
            return self.pair.remote_folder_id
        folder_id = ROOT_ID
        for part in [p for p in self.pair.remote_path.split("/") if p]:
            folder_id = self._find_or_create(part, folder_id, is_public=0, password=None)
        return folder_id

    # -- directories -------------------------------------------------------------------
    def folder_id_of(self, path: str) -> str | None:
        """The recorded folder id of a local directory, None if not (yet) mirrored."""
        if path == "":
            return self.root_id()
        rec = self.state.folder(self.pair.name, path)
        if rec is None or rec.state != "active":
            return None
        return rec.folder_id

    def mkdir(self, path: str, existing: FolderRecord | None) -> FolderRecord:
        """Mirror one local directory whose parent is already mirrored; records the result."""
        name = name_of(path)
        if existing is not None and existing.state == "gone" and existing.folder_id:
            rec = FolderRecord(self.pair.name, path, existing.folder_id)  # it came back
            self.state.put_folder(rec)
            return rec
        reason = unstorable_reason(name)
        if reason is not None:
            rec = FolderRecord(self.pair.name, path, None, state="failed", error=reason)
            self.state.put_folder(rec)
            return rec
        parent_id = self.folder_id_of(parent_of(path))
        if parent_id is None:  # an ordering matter: a later pass mirrors the parent first
            reason = f"parent folder {parent_of(path) or '/'} is not mirrored yet"
            rec = FolderRecord(self.pair.name, path, None, state="pending", error=reason)
            self.state.put_folder(rec)
            return rec
        # Written ahead: a crash after folder/create and before the record would leave a
        # folder nobody knows of, an orphan for good if the directory is gone by the next
        # pass; with the intent, that pass adopts it (``finish_mkdir``) and plans from there.
        intent_id = self.state.add_intent(Intent(self.pair.name, "mkdir", path, parent_id, name))
        try:
            folder_id = self._find_or_create(
                name, parent_id, is_public=self.pair.is_public, password=self.pair.folder_password
            )
        except TransientError as exc:
            # The last answer was lost too, so the folder may exist: the intent stays, and
            # the next pass looks for it (``finish_mkdir``) before anything else - soon:
            # "pending", so the files inside wait a short backoff, not a refusal's.
            rec = FolderRecord(self.pair.name, path, None, state="pending", error=str(exc))
            self.state.put_folder(rec)
            return rec
        except ApiError as exc:
            rec = FolderRecord(self.pair.name, path, None, state="failed", error=str(exc))
        else:
            rec = FolderRecord(self.pair.name, path, folder_id)
        with self.state.transaction():
            self.state.put_folder(rec)
            self.state.remove_intent(intent_id)
        return rec

    def trash(self, folder: FolderRecord) -> None:
        """Forget the subtree and note a ``trash_folder`` intent in one commit, then
        folder/delete (recursive, into the site's trash), then drop the intent.

        Recorded first so that a folder gone on the server is never still recorded as
        the home of its files: a crash or a lost answer after the delete would otherwise
        leave records (and, if the directory comes back, new uploads) pointing into the
        trash. The intent makes the next pass send the idempotent delete again."""
        assert folder.folder_id
        intent = Intent(self.pair.name, "trash_folder", folder.path, folder.folder_id)
        with self.state.transaction():
            intent_id = self.state.add_intent(intent)
            self.state.mark_folder_trashed(self.pair.name, folder.path, folder.folder_id)
            self.state.forget_tree(self.pair.name, folder.path)
        if self._trashed is not None:
            self._trashed.add(folder.folder_id)
        finish_folder_trash(self.state, self.remote, intent_id, folder.folder_id)

    # -- listing cache -----------------------------------------------------------------
    def listing(self, folder_id: str, *, fresh: bool = False) -> Listing:
        if fresh or folder_id not in self._listings:
            self._listings[folder_id] = self.remote.list_folder(api_folder_id(folder_id))
        return self._listings[folder_id]

    def forget_listing(self, folder_id: str) -> None:
        self._listings.pop(folder_id, None)

    def _trashed_ids(self) -> set[str]:
        if self._trashed is None:
            self._trashed = self.state.trashed_folder_ids(self.pair.name)
        return self._trashed

    def _find_or_create(
        self, name: str, parent_id: str, *, is_public: int, password: str | None
    ) -> str:
        fresh = False
        for _ in range(_CREATE_ATTEMPTS):
            found = self._find(name, parent_id, fresh=fresh)
            if found is not None:
                return found.folder_id
            import hashlib

            password_md5 = hashlib.md5(password.encode()).hexdigest() if password else None
            try:
                created = self.remote.create_folder(
                    name, api_folder_id(parent_id), is_public=is_public, password_md5=password_md5
                )
            except LostResponse:
                fresh = True  # it may exist now: look before creating again
                continue
            self._remember(parent_id, created)
            return created.folder_id
        # Transient like the lost answers themselves: ``mkdir`` records the directory as
        # failed for this pass, which goes on with the others; the next pass tries again.
        raise TransientError(
            f"folder {name!r}: folder/create answer lost {_CREATE_ATTEMPTS} times in a row"
        )

    def _find(self, name: str, parent_id: str, *, fresh: bool) -> RemoteFolder | None:
        trashed = self._trashed_ids()
        for folder in self.listing(parent_id, fresh=fresh).folders:
            if folder.name == name and folder.folder_id not in trashed:
                return folder
        return None

    def _remember(self, parent_id: str, created: RemoteFolder) -> None:
        from syncd.remote.base import Listing  # loaded by the remote that created it anyway

        cached = self._listings.get(parent_id)
        if cached is not None:
            cached.folders.append(created)
        self._listings[created.folder_id] = Listing(folders=[], files=[])
