"""Request bodies as PHP would see them: form fields plus one streamed upload.

Multipart bodies are parsed with python_multipart's streaming parser, the ``upload_file``
part going to an ``UploadSink``. JSON bodies fill nothing (PHP only parses form
encodings). PHP's own reading of part headers is copied where it shows (quoted names).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from syncd.emulator.body import BodyReader
from syncd.emulator.uploads import Upload, UploadSink

MAX_FIELD = 1 << 20  # a form field longer than this is cut (PHP has similar limits)
MAX_URLENCODED = 16 << 20
UPLOAD_FIELD = "upload_file"


@dataclass
class Form:
    params: dict[str, str]
    upload: Upload | None = None


class _MultipartCollector:
    """python_multipart callbacks: fields into ``params``, the first file part streamed."""

    def __init__(self, boundary: bytes, tmp_dir: Path, max_file: int | None) -> None:
        self.params: dict[str, str] = {}
        self.upload: Upload | None = None
        self._tmp_dir, self._max_file = tmp_dir, max_file
        self._headers: dict[bytes, bytes] = {}
        self._hfield = self._hvalue = b""
        self._name: str | None = None
        self._is_file = False
        self._value = bytearray()
        self._sink: UploadSink | None = None
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def _part_begin(self) -> None:
        self._headers, self._name, self._sink, self._is_file = {}, None, None, False
        self._value = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._hfield += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._hfield.strip().lower()] = self._hvalue
        self._hfield = self._hvalue = b""

    def _headers_finished(self) -> None:
        disp = parse_disposition(
            self._headers.get(b"content-disposition", b"").decode("utf-8", "replace")
        )
        self._name = disp.get("name")
        filename = disp.get("filename")
        self._is_file = filename is not None
        if (
            filename is not None
            and self._name == UPLOAD_FIELD
            and self.upload is None
            and self._max_file is not None
        ):
            self.upload = Upload(filename)
            self._sink = UploadSink(self.upload, self._tmp_dir, self._max_file)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._sink is not None:
            self._sink.write(memoryview(data)[start:end])
        elif not self._is_file and len(self._value) < MAX_FIELD:
            self._value += data[start:end]

    def _part_end(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        elif self._name is not None and not self._is_file:  # other file parts: ignored
            self.params[self._name] = self._value[:MAX_FIELD].decode("utf-8", "replace")

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()


def parse_disposition(value: str) -> dict[str, str]:
    """Content-Disposition parameters the way PHP's rfc1867 code reads them: quoted
    values (double or single quotes) unescape only ``\\\\`` and ``\\<quote>``, so a
    Windows path like ``a\\b.txt`` keeps its backslash."""
    params: dict[str, str] = {}
    semi = value.find(";")
    if semi < 0:
        return params
    i, n = semi + 1, len(value)
    while i < n:
        eq = value.find("=", i)
        if eq < 0:
            break
        key = value[i:eq].strip(" \t;").lower()
        i = eq + 1
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] in "\"'":
            quote, out = value[i], []
            i += 1
            while i < n and value[i] != quote:
                if value[i] == "\\" and i + 1 < n and value[i + 1] in ("\\", quote):
                    i += 1
                out.append(value[i])
                i += 1
            val = "".join(out)
            semi = value.find(";", i)
            i = n if semi < 0 else semi + 1
        else:
            semi = value.find(";", i)
            end = n if semi < 0 else semi
            val, i = value[i:end].strip(), end + 1
        params.setdefault(key, val)
    return params


def read_form(
    reader: BodyReader, content_type: str, *, tmp_dir: Path, max_file: int, want_file: bool
) -> Form:
    """Consume the whole body; return its fields (and the upload, if ``want_file``)."""
    ctype, opts = parse_options_header(content_type)
    if ctype == b"multipart/form-data" and opts.get(b"boundary"):
        return _read_multipart(reader, opts[b"boundary"], tmp_dir, max_file if want_file else None)
    if ctype == b"application/x-www-form-urlencoded":
        body = bytearray()
        while chunk := reader.read():
            if len(body) <= MAX_URLENCODED:
                body += chunk
        return Form(parse_urlencoded(bytes(body)) if len(body) <= MAX_URLENCODED else {})
    reader.drain()  # JSON and anything else: PHP fills no $_POST
    return Form({})


def parse_urlencoded(body: bytes | str) -> dict[str, str]:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return dict(parse_qsl(text, keep_blank_values=True, errors="replace"))


def _read_multipart(
    reader: BodyReader, boundary: bytes, tmp_dir: Path, max_file: int | None
) -> Form:
    try:
        collector = _MultipartCollector(boundary, tmp_dir, max_file)
    except FormParserError:
        reader.drain()
        return Form({})
    try:
        while chunk := reader.read():
            try:
                collector.parser.write(chunk)
            except FormParserError:
                reader.drain()  # malformed: keep what was parsed, like PHP does
                break
        collector.close()
    except BaseException:
        collector.close()
        if collector.upload is not None:
            collector.upload.discard()
        raise
    return Form(collector.params, collector.upload)
