"""One HTTP request body, read from a keep-alive connection: Content-Length or chunked.

Every body is consumed completely (or the connection dropped) so that the next request on
the connection starts where it should, whatever the answer to this one was.
"""

from __future__ import annotations

from typing import Protocol

READ_SIZE = 1 << 20  # socket reads; large reads keep per-byte Python overhead negligible


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...
    def readline(self, size: int, /) -> bytes: ...


class ClientGone(ConnectionError):
    """The client closed the connection before the whole body arrived."""


class AbortRequest(Exception):
    """Raised by a reader with ``abort_after`` set: the reset fault fires mid-body."""


class BodyReader:
    """Reads exactly one request body (Content-Length or chunked) from the connection."""

    def __init__(
        self, rfile: Readable, length: int | None, chunked: bool, abort_after: int | None = None
    ) -> None:
        self._rfile = rfile
        self.length = length  # None when chunked
        self._left = length or 0
        self._chunked = chunked
        self._chunk_left = 0
        self._done = not chunked and not self._left
        self.abort_after = abort_after
        self.consumed = 0

    def read(self, n: int = READ_SIZE) -> bytes:
        if self._done:
            return b""
        if self.abort_after is not None and self.consumed >= self.abort_after:
            raise AbortRequest
        data = self._read_chunked(n) if self._chunked else self._read_plain(n)
        self.consumed += len(data)
        return data

    def _read_plain(self, n: int) -> bytes:
        data = self._rfile.read(min(n, self._left))
        if not data:
            raise ClientGone("body cut short")
        self._left -= len(data)
        self._done = not self._left
        return data

    def _read_chunked(self, n: int) -> bytes:
        if not self._chunk_left:
            line = self._rfile.readline(65537)
            if not line:
                raise ClientGone("chunked body cut short")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ClientGone("bad chunk header") from None
            if size == 0:
                while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self._done = True
                return b""
            self._chunk_left = size
        data = self._rfile.read(min(n, self._chunk_left))
        if not data:
            raise ClientGone("chunked body cut short")
        self._chunk_left -= len(data)
        if not self._chunk_left:
            self._rfile.readline(3)  # the CRLF after the chunk
        return data

    def drain(self) -> None:
        while self.read():
            pass
