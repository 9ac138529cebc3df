"""A tampering proxy: a real site (the emulator) behind a server that spoils chosen answers.

``tests/client/fake_server.py`` scripts every answer, which is right for client unit
tests; whole sync runs need a site that really stores files, folders and names. This
proxy forwards every request to the emulator and, for the requests a ``Rule`` matches,
replaces the answer with garbage JSON, an HTML page, an empty or huge body, an answer
missing fields or with ids of the wrong type - after the emulator acted (``forward``,
the nasty case: it happened, the answer is unusable) or instead of forwarding.
A rule can also run a hook once part of an upload body has arrived (to change the local
file while it is being sent).

    proxy = TamperProxy(emulator.api_url).start()
    proxy.add(Rule("file/upload", spoil=garbage_json, times=2))
    ... config api_url = proxy.api_url ...
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.client.fake_server import LoopbackServer

Answer = tuple[int, str, bytes]  # status, content type, body
Spoil = Callable[[Answer], Answer]

PHP_PAGE = (
    b'<div style="padding:20px; background-color: #FFBABA;"><strong>SYSTEM ERROR:</strong>'
    b"<br/>Error Msg: Allowed memory size of 536870912 bytes exhausted</div>"
)
HUGE_BYTES = 130 * 1024 * 1024  # past the client's 128 MiB cap on an API answer


def garbage_json(answer: Answer) -> Answer:
    return 200, "application/json", b'{"_status":"success","data":[{"file_id":'


def html_page(answer: Answer) -> Answer:
    return 200, "text/html; charset=UTF-8", PHP_PAGE


def empty_body(answer: Answer) -> Answer:
    return 200, "application/json", b""


def huge_body(answer: Answer) -> Answer:
    return 200, "application/json", b'{"_status":"success","data":' + b" " * HUGE_BYTES + b"[]}"


def _rewrite(answer: Answer, change: Callable[[Any], None]) -> Answer:
    status, ctype, body = answer
    doc = json.loads(body)
    change(doc)
    return status, ctype, json.dumps(doc).encode()


def _items(doc: Any) -> list[dict[str, Any]]:
    """The objects of an answer's data: the upload item, the listing's entries…"""
    data = doc.get("data")
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if isinstance(data, dict):
        items = [data]
        for key in ("folders", "files"):
            if isinstance(data.get(key), list):
                items += [d for d in data[key] if isinstance(d, dict)]
        return items
    return []


def missing_fields(answer: Answer) -> Answer:
    """Success, but the fields a client needs (ids, names, sizes) are gone."""

    def change(doc: Any) -> None:
        for item in _items(doc):
            for key in ("file_id", "id", "name", "filename", "folderName", "size", "fileSize"):
                item.pop(key, None)
        if isinstance(doc.get("data"), dict):
            doc["data"].pop("files", None)

    return _rewrite(answer, change)


def wrong_types(answer: Answer) -> Answer:
    """Success, but ids are lists / objects / booleans and sizes are not numbers."""

    def change(doc: Any) -> None:
        for n, item in enumerate(_items(doc)):
            for key in ("file_id", "id"):
                if key in item:
                    item[key] = [[item[key]], {"id": item[key]}, True][n % 3]
            for key in ("size", "fileSize"):
                if key in item:
                    item[key] = "twelve"

    return _rewrite(answer, change)


@dataclass
class Rule:
    endpoint: str
    spoil: Spoil | None = None  # None: forward the answer untouched (e.g. hook only)
    times: int = 1  # how many matching requests are spoiled
    skip: int = 0  # matching requests let through untouched first
    forward: bool = True  # the site acts first (False: it never sees the request)
    hook: Callable[[], None] | None = None  # run once the first 64 KiB of the body arrived
    needle: bytes = b""  # only requests whose body starts with a part containing this
    seen: int = 0
    spoiled: int = 0

    def take(self, head: bytes) -> bool:
        if self.needle not in head:
            return False
        self.seen += 1
        if self.seen <= self.skip or self.spoiled >= self.times:
            return False
        self.spoiled += 1
        return True


HOOK_AFTER = 64 * 1024


class TamperProxy(LoopbackServer):
    def __init__(self, upstream_api_url: str) -> None:
        super().__init__(self._handle)
        parts = urlsplit(upstream_api_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.prefix = parts.path
        self.rules: list[Rule] = []
        self.requests: list[str] = []
        self._lock = threading.Lock()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def _match(self, endpoint: str, head: bytes) -> Rule | None:
        with self._lock:
            self.requests.append(endpoint)
            for rule in self.rules:
                if rule.endpoint == endpoint and rule.take(head):
                    return rule
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path
        endpoint = path.partition("?")[0][len(self.prefix) :].strip("/").lower()
        length = int(h.headers.get("Content-Length") or 0)
        try:
            body = h.rfile.read(min(length, HOOK_AFTER)) if length else b""
            rule = self._match(endpoint, body)
            if rule is not None and rule.hook is not None:
                rule.hook()
            if length > len(body):
                rest = h.rfile.read(length - len(body))
                body += rest
            if len(body) < length:
                h.close_connection = True
                return  # the client gave up mid-body (it saw its file change)
        except (ConnectionError, TimeoutError):
            h.close_connection = True
            return
        answer: Answer | None = None
        if rule is None or rule.forward:
            answer = self._forward(h, body)
        if rule is not None and rule.spoil is not None:
            answer = rule.spoil(answer or (200, "application/json", b"{}"))
        assert answer is not None
        status, ctype, payload = answer
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except (ConnectionError, TimeoutError):
            h.close_connection = True

    def _forward(self, h: BaseHTTPRequestHandler, body: bytes) -> Answer:
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            headers = {
                k: v
                for k, v in h.headers.items()
                if k.lower() in ("content-type", "content-length", "user-agent")
            }
            conn.request(h.command, h.path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type", "text/html"), resp.read()
        finally:
            conn.close()
