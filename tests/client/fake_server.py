"""A scriptable stand-in for a hosting site, for answers the emulator never gives.

Real HTTP/1.1 over loopback (stdlib ``ThreadingHTTPServer``, keep-alive). ``authorize``,
``disable_access_token`` and token checks behave like a real 4.x site; every other
answer is whatever the test scripted with ``fake.script(endpoint, Reply(...), ...)``
(one reply per request, in order; unscripted requests get ``default``). A reply can be
any status, headers and body (HTML pages, garbage, huge or empty bodies), a delay, or a
dropped connection before or after the request body was read.

    fake.script("file/info", Reply(502, b"<html>Bad Gateway</html>"), Reply.ok({"data": ...}))
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import struct
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs

NOW = "2026-11-27 08:42:34"
TOKEN_ERROR = "Could not validate access_token and account_id, please reauthenticate or try again."


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict[str, Any] | Callable[[Seen], bytes | dict[str, Any]] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (after reading the request body)
    drop: str = ""  # "before_body": close at once; "after_body": read, then close unanswered

    @classmethod
    def ok(cls, payload: dict[str, Any] | None = None, **extra: Any) -> Reply:
        return cls(200, {**(payload or {}), **extra, "_status": "success", "_datetime": NOW})

    @classmethod
    def error(cls, message: str, style: str = "status") -> Reply:
        return cls(200, {style: "error", "response": message, "_datetime": NOW})


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    endpoint: str
    fields: dict[str, str]  # form fields, or the non-file parts of a multipart body
    filename: str | None = None  # the upload part's filename, as sent (still quoted)
    file_size: int = 0
    file_md5: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def _parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], Seen]:
    boundary = content_type.split("boundary=", 1)[1].strip().encode()
    seen = Seen("POST", "", {})
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part[2:].partition(b"\r\n\r\n")
        content = content[:-2]  # the CRLF before the next boundary
        disposition = head.split(b"\r\n")[0].decode("utf-8")
        name = disposition.split('name="', 1)[1].split('"', 1)[0]
        if 'filename="' in disposition:
            seen.filename = disposition.split('filename="', 1)[1].rsplit('"', 1)[0]
            seen.file_size = len(content)
            seen.file_md5 = hashlib.md5(content).hexdigest()
        else:
            seen.fields[name] = content.decode("utf-8")
    return seen.fields, seen


def upload_answer(seen: Seen, **overrides: Any) -> dict[str, Any]:
    """A real-looking file/upload success for what was received (4.x: hash false)."""
    name = (seen.filename or "").replace("'", "")
    item = {
        "name": name,
        "size": seen.file_size,
        "type": "application/octet-stream",
        "error": None,
        "url": f"http://127.0.0.1/b/{name}",
        "delete_type": "DELETE",
        "hash": False,
        "short_url": "b",
        "file_id": "17",
        "url_html": "&lt;a href=&quot;…&quot;&gt;",
    }
    item.update(overrides)
    return {"response": "File uploaded", "data": [item], "_status": "success", "_datetime": NOW}


class LoopbackServer:
    """An HTTP/1.1 server (keep-alive) on 127.0.0.1 at a free port, serving from a daemon
    thread once started; every GET and POST goes to ``handle(handler)``. ``quiet``: the
    server's errors (dropped connections) are not printed."""

    def __init__(
        self, handle: Callable[[BaseHTTPRequestHandler], None], *, quiet: bool = False
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                handle(self)

            do_GET = do_POST

        server_class = _QuietServer if quiet else ThreadingHTTPServer
        self._server = server_class(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class FakeServer(LoopbackServer):
    def __init__(self, prefix: str = "/api/v2/") -> None:
        super().__init__(self._handle, quiet=True)
        self.prefix = prefix
        self.key1 = secrets.token_hex(32)
        self.key2 = secrets.token_hex(32)
        self.account_id = "74"
        self.tokens: set[str] = set()
        self.issued: list[str] = []
        self.seen: list[Seen] = []
        self.default: Reply = Reply.ok()
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base + self.prefix

    def script(self, endpoint: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[endpoint].extend(replies)

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def endpoints(self) -> list[str]:
        return [s.endpoint for s in self.seen]

    def count(self, endpoint: str) -> int:
        return sum(1 for s in self.seen if s.endpoint == endpoint)

    # -- serving ------------------------------------------------------------------------

    def _next_reply(self, endpoint: str) -> Reply | None:
        with self._lock:
            queue = self._scripts.get(endpoint)
            return queue.popleft() if queue else None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        method = handler.command
        path, _, query = handler.path.partition("?")
        endpoint = path[len(self.prefix) :].lower() if path.startswith(self.prefix) else path
        reply = self._next_reply(endpoint)
        if reply is not None and reply.drop == "before_body":
            with self._lock:
                self.seen.append(Seen(method, endpoint, {}))
            _reset(handler)
            return
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        content_type = handler.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            fields, seen = _parse_multipart(body, content_type)
        else:
            fields = {k: v[0] for k, v in parse_qs(body.decode() or query).items()}
            seen = Seen(method, endpoint, fields)
        seen.method, seen.endpoint, seen.headers = method, endpoint, dict(handler.headers)
        with self._lock:
            self.seen.append(seen)
        if reply is not None and reply.drop == "after_body":
            _reset(handler)
            return
        if reply is not None and not self._token_ok(seen):
            # A real site checks the token before the action: keep the script for later.
            with self._lock:
                self._scripts[endpoint].appendleft(reply)
            reply = Reply.error(TOKEN_ERROR)
        if reply is None:
            reply = self._builtin(endpoint, seen) or self.default
        if reply.delay:
            time.sleep(reply.delay)
        payload = reply.body(seen) if callable(reply.body) else reply.body
        raw = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Length", str(len(raw)))
            if isinstance(payload, dict):
                handler.send_header("Content-Type", "application/json")
            for key, value in reply.headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _token_ok(self, seen: Seen) -> bool:
        if seen.method == "GET" or seen.endpoint == "authorize":
            return True
        with self._lock:
            return seen.fields.get("access_token") in self.tokens

    def _builtin(self, endpoint: str, seen: Seen) -> Reply | None:
        """authorize / token checks as a real site does them; None = use the default."""
        if endpoint == "authorize":
            if seen.fields.get("key1") != self.key1 or seen.fields.get("key2") != self.key2:
                return Reply.error(
                    "Could not authenticate user. The key pair may be invalid or your "
                    "account may be locked from too many failed logins."
                )
            token = secrets.token_urlsafe(96)[:128]
            with self._lock:
                self.tokens = {token}  # one live token per user
                self.issued.append(token)
            return Reply.ok({"data": {"access_token": token, "account_id": self.account_id}})
        if seen.method == "GET":
            return None
        if not self._token_ok(seen):
            return Reply.error(TOKEN_ERROR)
        if endpoint == "disable_access_token":
            with self._lock:
                self.tokens.discard(seen.fields["access_token"])
            return Reply.ok(response="Token removed or no longer available.")
        if endpoint == "file/upload":
            return Reply(200, upload_answer(seen))
        return None


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # dropped connections are the point of many scripts


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Drop the connection with a TCP RST, as a crashing proxy does."""
    sock: socket.socket = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    sock.close()
