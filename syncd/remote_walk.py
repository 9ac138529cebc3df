"""Find and walk remote folders with ``folder/listing`` alone (restore --from-remote, adopt).

The API has no lookup by path: a folder path is resolved from the account root one exact
name at a time, and a tree is walked one listing per folder, depth first, streaming (memory
is bounded by one listing plus the stack of folders still to visit).

Same-name folders. Real servers allow two folders of one name under one parent and list
trashed folders as if they were live (every trashed folder shows in the root listing;
API-observed "Folders"), so a name may match several folders. The rule, the same one
``RemoteTree`` uses when ``sync`` looks for a folder, so that restore and adopt find the
folder ``sync`` writes into:

1. folders a state DB says syncd trashed (``avoid``) are never taken;
2. a folder a state DB records (``prefer``, e.g. a pair root) wins;
3. otherwise the first one in listing order.

The others are returned as duplicates for the caller to report. A path component
``id:N`` (the whole path, e.g. ``--from-remote id:125``) names a folder by id instead, for
the case where the rule picks the wrong one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

from syncd.errors import ApiError, SyncdError
from syncd.model import join
from syncd.remote.base import Remote, RemoteFile, RemoteFolder
from syncd.remote_tree import ROOT_ID, api_folder_id

_BY_ID = re.compile(r"id:(\S+)")


class FolderNotFound(SyncdError):
    """A remote folder path does not exist (exit 1: nothing to restore or adopt)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    folder_id: str  # ROOT_ID ("") for the account root
    notes: list[str] = field(default_factory=list)  # duplicates that were passed over


@dataclass(slots=True)
class WalkedDir:
    """One remote folder as the walk saw it; ``path`` relative to the walk's root."""

    path: str
    folder_id: str
    folders: list[RemoteFolder]  # one per name, chosen by the rule above
    duplicate_folders: list[RemoteFolder]  # same-name folders passed over (not walked)
    files: dict[str, list[RemoteFile]]  # name -> copies, first id first
    cycle: bool = False  # a folder seen before (servers with broken parent links)


def safe_name(name: str) -> bool:
    """A remote name that can be a single local path component (never "..", "/", NUL)."""
    return name not in ("", ".", "..") and "/" not in name and "\0" not in name


def id_order(file_id: str) -> tuple[int, int, str]:
    """Sort key for ids: numeric ids by value (ids are strings), others after them."""
    return (0, int(file_id), "") if file_id.isdigit() else (1, 0, file_id)


def pick(
    candidates: list[RemoteFolder],
    *,
    avoid: Collection[str] = (),
    prefer: Collection[str] = (),
) -> tuple[RemoteFolder | None, list[RemoteFolder]]:
    """(chosen, passed over) among same-name folders, by the module's rule."""
    usable = [f for f in candidates if f.folder_id not in avoid]
    if not usable:
        return None, []
    chosen = next((f for f in usable if f.folder_id in prefer), usable[0])
    return chosen, [f for f in usable if f is not chosen]


def resolve_folder(
    remote: Remote,
    path: str,
    *,
    avoid: Collection[str] = (),
    prefer: Collection[str] = (),
) -> Resolved:
    """The id of the folder at ``path`` (POSIX, from the account root; "" = the root, or
    ``id:N``). Raises FolderNotFound naming the first missing component."""
    path = path.strip().strip("/")
    by_id = _BY_ID.fullmatch(path)
    if by_id:
        try:
            remote.folder_info(by_id.group(1))
        except ApiError as exc:
            raise FolderNotFound(f"remote folder {path}: {exc.server_message}") from exc
        return Resolved(by_id.group(1))
    folder_id, notes, done = ROOT_ID, [], ""
    for part in [p for p in path.split("/") if p]:
        listing = remote.list_folder(api_folder_id(folder_id))
        chosen, others = pick(
            [f for f in listing.folders if f.name == part], avoid=avoid, prefer=prefer
        )
        done = join(done, part)
        if chosen is None:
            raise FolderNotFound(f"remote folder {done!r} not found")
        if others:
            ids = ", ".join(f.folder_id for f in others)
            notes.append(
                f"{len(others) + 1} remote folders are named {done!r}: using id "
                f"{chosen.folder_id}, not {ids} (pass id:N to choose another)"
            )
        folder_id = chosen.folder_id
    return Resolved(folder_id, notes)


def walk(
    remote: Remote,
    root_id: str,
    *,
    avoid: Collection[str] = (),
    descend: Callable[[str], bool] | None = None,
) -> Iterator[WalkedDir]:
    """Every folder under ``root_id`` (itself first, path ""), parents before children.

    After a folder has been yielded (and the caller has looked at it), each chosen
    subfolder is visited if ``descend(child_path)`` is true (default: always), so a caller
    can prune by what it found. Subfolders with unsafe names are not visited; callers see
    them in ``folders`` and report them."""
    stack: list[tuple[str, str]] = [("", root_id)]
    seen: set[str] = set()
    while stack:
        path, folder_id = stack.pop()
        if folder_id in seen:
            yield WalkedDir(path, folder_id, [], [], {}, cycle=True)
            continue
        seen.add(folder_id)
        listing = remote.list_folder(api_folder_id(folder_id))
        by_name: dict[str, list[RemoteFolder]] = {}
        for folder in listing.folders:
            by_name.setdefault(folder.name, []).append(folder)
        chosen: list[RemoteFolder] = []
        duplicates: list[RemoteFolder] = []
        for same in by_name.values():
            one, others = pick(same, avoid=avoid)
            if one is not None:
                chosen.append(one)
                duplicates += others
        files: dict[str, list[RemoteFile]] = {}
        for f in sorted(listing.files, key=lambda f: id_order(f.file_id)):
            files.setdefault(f.name, []).append(f)
        yield WalkedDir(path, folder_id, chosen, duplicates, files)
        children = [(join(path, f.name), f.folder_id) for f in chosen if safe_name(f.name)]
        for child in reversed(children):  # pop() then visits them in listing order
            if descend is None or descend(child[0]):
                stack.append(child)
