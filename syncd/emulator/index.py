"""Indexes over a store's active files, so that no request scans the whole account.

Listing a folder, the ``(N)`` name check and the "content already stored" check are each a
dictionary lookup, which keeps the emulator fast with hundreds of thousands of files.
"""

from __future__ import annotations

from syncd.emulator import names
from syncd.emulator.records import ACTIVE, File

Key = tuple[int, int | None]  # (user id, folder id; None = root, 0 = the lost '' folder)


class ActiveFiles:
    """Active files by folder, by folded name per folder, and by content (any user)."""

    def __init__(self) -> None:
        self._by_folder: dict[Key, set[int]] = {}
        self._names: dict[Key, dict[str, int]] = {}
        self._content: dict[tuple[str, int], int] = {}
        self._bytes: dict[Key, int] = {}

    def add(self, f: File) -> None:
        if f.status != ACTIVE:
            return
        key = (f.user_id, f.folder_id)
        self._by_folder.setdefault(key, set()).add(f.id)
        self._bytes[key] = self._bytes.get(key, 0) + f.size
        folded = self._names.setdefault(key, {})
        name = names.fold(f.name)
        folded[name] = folded.get(name, 0) + 1
        content = (f.md5, f.size)
        self._content[content] = self._content.get(content, 0) + 1

    def remove(self, f: File) -> None:
        if f.status != ACTIVE:
            return
        key = (f.user_id, f.folder_id)
        self._by_folder[key].discard(f.id)
        self._bytes[key] -= f.size
        folded = self._names[key]
        name = names.fold(f.name)
        folded[name] -= 1
        if not folded[name]:
            del folded[name]
        content = (f.md5, f.size)
        self._content[content] -= 1
        if not self._content[content]:
            del self._content[content]

    def ids(self, user_id: int, folder_id: int | None) -> set[int]:
        return self._by_folder.get((user_id, folder_id), set())

    def total_bytes(self, user_id: int, folder_id: int | None) -> int:
        return self._bytes.get((user_id, folder_id), 0)

    def name_taken(self, user_id: int, folder_id: int | None, name: str) -> bool:
        """Whether an active file there has this name, as MySQL's utf8_general_ci compares."""
        return names.fold(name) in self._names.get((user_id, folder_id), {})

    def content_known(self, md5: str, size: int) -> bool:
        return (md5, size) in self._content
