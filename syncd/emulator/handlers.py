"""HTTP plumbing: request parsing, routing, fault injection, JSON answers, /_emulator.

One ``Handler`` instance serves one keep-alive connection (stdlib ``http.server``). Every
request body is consumed completely before answering (or the connection is dropped), so
a fault answer never desynchronises a keep-alive stream. Faults apply to API requests and
downloads, never to ``/_emulator/*``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import struct
import sys
import time
import traceback
from dataclasses import asdict, fields
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from syncd.emulator import api, downloads, views
from syncd.emulator.body import AbortRequest, BodyReader, ClientGone
from syncd.emulator.calls import PHP_FATAL
from syncd.emulator.forms import Form, parse_urlencoded, read_form
from syncd.emulator.options import Faults

if TYPE_CHECKING:
    from syncd.emulator.server import EmulatorHTTPServer

MAX_HEADERS = 100
MAX_CONTROL_BODY = 1 << 20  # /_emulator requests are tiny
LATE_FAIL = frozenset({"file/upload", "folder/create"})
RESET_AFTER_CHUNKED = 64 * 1024  # how much of a chunked upload is read before a reset
_NGINX_PAGE = (
    "<html>\r\n<head><title>{code} {text}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {text}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_FAIL_CODES = (
    (500, "Internal Server Error"),
    (502, "Bad Gateway"),
    (503, "Service Temporarily Unavailable"),
)
_API_HEADERS = (
    ("Expires", "Thu, 19 Nov 1981 08:52:00 GMT"),
    ("Cache-Control", "no-store, no-cache, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Access-Control-Allow-Orgin", "*"),  # sic: the upstream typo
    ("Access-Control-Allow-Methods", "*"),
)


def dump_json(obj: Any) -> bytes:
    """PHP json_encode's look: compact, ASCII-only with \\u escapes, and ``\\/``."""
    return json.dumps(obj, separators=(",", ":")).replace("/", "\\/").encode("ascii")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    wbufsize = 1 << 16  # headers and small bodies leave in one send()
    timeout = 300  # idle keep-alive connections are closed after this
    server: EmulatorHTTPServer
    raw_requestline: bytes

    def parse_request(self) -> bool:
        """The stdlib's parse_request without its email-package header parser, which
        compiles a regex for every new multipart boundary (≈1 ms a request)."""
        self.command = ""
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            self.send_error(400, "Bad request syntax")
            return False
        command, path, version = words
        try:
            major, minor = (int(v) for v in version[5:].split(".", 1))
        except ValueError:
            self.send_error(400, "Bad request version")
            return False
        if major >= 2:
            self.send_error(505, "Invalid HTTP version")
            return False
        self.close_connection = (major, minor) < (1, 1)
        self.command, self.request_version = command, version
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        headers = HTTPMessage()
        for _ in range(MAX_HEADERS + 1):
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            if len(line) > 65536:
                self.send_error(431, "Line too long")
                return False
            name, sep, value = line.decode("iso-8859-1").partition(":")
            if sep:
                headers[name.strip()] = value.strip()
        else:
            self.send_error(431, "Too many headers")
            return False
        self.headers = headers
        conntype = headers.get("Connection", "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive":
            self.close_connection = False
        if (
            headers.get("Expect", "").lower() == "100-continue"
            and self.request_version >= "HTTP/1.1"
        ):
            return self.handle_expect_100()
        return True

    def handle_expect_100(self) -> bool:
        """Send "100 Continue" now: the stdlib leaves it in our write buffer, and curl then
        waits a second before sending any body over 1 MiB."""
        super().handle_expect_100()
        self.wfile.flush()
        return True

    def do_GET(self) -> None:
        self._route()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.app.options.log_requests:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    # -- routing ---------------------------------------------------------------------------
    def _route(self) -> None:
        app = self.server.app
        raw_path, _, query = self.path.partition("?")
        lower = raw_path.lower()
        try:
            if lower.startswith("/_emulator/"):
                self._emulator(lower[len("/_emulator/") :], query)
            elif lower.startswith(app.options.prefix.lower()):
                self._api(lower[len(app.options.prefix) :].strip("/"), query)
            elif self.command in ("GET", "HEAD"):
                downloads.serve_site(self, raw_path, query)
            else:
                self.body_reader().drain()
                self.answer(404, b"", "text/html")
        except (AbortRequest, ClientGone):
            self._abort()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            app.report_error(traceback.format_exc())
            self._abort()

    def body_reader(self, abort_after: int | None = None) -> BodyReader:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = 0
        return BodyReader(self.rfile, None if chunked else max(length, 0), chunked, abort_after)

    def _site_url(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}/" if host else self.server.app.base_url

    # -- faults ----------------------------------------------------------------------------
    def early_fault(self, reader: BodyReader, upload: bool, endpoint: str | None = None) -> bool:
        """Apply latency and the faults that answer without acting; True if one fired."""
        app, faults = self.server.app, self.server.app.faults
        if faults.latency > 0:
            time.sleep(faults.latency)
        if faults.endpoints and endpoint not in faults.endpoints:
            return False
        if app.roll(faults.reset_rate):
            if upload:  # drop the connection after part of the body, mid-transfer
                reader.abort_after = reader.length // 2 if reader.length else RESET_AFTER_CHUNKED
            reader.drain()
            raise AbortRequest
        if app.roll(faults.rate_limit):
            reader.drain()
            ra = faults.retry_after
            text = str(int(ra)) if float(ra).is_integer() else f"{ra:g}"
            page = _NGINX_PAGE.format(code=429, text="Too Many Requests")
            self.answer(429, page.encode(), "text/html", [("Retry-After", text)])
            return True
        if app.roll(faults.fail_rate):
            reader.drain()
            self._send_proxy_error(app.pick(_FAIL_CODES))
            return True
        if app.roll(faults.html_errors):
            reader.drain()
            page = PHP_FATAL.format(msg="Maximum execution time of 30 seconds exceeded")
            self.answer(200, page.encode(), "text/html; charset=UTF-8")
            return True
        return False

    def _send_proxy_error(self, code_text: tuple[int, str]) -> None:
        code, text = code_text
        self.answer(code, _NGINX_PAGE.format(code=code, text=text).encode(), "text/html")

    def _abort(self) -> None:
        """Drop the connection with a TCP RST and no answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()  # really closed (RST) once rfile/wfile are closed

    # -- the API ---------------------------------------------------------------------------
    def _api(self, endpoint: str, query: str) -> None:
        app = self.server.app
        app.record(self.command, endpoint)
        if endpoint != "file/upload":
            self._api_call(endpoint, query, is_upload=False)
            return
        app.upload_begins()
        try:
            self._api_call(endpoint, query, is_upload=True)
        finally:
            app.upload_ends()

    def _api_call(self, endpoint: str, query: str, *, is_upload: bool) -> None:
        app = self.server.app
        reader = self.body_reader()
        if self.early_fault(reader, is_upload, endpoint):
            return
        if self.command in ("GET", "HEAD", "PUT"):
            reader.drain()
            form = Form(parse_urlencoded(query))
        else:
            form = read_form(
                reader,
                self.headers.get("Content-Type", ""),
                tmp_dir=app.store.tmp_dir,
                max_file=app.options.max_upload_size,
                want_file=is_upload,
            )
        call = api.Call(
            app.store,
            app.options,
            self._site_url(),
            self.client_address[0],
            form.params,
            form.upload,
        )
        try:
            reply = api.dispatch(call, endpoint)
        finally:
            if form.upload is not None:
                form.upload.discard()
        targeted = not app.faults.endpoints or endpoint in app.faults.endpoints
        if endpoint in LATE_FAIL and targeted and app.roll(app.faults.late_fail_rate):
            self._send_proxy_error((502, "Bad Gateway"))  # it happened; the answer is lost
            return
        if reply.html is not None:
            self.answer(
                reply.status,
                reply.html.encode(),
                "text/html; charset=UTF-8",
                self._cookie(),
                reason=reply.reason,
            )
        else:
            self.answer(
                reply.status,
                dump_json(reply.json),
                "application/json",
                [*self._cookie(), *_API_HEADERS],
                reason=reply.reason,
            )

    @staticmethod
    def _cookie() -> list[tuple[str, str]]:
        return [("Set-Cookie", f"filehosting={secrets.token_hex(13)}; Max-Age=86400; path=/")]

    def answer(
        self,
        status: int,
        body: bytes,
        ctype: str,
        headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
        reason: str | None = None,
    ) -> None:
        self.send_response(status, reason)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    # -- /_emulator ------------------------------------------------------------------------
    def _emulator(self, what: str, query: str) -> None:
        app = self.server.app
        reader = self.body_reader()
        body = bytearray()
        while chunk := reader.read():
            if len(body) < MAX_CONTROL_BODY:
                body += chunk
        if what == "tree":
            self.answer(200, json.dumps(views.tree(app.store)).encode(), "application/json")
        elif what == "faults":
            if self.command == "POST":
                try:
                    self._set_faults(bytes(body), query)
                except (ValueError, TypeError) as exc:
                    self.answer(400, str(exc).encode(), "text/plain")
                    return
            faults = json.dumps(asdict(app.faults), default=sorted)  # endpoints: a list
            self.answer(200, faults.encode(), "application/json")
        elif what == "expire_tokens" and self.command == "POST":
            app.store.expire_tokens()
            self.answer(200, b"{}", "application/json")
        else:
            self.answer(404, b"", "text/html")

    def _set_faults(self, body: bytes, query: str) -> None:
        """POST /_emulator/faults with JSON or form fields named like ``Faults`` fields."""
        if "json" in self.headers.get("Content-Type", ""):
            changes = json.loads(body or b"{}")
        else:
            changes = parse_urlencoded(body) or parse_urlencoded(query)
        values: dict[str, object] = {
            f.name: float(changes[f.name])
            for f in fields(Faults)
            if f.name in changes and f.name != "endpoints"
        }
        if "endpoints" in changes:  # a JSON list or a comma-separated form field
            given = changes["endpoints"]
            names = given.split(",") if isinstance(given, str) else list(given)
            values["endpoints"] = frozenset(n.strip() for n in names if n.strip())
        for name, value in values.items():
            setattr(self.server.app.faults, name, value)
