"""The site outside the API: download URLs (as ``file/download`` hands them out), the
error page they redirect to, and a front page. Quirks copy API-observed.md."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

from syncd.emulator.body import BodyReader, ClientGone
from syncd.emulator.records import ACTIVE, File

if TYPE_CHECKING:
    from syncd.emulator.handlers import Handler

CHUNK = 1 << 20
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def header_text(value: str) -> str:
    """Send a header value as raw UTF-8 bytes, as PHP does (http.server encodes latin-1)."""
    return value.encode("utf-8").decode("latin-1")


def serve_site(h: Handler, raw_path: str, query: str) -> None:
    """GET/HEAD outside the API: download URLs, the error page, a front page."""
    app = h.server.app
    parts = raw_path.strip("/").split("/")
    h.body_reader().drain()
    if raw_path == "/":
        page = f"<html><body><h1>syncd emulator</h1><p>API: {app.base_url}</p></body></html>"
        h.answer(200, page.encode(), "text/html; charset=UTF-8")
        return
    if parts[0] == "error.html":
        msg = parse_qs(query).get("e", ["Error"])[0]
        page = f"<html><body><h1>Error</h1><p>{msg}</p></body></html>"
        h.answer(200, header_text(page).encode("latin-1"), "text/html; charset=UTF-8")
        return
    f = app.store.file_by_short(unquote(parts[0])) if len(parts) <= 2 else None
    if f is None:
        h.answer(404, b"", "text/html; charset=UTF-8")
        return
    app.record("GET", "download")
    if h.early_fault(BodyReader(h.rfile, 0, False), upload=False):
        return
    token = parse_qs(query).get("download_token", [""])[0]
    if not token:
        h.answer(500, b"", "text/html; charset=UTF-8")  # as observed on a real site
        return
    if not app.store.download_token_ok(token, f) or f.status != ACTIVE:
        h.send_response(302)
        h.send_header("Location", "/error.html?e=Download+token+is+invalid+or+expired.")
        h.send_header("Content-Length", "0")
        h.end_headers()
        return
    serve_file(h, f)


def serve_file(h: Handler, f: File) -> None:
    """Stream the file; Range answers copy a real site's quirks (API-observed.md)."""
    app = h.server.app
    size, start, end, status = f.size, 0, f.size - 1, 200
    content_range = f"bytes 0-{size - 1}/{size}"
    m = _RANGE.fullmatch(h.headers.get("Range", "").strip())
    if m and m.group(1):
        first = int(m.group(1))
        last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        if first == 0:  # a real site answers 200 with the whole file here
            content_range = f"bytes 0-{last}/{size}"
        else:
            start, end, status = first, last, 206
            content_range = f"bytes {first}-{last}/{size}"
    length = max(0, end - start + 1)
    try:
        fh = open(app.store.blob_path(f), "rb")  # noqa: SIM115 - closed below
    except OSError:
        h.answer(500, b"", "text/html")
        return
    with fh:
        h.send_response(status)
        for key, value in (
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(length)),
            ("Accept-Ranges", "bytes"),
            ("Content-Range", content_range),
            ("Content-Disposition", header_text(f'attachment; filename="{f.name}"')),
        ):
            h.send_header(key, value)
        h.end_headers()
        if h.command == "HEAD":
            return
        app.store.record_download(f)
        flip = start + length // 2 if length and app.roll(app.faults.corrupt_download_rate) else -1
        fh.seek(start)
        pos, left = start, length
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                raise ClientGone("blob shorter than recorded")  # drop: never send short
            if pos <= flip < pos + len(chunk):
                buf = bytearray(chunk)
                buf[flip - pos] ^= 0xFF
                chunk = bytes(buf)
            h.wfile.write(chunk)
            pos += len(chunk)
            left -= len(chunk)
