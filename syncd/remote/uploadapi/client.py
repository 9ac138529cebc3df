"""HTTP for the "file upload API v2": the only place HTTP and API errors are mapped.

Errors are classified by what the caller does next (``syncd.errors``):

    HTTP 200 + status "error"         ApiError(endpoint, message): permanent for the item
      "Could not validate access_token…"  TokenRejected: re-authorize once, retry once
      on authorize (keys, level)      AuthRefused
      on a non-idempotent call, "Failed reading response from:" / "Error uploading file…"
                                      LostResponse: it may have been stored (API-observed D9)
    HTTP 401                          TokenRejected (AuthRefused on authorize)
    HTTP 429                          RateLimited(retry_after from Retry-After)
    HTTP 5xx / 408, garbage body      TransientError (LostResponse on a non-idempotent call)
    HTTP 404 / 3xx                    WrongPath: the api_url is wrong
    other HTTP 4xx (413, 403, …)      ApiError: retrying the same request cannot help
    connect error / connect timeout   TransientError: nothing reached the server
    reset, timeout, protocol error    TransientError (LostResponse on a non-idempotent call)

Every parameter is a POST form field (never JSON, never a query string or header), so
no secret is ever part of a URL that an httpx exception could print. One access token
is shared by all threads; it is issued lazily and refreshed under a lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.cookiejar
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, TypeVar
from urllib.parse import urlsplit

import httpx

from syncd import __version__
from syncd.config import RemoteConfig
from syncd.errors import (
    ApiError,
    AuthRefused,
    LocalError,
    LostResponse,
    RateLimited,
    RemoteError,
    TokenRejected,
    TransientError,
    WrongPath,
)
from syncd.log import get_logger
from syncd.remote.base import ProgressFn
from syncd.remote.uploadapi import wire
from syncd.retry import retry_after_seconds
from syncd.throttle import Throttle

T = TypeVar("T")
_TOKEN_ROUNDS = 4  # bound on picking up other threads' fresh tokens for one request

log = get_logger(__name__)

MAX_ANSWER_BYTES = 128 * 1024 * 1024  # a listing of ~300k files; beyond that it is not JSON
DOWNLOAD_CHUNK = 1024 * 1024
TOKEN_REJECTED = "Could not validate access_token"
# Upload errors raised after the inner uploader may already have stored the file (D9).
LOST_PREFIXES = ("Failed reading response from", "Error uploading file")


@dataclass(frozen=True, slots=True)
class SentUpload:
    body: dict[str, Any]  # the success envelope
    size: int  # bytes of the file actually sent
    md5: str  # MD5 hex of those bytes, computed as they were sent


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _raise_transient(message: str, response: httpx.Response, idempotent: bool) -> NoReturn:
    """429, 5xx, 408. A non-idempotent request may have been acted on before the
    proxy or server failed: LostResponse, except 429, which refuses before acting."""
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    status = response.status_code
    if status == 429:
        raise RateLimited(message, retry_after)
    if idempotent:
        raise wire.HttpStatusError(message, status, retry_after)
    raise LostResponse(message, retry_after)


def _raise_api_error(endpoint: str, idempotent: bool, message: str) -> NoReturn:
    """HTTP 200 with an error status: what the message means for the caller."""
    if message.startswith(TOKEN_REJECTED):
        raise TokenRejected(f"{endpoint}: {message}")
    if endpoint == "authorize":
        if message.startswith("Failed issuing access token"):
            raise TransientError(f"authorize: {message}")  # a database hiccup on the site
        raise AuthRefused(f"authorize refused: {message}")
    if not idempotent and message.startswith(LOST_PREFIXES):
        raise LostResponse(f"{endpoint}: {message}")
    raise ApiError(endpoint, message)


class ApiClient:
    """One authorized session with the API; thread-safe; single attempts (no retries:
    ``syncd.retry`` wraps these calls), except one re-authorization on TokenRejected."""

    def __init__(
        self,
        config: RemoteConfig,
        *,
        workers: int = 4,
        throttle: Throttle | None = None,
        on_secret: Callable[[str], None] | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.config = config
        self.base_url = config.api_url if config.api_url.endswith("/") else config.api_url + "/"
        self.throttle = throttle or Throttle(0)
        self.max_answer_bytes = max_answer_bytes
        self.requests: Counter[str] = Counter()  # HTTP requests sent, by endpoint
        self.authorizations = 0  # tokens issued
        self._count_lock = threading.Lock()
        self._on_secret = on_secret
        self._token: wire.Token | None = None
        self._token_lock = threading.Lock()
        self._issued: list[str] = []  # every token of this session, for the log redactor
        self._secrets_lock = threading.Lock()  # not _token_lock: scrub() runs under that
        pool = max(1, workers) + 2  # the workers plus a lister and a spare
        self._http = httpx.Client(
            timeout=httpx.Timeout(config.timeout, pool=None),  # pool waits end as peers finish
            verify=(
                ssl.create_default_context(cafile=config.ca_bundle)
                if config.ca_bundle
                else config.verify_tls
            ),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            headers={"User-Agent": f"syncd/{__version__}"},
            # No cookies: each call stands alone, as the API intends (the PHP session
            # cookie would make a "logged in" client behave differently, D8).
            cookies=http.cookiejar.CookieJar(
                http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
            ),
            follow_redirects=False,
        )

    # -- secrets and the token ----------------------------------------------------------

    def secrets(self) -> list[str]:
        """Every secret string this client holds or held, for the log redactor."""
        with self._secrets_lock:
            issued = list(self._issued)
        return [s for s in (self.config.key1, self.config.key2, *issued) if s]

    def scrub(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, "[secret]")
        return text

    @property
    def account_id(self) -> str:
        return self.token().account_id

    def token(self) -> wire.Token:
        """The shared token, authorizing on first need."""
        token = self._token
        if token is not None:
            return token
        with self._token_lock:
            if self._token is None:
                self._token = self._authorize()
            return self._token

    def _refresh(self, stale: wire.Token) -> tuple[wire.Token, bool]:
        """Replace a rejected token, unless another thread already did; the flag says
        whether this call authorized (rather than picking up another thread's token)."""
        with self._token_lock:
            if self._token is not None and self._token.access_token != stale.access_token:
                return self._token, False
            self._token = None
            self._token = self._authorize()
            return self._token, True

    def _authorize(self) -> wire.Token:
        fields = {"key1": self.config.key1, "key2": self.config.key2}
        body = self._request("authorize", idempotent=True, send=lambda url: self._post(url, fields))
        token = wire.parse_token(body)
        with self._count_lock:
            self.authorizations += 1
        with self._secrets_lock:
            self._issued.append(token.access_token)
        if self._on_secret is not None:
            self._on_secret(token.access_token)
        log.debug("authorized", account_id=token.account_id)
        return token

    def _with_token(self, attempt: Callable[[wire.Token], T]) -> T:
        """Run ``attempt`` with the shared token; on a rejected token authorize again once
        (serialized) and retry once. A token another thread just issued may itself die
        meanwhile (idle expiry, a revocation): that does not use up this request's one
        re-authorization, within a few rounds."""
        token = self.token()
        for _ in range(_TOKEN_ROUNDS):
            try:
                return attempt(token)
            except TokenRejected:
                log.info("token rejected, authorizing again")
                token, authorized_here = self._refresh(token)
                if authorized_here:
                    return attempt(token)  # our own fresh token: one retry, then it is final
        return attempt(token)

    # -- calls ----------------------------------------------------------------------------

    def call(
        self, endpoint: str, params: Mapping[str, str] | None = None, *, idempotent: bool = True
    ) -> dict[str, Any]:
        """POST one API call with the token; returns the success envelope."""

        def attempt(token: wire.Token) -> dict[str, Any]:
            fields = {"access_token": token.access_token, "account_id": token.account_id}
            fields.update(params or {})
            return self._request(endpoint, idempotent, lambda url: self._post(url, fields))

        return self._with_token(attempt)

    def upload(
        self,
        source: Path,
        name: str,
        folder_id: str | None,
        *,
        on_progress: ProgressFn | None = None,
    ) -> SentUpload:
        """One multipart file/upload streamed from ``source`` (re-sent once after a
        token refresh). Progress of a failed attempt is taken back with a negative delta."""
        try:
            fileobj = source.open("rb")
        except OSError as exc:
            raise LocalError(f"{source}: cannot read: {exc.strerror or exc}") from exc
        with fileobj:

            def attempt(token: wire.Token) -> SentUpload:
                fields = [("access_token", token.access_token), ("account_id", token.account_id)]
                if folder_id is not None:
                    fields.append(("folder_id", folder_id))
                fileobj.seek(0)
                body = wire.MultipartFile(
                    fields, name, fileobj, source, throttle=self.throttle, on_progress=on_progress
                )
                headers = {"Content-Type": body.content_type, "Content-Length": str(body.length)}
                try:
                    answer = self._request(
                        "file/upload",
                        idempotent=False,
                        send=lambda url: self._http.build_request(
                            "POST", url, content=iter(body), headers=headers
                        ),
                    )
                except BaseException:
                    if on_progress is not None and body.sent:
                        on_progress(-body.sent)
                    raise
                return SentUpload(answer, body.sent, body.md5)

            return self._with_token(attempt)

    def fetch(
        self, url: str, dest: BinaryIO, *, on_progress: ProgressFn | None = None
    ) -> tuple[int, int, str]:
        """GET a download URL into ``dest`` (following redirects) while hashing.

        Returns (HTTP status, size, md5). The status proves nothing (errors come as 200
        HTML pages); only 429 and 5xx raise, as transient, before anything is written."""
        self._count("download")
        digest = hashlib.md5()
        size = 0
        where = urlsplit(url).path or "/"
        try:
            with self._http.stream("GET", url, follow_redirects=True) as response:
                status = response.status_code
                if status == 429 or status >= 500:
                    _raise_transient(f"download: HTTP {status} for {where}", response, True)
                for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                    try:
                        dest.write(chunk)
                    except OSError as exc:
                        raise LocalError(f"cannot write download: {exc.strerror or exc}") from exc
                    digest.update(chunk)
                    size += len(chunk)
                    if on_progress is not None:
                        on_progress(len(chunk))
        except httpx.HTTPError as exc:
            raise TransientError(f"download: {self.scrub(_describe(exc))}") from exc
        return status, size, digest.hexdigest()

    # -- one request ----------------------------------------------------------------------

    def counts(self) -> tuple[dict[str, int], int]:
        """(HTTP requests sent by endpoint, tokens issued)."""
        with self._count_lock:
            return dict(self.requests), self.authorizations

    def _count(self, endpoint: str) -> None:
        with self._count_lock:
            self.requests[endpoint] += 1

    def _post(self, url: str, fields: Mapping[str, str]) -> httpx.Request:
        return self._http.build_request("POST", url, data=dict(fields))

    def _request(
        self, endpoint: str, idempotent: bool, send: Callable[[str], httpx.Request]
    ) -> dict[str, Any]:
        """Send one request, read its answer (bounded), map every failure."""
        url = self.base_url + endpoint
        self._count(endpoint)
        try:
            response = self._http.send(send(url), stream=True)
            try:
                raw = self._read_bounded(response)
            finally:
                response.close()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached the server: safe to repeat even a create or an upload.
            raise TransientError(f"{endpoint}: cannot connect: {_describe(exc)}") from exc
        except httpx.UnsupportedProtocol as exc:
            raise WrongPath(f"{endpoint}: {_describe(exc)}: check remote.api_url") from exc
        except httpx.HTTPError as exc:
            kind = TransientError if idempotent else LostResponse
            raise kind(f"{endpoint}: {self.scrub(_describe(exc))}") from exc
        return self._interpret(endpoint, idempotent, response, raw)

    def _read_bounded(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        total = 0
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > self.max_answer_bytes:
                return b"\x00answer too large"  # never JSON: a garbage answer below
            chunks.append(chunk)
        return b"".join(chunks)

    def _interpret(
        self, endpoint: str, idempotent: bool, response: httpx.Response, raw: bytes
    ) -> dict[str, Any]:
        status = response.status_code
        where = urlsplit(str(response.request.url)).path
        if status == 429 or status >= 500 or status == 408:
            reason = f"HTTP {status} {response.reason_phrase}".rstrip()
            _raise_transient(f"{endpoint}: {reason}", response, idempotent)
        if status == 401:
            if endpoint == "authorize":
                raise AuthRefused("authorize: HTTP 401: the site refused the key pair")
            raise TokenRejected(f"{endpoint}: HTTP 401: access token rejected")
        if status == 404:
            detail = self._message_of(raw)
            raise WrongPath(
                f"HTTP 404 for {where}: check remote.api_url" + (f" ({detail})" if detail else "")
            )
        if 300 <= status < 400:
            target = urlsplit(response.headers.get("Location", "")).netloc or "elsewhere"
            raise WrongPath(
                f"HTTP {status} for {where}: redirected to {target}: check remote.api_url"
            )
        if status >= 400:
            raise ApiError(endpoint, f"HTTP {status} {response.reason_phrase}".rstrip())
        try:
            envelope = wire.parse_envelope(raw, self.scrub)
        except wire.GarbageAnswer as exc:
            if idempotent:
                raise wire.GarbageAnswer(f"{endpoint}: {exc}") from None
            raise LostResponse(f"{endpoint}: {exc}") from None
        if envelope.ok:
            return envelope.body
        _raise_api_error(endpoint, idempotent, envelope.message)

    def _message_of(self, raw: bytes) -> str:
        with contextlib.suppress(wire.GarbageAnswer):
            return wire.parse_envelope(raw, self.scrub).message
        return ""

    # -- shutdown -------------------------------------------------------------------------

    def close(self) -> None:
        """Disable the token if one was issued (best effort), then close the sockets."""
        with self._token_lock:
            token, self._token = self._token, None
        try:
            if token is not None:
                fields = {"access_token": token.access_token, "account_id": token.account_id}
                try:
                    self._request("disable_access_token", True, lambda url: self._post(url, fields))
                except RemoteError as exc:
                    log.info("token not disabled", error=str(exc))
        finally:
            self._http.close()
