"""The API's wire format: its JSON parsed tolerantly into ``syncd.remote.base`` types,
and the multipart body of an upload.

One function per type. Real servers send ids and sizes as strings or numbers (PHP
version dependent, API-observed D1), ``data`` as an object or a one-element list, ``[]``
for an empty object, ``null`` for SQL NULL, and many extra fields (ignored). Success iff
``_status == "success"``; otherwise the error text is in ``response`` (4.x ``status`` and
5.x ``_status`` styles alike) or in the ``"0"`` key (404 for an unknown action).

A body that is not a JSON object, or lacks a field the caller needs, raises
``GarbageAnswer``: proxies and PHP fatals answer with HTML pages, which are transient.
Its message carries a short excerpt of the body; secrets are scrubbed by the caller's
``scrub`` function before the text is kept anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from syncd.errors import ChangedDuringUpload, LocalError, TransientError
from syncd.remote.base import Listing, Package, ProgressFn, RemoteFile, RemoteFolder
from syncd.throttle import Throttle

Scrub = Callable[[str], str]
EXCERPT_CHARS = 120  # enough to recognise "502 Bad Gateway" or a PHP error, short for one line
MESSAGE_CHARS = 300  # server messages can embed whole HTML pages ("Failed reading response …")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


class GarbageAnswer(TransientError):
    """The answer is not the API's JSON, or lacks a field: a proxy page, a cut body…"""


class HttpStatusError(TransientError):
    """A transient HTTP status (5xx, 408) on a call that is safe to repeat."""

    def __init__(self, message: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after)
        self.status = status


@dataclass(frozen=True, slots=True)
class Envelope:
    ok: bool
    message: str  # the server's human text ("" when none), one line, shortened
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Token:
    access_token: str
    account_id: str


@dataclass(frozen=True, slots=True)
class UploadAnswer:
    file_id: str
    name: str
    size: int
    md5: str | None  # lower-case 32-hex when the server gave one; real 4.x sends false
    url: str | None
    short_url: str | None


def _identity(text: str) -> str:
    return text


def one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    """Collapse whitespace; cut to ``limit`` characters with an ellipsis."""
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def excerpt(raw: bytes, scrub: Scrub = _identity) -> str:
    """A short, printable, secret-free glimpse of a body for an error message."""
    if not raw.strip():
        return "empty body"
    text = raw[: EXCERPT_CHARS * 8].decode("utf-8", errors="replace")
    text = _TAG.sub(" ", text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return repr(one_line(scrub(text), EXCERPT_CHARS))


def parse_envelope(raw: bytes, scrub: Scrub = _identity) -> Envelope:
    """Decode one API answer. Raises GarbageAnswer unless it is a JSON object."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise GarbageAnswer(f"not a JSON answer: {excerpt(raw, scrub)}") from None
    if not isinstance(doc, dict):
        raise GarbageAnswer(f"not a JSON object: {excerpt(raw, scrub)}")
    if doc.get("_status") == "success":
        message = doc.get("response")
        return Envelope(True, one_line(scrub(message)) if isinstance(message, str) else "", doc)
    for key in ("response", "0", "error", "message"):
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return Envelope(False, one_line(scrub(value)), doc)
    status = doc.get("_status", doc.get("status"))
    if status is None:
        raise GarbageAnswer(f"JSON without _status: {excerpt(raw, scrub)}")
    return Envelope(False, f"error without a message (status {one_line(str(status), 40)!r})", doc)


# -- field helpers --------------------------------------------------------------------


def _missing(what: str) -> GarbageAnswer:
    return GarbageAnswer(f"answer lacks a valid {what}")


def data_object(body: dict[str, Any], what: str) -> dict[str, Any]:
    """``data`` as an object: a one-element list is unwrapped, ``[]`` is empty."""
    data = body.get("data")
    if isinstance(data, list):
        if not data:
            return {}
        data = data[0]
    if not isinstance(data, dict):
        raise _missing(f"{what} (data)")
    return data


def _id(value: Any, what: str) -> str:
    if isinstance(value, bool):
        raise _missing(what)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise _missing(what)


def _parent(value: Any) -> str | None:
    """A parent/folder reference; null, "", "0" and 0 all mean the root (4.x writes "0"
    when a file is moved to the root, API-observed 8b)."""
    if value is None or value == "" or value == 0 or value == "0" or isinstance(value, bool):
        return None
    try:
        return _id(value, "folder id")
    except GarbageAnswer:
        return None


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise _missing(what)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _missing(what)


def _opt_int(value: Any) -> int:
    """Package limits: absent, null or unparsable means 0 = not set."""
    try:
        return _int(value, "number")
    except GarbageAnswer:
        return 0


def _name(value: Any, what: str) -> str:
    if isinstance(value, str) and value != "":
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a PHP name like "123" may come back as a number
    raise _missing(what)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# -- one function per type ------------------------------------------------------------


def parse_token(body: dict[str, Any]) -> Token:
    data = data_object(body, "authorize answer")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise _missing("access_token")
    return Token(token, _id(data.get("account_id"), "account_id"))


def parse_package(body: dict[str, Any]) -> Package:
    data = data_object(body, "account/package answer")
    label = data.get("label")
    return Package(
        label=label if isinstance(label, str) else "",
        max_upload_size=_opt_int(data.get("max_upload_size")),
        concurrent_uploads=_opt_int(data.get("concurrent_uploads")),
    )


def parse_folder(obj: Any) -> RemoteFolder:
    if not isinstance(obj, dict):
        raise _missing("folder")
    return RemoteFolder(
        folder_id=_id(obj.get("id"), "folder id"),
        name=_name(obj.get("folderName"), "folderName"),
        parent_id=_parent(obj.get("parentId")),
        url=_opt_str(obj.get("url_folder")),
    )


def parse_file(obj: Any) -> RemoteFile:
    """A file of folder/listing (``status``) or file/info|edit|move (``file_status``)."""
    if not isinstance(obj, dict):
        raise _missing("file")
    status = obj.get("file_status", obj.get("status"))
    return RemoteFile(
        file_id=_id(obj.get("id"), "file id"),
        name=_name(obj.get("filename"), "filename"),
        size=_int(obj.get("fileSize"), "fileSize"),
        folder_id=_parent(obj.get("folderId")),
        status=status if isinstance(status, str) and status else "active",
        url=_opt_str(obj.get("url_file")),
        short_url=_opt_str(obj.get("shortUrl")),
    )


def parse_listing(body: dict[str, Any]) -> Listing:
    data = data_object(body, "folder/listing answer")
    folders = data.get("folders") or []
    files = data.get("files") or []
    if isinstance(folders, dict):  # a PHP array with gaps in its keys encodes as an object
        folders = list(folders.values())
    if isinstance(files, dict):
        files = list(files.values())
    if not isinstance(folders, list) or not isinstance(files, list):
        raise _missing("folder/listing answer (folders/files)")
    return Listing(
        folders=[parse_folder(f) for f in folders],
        files=[parse_file(f) for f in files],
    )


def parse_upload(body: dict[str, Any]) -> UploadAnswer:
    data = data_object(body, "file/upload answer")
    digest = data.get("hash")
    return UploadAnswer(
        file_id=_id(data.get("file_id"), "file_id"),
        name=_name(data.get("name"), "name"),
        size=_int(data.get("size"), "size"),
        md5=digest.lower() if isinstance(digest, str) and _HEX32.fullmatch(digest) else None,
        url=_opt_str(data.get("url")),
        short_url=_opt_str(data.get("short_url")),
    )


def parse_download_url(body: dict[str, Any]) -> str:
    url = data_object(body, "file/download answer").get("download_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _missing("download_url")
    return url


# -- the upload body ------------------------------------------------------------------

UPLOAD_CHUNK = 1024 * 1024  # 1 MiB pieces: few syscalls, memory flat whatever the size


def encode_filename(name: str) -> str:
    """Quote a multipart filename the way browsers and curl >= 7.81 do (API-observed D5)."""
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartFile:
    """The multipart/form-data body of one file/upload, streamed from an open file.

    Iterating yields the envelope and the file in fixed-size pieces; each piece is hashed
    and counted as it is handed to the socket (``md5``, ``sent``). ``length`` is known up
    front for Content-Length; a file that shrinks or grows while it is read raises
    ChangedDuringUpload instead of sending a body of the wrong length.
    """

    def __init__(
        self,
        fields: list[tuple[str, str]],
        filename: str,
        fileobj: BinaryIO,
        path: Path,
        *,
        throttle: Throttle | None = None,
        on_progress: ProgressFn | None = None,
        chunk: int = UPLOAD_CHUNK,
    ) -> None:
        self.path = path
        self._file = fileobj
        self._throttle = throttle
        self._on_progress = on_progress
        self._chunk = min(chunk, throttle.quantum) if throttle and throttle.enabled else chunk
        try:
            self.size = os.fstat(fileobj.fileno()).st_size
        except OSError as exc:
            raise LocalError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        boundary = "syncd-" + secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
            for key, value in fields
        ]
        head.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="upload_file"; '
            f'filename="{encode_filename(filename)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        self._head = "".join(head).encode("utf-8")
        self._tail = f"\r\n--{boundary}--\r\n".encode("ascii")
        self.length = len(self._head) + self.size + len(self._tail)
        self._md5 = hashlib.md5()
        self.sent = 0

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    def _read(self, n: int) -> bytes:
        try:
            return self._file.read(n)
        except OSError as exc:
            raise LocalError(f"{self.path}: read failed: {exc.strerror or exc}") from exc

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        while self.sent < self.size:
            piece = self._read(min(self._chunk, self.size - self.sent))
            if not piece:
                raise ChangedDuringUpload(
                    f"{self.path}: shrank while being sent ({self.sent} of {self.size} bytes)"
                )
            self._md5.update(piece)
            self.sent += len(piece)
            if self._throttle is not None:
                self._throttle.consume(len(piece))
            if self._on_progress is not None:  # before the yield: ``sent`` is what was reported
                self._on_progress(len(piece))
            yield piece
        if self._read(1):
            raise ChangedDuringUpload(
                f"{self.path}: grew while being sent (past {self.size} bytes)"
            )
        yield self._tail
