"""The storage contract the engine talks to; each docstring is the specification.

A Remote is one authorized session with a hosting account. Ids are strings (servers send
ids as strings or numbers; implementations normalise). ``None`` as a folder id means the
account root. Implementations authorize lazily (a pass with nothing to do sends no
request), share one token among threads, re-authorize once on a rejected token, retry
transient errors with the one policy in ``syncd.retry`` and raise only ``syncd.errors``
types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

ProgressFn = Callable[[int], None]
"""Called with the number of bytes just sent or received (a delta, not a total)."""


@dataclass(frozen=True, slots=True)
class Package:
    """The account's limits; 0 means "not set / unlimited" as on real servers."""

    label: str
    max_upload_size: int
    concurrent_uploads: int


@dataclass(frozen=True, slots=True)
class RemoteFolder:
    folder_id: str
    name: str
    parent_id: str | None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteFile:
    file_id: str
    name: str
    size: int
    folder_id: str | None
    status: str = "active"  # "active" | "trash"
    url: str | None = None
    short_url: str | None = None


@dataclass(frozen=True, slots=True)
class Listing:
    folders: list[RemoteFolder]
    files: list[RemoteFile]  # active files only, as real servers list them


@dataclass(frozen=True, slots=True)
class UploadResult:
    file_id: str
    name: str  # the name the server stored, which may differ from the one sent
    size: int  # bytes actually sent
    md5: str  # MD5 hex of the bytes actually sent, computed in the same read pass
    url: str | None
    short_url: str | None


@dataclass(frozen=True, slots=True)
class DownloadResult:
    size: int
    md5: str


class Remote(Protocol):
    def package(self) -> Package:
        """The account package (account/package). Cached after the first call."""

    def list_folder(self, folder_id: str | None) -> Listing:
        """Direct children of a folder (None = root). Trashed folders may still appear
        (real servers do not filter them); trashed files do not."""

    def create_folder(
        self,
        name: str,
        parent_id: str | None,
        *,
        is_public: int = 0,
        password_md5: str | None = None,
    ) -> RemoteFolder:
        """Create a folder. Never de-duplicates: callers list first and adopt.
        Raises LostResponse when the folder may have been created without an answer."""

    def folder_info(self, folder_id: str) -> RemoteFolder:
        """Raises ApiError when the folder does not exist or is not the user's."""

    def delete_folder(self, folder_id: str) -> None:
        """Recursive soft delete into the site's trash."""

    def upload(
        self,
        source: Path,
        name: str,
        folder_id: str | None,
        *,
        on_progress: ProgressFn | None = None,
    ) -> UploadResult:
        """Stream one file as multipart, hashing the bytes in the same read pass.

        Verifies the answer: a 32-hex ``hash`` must equal the MD5 sent, otherwise the
        returned ``size`` must equal the bytes sent; on a mismatch the bad copy is
        trashed and IntegrityError raised. Retries only failures that cannot have
        stored anything (connect errors, 429); any later failure raises LostResponse
        so the caller can look before re-sending. OSError reading ``source`` becomes
        LocalError."""

    def file_info(self, file_id: str) -> RemoteFile:
        """Answers for trashed files too (status "trash"). ApiError when unknown."""

    def rename_file(self, file_id: str, name: str) -> RemoteFile:
        """file/edit filename=. No uniqueness check on real servers."""

    def move_file(self, file_id: str, folder_id: str) -> RemoteFile:
        """file/move into a folder (never the root: real 4.x servers lose such files)."""

    def delete_file(self, file_id: str) -> None:
        """Soft delete into the site's trash; repeating it succeeds."""

    def download(
        self, file_id: str, dest: BinaryIO, *, on_progress: ProgressFn | None = None
    ) -> DownloadResult:
        """file/download then GET its download_url, streaming into ``dest`` while
        hashing. The status code proves nothing (servers answer errors with 200 HTML):
        callers judge by size and MD5."""

    def close(self) -> None:
        """Disable the token if one was issued (disable_access_token) and close sockets."""
