"""``UploadApiRemote``: the ``Remote`` contract over the "file upload API v2".

Each method is one API call (two for ``download``) run under the one retry policy of
``syncd.retry``. Read-only and idempotent calls are retried on any transient error;
``create_folder`` and ``upload`` only on errors that prove nothing was stored (connect
errors, 429): any later failure is ``LostResponse``, so the engine lists the folder
before sending again (SPEC §4 "Lost responses").
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import quote

from syncd.config import RemoteConfig
from syncd.errors import IntegrityError, LocalError, LostResponse, RateLimited, RemoteError
from syncd.log import get_logger
from syncd.remote.base import (
    DownloadResult,
    Listing,
    Package,
    ProgressFn,
    Remote,
    RemoteFile,
    RemoteFolder,
    UploadResult,
)
from syncd.remote.uploadapi import wire
from syncd.remote.uploadapi.client import ApiClient
from syncd.retry import ONE_SHOT, OnRetry, RetryPolicy, call_with_retry
from syncd.throttle import Throttle

T = TypeVar("T")
log = get_logger(__name__)
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PATH_SAFE = "/%-._~()!*,:@"  # everything else in a name (&, +, ?, >, non-ASCII) is escaped


@dataclass(frozen=True, slots=True)
class RemoteStats:
    """A snapshot of ``UploadApiRemote.stats``."""

    requests: dict[str, int]  # HTTP requests sent, by endpoint ("download" = the GETs)
    retries: dict[str, int]  # policy retries, by cause (rate_limited, http_502, ReadTimeout…)
    authorizations: int  # tokens issued (1 + re-authorizations)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def retry_cause(exc: BaseException) -> str:
    """A short label for counting retries."""
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, wire.HttpStatusError):
        return f"http_{exc.status}"
    if isinstance(exc, wire.GarbageAnswer):
        return "garbage"
    if exc.__cause__ is not None:  # the transport error: ReadTimeout, ConnectError…
        return type(exc.__cause__).__name__
    return type(exc).__name__


def download_urls(url: str) -> list[str]:
    """URLs to try for a ``download_url``, best first.

    Real servers put the raw file name in the path (non-ASCII, ``>``, ``&``, ``+``, even
    ``?``; API-observed "Download URLs"), so the path is percent-encoded, keeping the
    ``download_token`` query. The second choice drops the name: ``SITE/<short>?token``."""
    head, sep, token = url.rpartition("?download_token=")
    query = f"download_token={token}" if sep else ""
    if not sep:
        head, _, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    netloc, _, path = rest.partition("/")
    safe_path = quote(_LONE_PERCENT.sub("%25", "/" + path), safe=_PATH_SAFE)
    suffix = f"?{query}" if query else ""
    urls = [f"{scheme}://{netloc}{safe_path}{suffix}"]
    segments = [s for s in path.split("/") if s]
    if len(segments) >= 2:
        urls.append(f"{scheme}://{netloc}/{quote(segments[0], safe=_PATH_SAFE)}{suffix}")
    return urls


class UploadApiRemote:
    """One session with a hosting account; thread-safe; see ``syncd.remote.base.Remote``.

    ``bwlimit`` (bytes/s, 0 = none) builds a token bucket for this remote; pass a shared
    ``throttle`` instead when several remotes must share one limit. ``on_retry(endpoint,
    exc)`` is called before each retry wait; ``on_secret(s)`` whenever a new access token
    is issued (for the log redactor; ``secrets()`` lists all of them).
    """

    def __init__(
        self,
        config: RemoteConfig,
        *,
        workers: int = 4,
        policy: RetryPolicy | None = None,
        bwlimit: int = 0,
        throttle: Throttle | None = None,
        on_retry: OnRetry | None = None,
        on_secret: Callable[[str], None] | None = None,
    ) -> None:
        self.policy = policy or ONE_SHOT
        self.client = ApiClient(
            config,
            workers=workers,
            throttle=throttle if throttle is not None else Throttle(bwlimit),
            on_secret=on_secret,
        )
        self._on_retry = on_retry
        self._retries: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._package: Package | None = None

    # -- session --------------------------------------------------------------------------

    def __enter__(self) -> UploadApiRemote:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def stats(self) -> RemoteStats:
        requests, authorizations = self.client.counts()
        with self._lock:
            retries = dict(self._retries)
        return RemoteStats(requests, retries, authorizations)

    def secrets(self) -> list[str]:
        """key1, key2 and every access token issued so far."""
        return self.client.secrets()

    def authorize(self) -> str:
        """Authorize now (normally lazy), e.g. for ``syncd check``; returns the account id."""
        return self._retry("authorize", lambda: self.client.token().account_id)

    def close(self) -> None:
        self.client.close()

    # -- the Remote protocol --------------------------------------------------------------

    def package(self) -> Package:
        if self._package is None:
            self._package = self._read("account/package", wire.parse_package)
        return self._package

    def list_folder(self, folder_id: str | None) -> Listing:
        params = {"parent_folder_id": folder_id} if folder_id is not None else {}
        return self._read("folder/listing", wire.parse_listing, params)

    def create_folder(
        self,
        name: str,
        parent_id: str | None,
        *,
        is_public: int = 0,
        password_md5: str | None = None,
    ) -> RemoteFolder:
        params = {"folder_name": name, "is_public": str(int(is_public))}
        if parent_id is not None:
            params["parent_id"] = parent_id
        if password_md5:
            params["access_password"] = password_md5

        def attempt() -> RemoteFolder:
            body = self.client.call("folder/create", params, idempotent=False)
            return _after_effect("folder/create", lambda: _folder(body))

        return self._retry("folder/create", attempt)

    def folder_info(self, folder_id: str) -> RemoteFolder:
        return self._read("folder/info", _folder, {"folder_id": folder_id})

    def delete_folder(self, folder_id: str) -> None:
        self._read("folder/delete", _nothing, {"folder_id": folder_id})

    def upload(
        self,
        source: Path,
        name: str,
        folder_id: str | None,
        *,
        on_progress: ProgressFn | None = None,
    ) -> UploadResult:
        def take_back(size: int) -> None:  # progress of bytes that did not make an upload
            if on_progress is not None and size:
                on_progress(-size)

        def attempt() -> tuple[wire.UploadAnswer, int, str]:
            sent = self.client.upload(source, name, folder_id, on_progress=on_progress)
            try:
                answer = _after_effect("file/upload", lambda: wire.parse_upload(sent.body))
            except LostResponse:
                take_back(sent.size)
                raise
            return answer, sent.size, sent.md5

        answer, size, md5 = self._retry("file/upload", attempt)
        problem = None
        if answer.md5 is not None and answer.md5 != md5:
            problem = f"server hash {answer.md5} != sent MD5 {md5}"
        elif answer.size != size:
            problem = f"server size {answer.size} != {size} bytes sent"
        if problem is not None:
            take_back(size)
            self._trash_bad_copy(answer.file_id)
            raise IntegrityError(f"file/upload {name!r}: {problem}; copy {answer.file_id} trashed")
        return UploadResult(
            file_id=answer.file_id,
            name=answer.name,
            size=size,
            md5=md5,
            url=answer.url,
            short_url=answer.short_url,
        )

    def file_info(self, file_id: str) -> RemoteFile:
        return self._read("file/info", _file, {"file_id": file_id})

    def rename_file(self, file_id: str, name: str) -> RemoteFile:
        return self._read("file/edit", _file, {"file_id": file_id, "filename": name})

    def move_file(self, file_id: str, folder_id: str) -> RemoteFile:
        params = {"file_id": file_id, "new_parent_folder_id": folder_id}
        return self._read("file/move", _file, params)

    def delete_file(self, file_id: str) -> None:
        self._read("file/delete", _nothing, {"file_id": file_id})

    def download(
        self, file_id: str, dest: BinaryIO, *, on_progress: ProgressFn | None = None
    ) -> DownloadResult:
        url = self._read("file/download", wire.parse_download_url, {"file_id": file_id})
        candidates = download_urls(url)
        rewind = _Rewinder(dest, on_progress)

        def attempt() -> DownloadResult:
            for i, candidate in enumerate(candidates):
                last = i == len(candidates) - 1
                rewind()
                try:
                    status, size, md5 = self.client.fetch(candidate, dest, on_progress=rewind.count)
                except wire.HttpStatusError:
                    if last:
                        raise
                    continue
                if status < 400 or last:
                    return DownloadResult(size=size, md5=md5)
            raise AssertionError("unreachable")  # pragma: no cover

        return self._retry("download", attempt)

    # -- helpers --------------------------------------------------------------------------

    def _retry(self, endpoint: str, fn: Callable[[], T]) -> T:
        return call_with_retry(endpoint, fn, self.policy, self._count_retry)

    def _count_retry(self, endpoint: str, exc: BaseException) -> None:
        with self._lock:
            self._retries[retry_cause(exc)] += 1
        if self._on_retry is not None:
            self._on_retry(endpoint, exc)

    def _read(
        self,
        endpoint: str,
        parse: Callable[[dict[str, Any]], T],
        params: dict[str, str] | None = None,
    ) -> T:
        """An idempotent call: retried on any transient error, garbage answers included."""
        return self._retry(endpoint, lambda: parse(self.client.call(endpoint, params)))

    def _trash_bad_copy(self, file_id: str) -> None:
        try:
            self.delete_file(file_id)
        except RemoteError as exc:
            log.warning("bad copy not trashed", file_id=file_id, error=str(exc))


def _folder(body: dict[str, Any]) -> RemoteFolder:
    return wire.parse_folder(wire.data_object(body, "folder"))


def _file(body: dict[str, Any]) -> RemoteFile:
    return wire.parse_file(wire.data_object(body, "file"))


def _nothing(body: dict[str, Any]) -> None:
    return None


def _after_effect(endpoint: str, parse: Callable[[], T]) -> T:
    """Parse the answer of a call that has taken effect: garbage there means the effect
    happened but its result is unknown, i.e. a lost response, not a retry."""
    try:
        return parse()
    except wire.GarbageAnswer as exc:
        raise LostResponse(f"{endpoint}: {exc}") from None


class _Rewinder:
    """Puts ``dest`` back where it was before a retried download attempt, and takes back
    the progress reported for the abandoned bytes (a negative delta)."""

    def __init__(self, dest: BinaryIO, on_progress: ProgressFn | None) -> None:
        self.dest = dest
        self.on_progress = on_progress
        self.written = 0
        try:
            self.start: int | None = dest.tell() if dest.seekable() else None
        except OSError:
            self.start = None

    def count(self, delta: int) -> None:
        self.written += delta
        if self.on_progress is not None:
            self.on_progress(delta)

    def __call__(self) -> None:
        if self.written == 0:
            return
        if self.start is None:
            raise LocalError("download destination cannot be rewound to retry the download")
        try:
            self.dest.seek(self.start)
            self.dest.truncate()
        except OSError as exc:
            raise LocalError(f"cannot rewind download destination: {exc}") from exc
        if self.on_progress is not None:
            self.on_progress(-self.written)
        self.written = 0


if TYPE_CHECKING:  # mypy proves that UploadApiRemote fulfils the Remote protocol

    def _conforms(remote: UploadApiRemote) -> Remote:
        return remote
