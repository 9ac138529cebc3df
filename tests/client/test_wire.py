"""wire.py: tolerant parsing of what real servers send (API-observed), and upload bodies."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from syncd.errors import ChangedDuringUpload
from syncd.remote.base import Package, RemoteFile, RemoteFolder
from syncd.remote.uploadapi import wire
from syncd.remote.uploadapi.remote import download_urls


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


# -- envelopes ------------------------------------------------------------------------


def test_success_needs_underscore_status() -> None:
    env = wire.parse_envelope(body({"data": {}, "_status": "success", "_datetime": "x"}))
    assert env.ok


@pytest.mark.parametrize(
    "doc",
    [
        {"status": "error", "response": "Could not find file based on file_id.", "_datetime": "x"},
        {"response": "Could not find file based on file_id.", "_status": "error"},
    ],
    ids=["4.x status", "5.x _status"],
)
def test_error_text_comes_from_response_in_both_styles(doc: dict[str, Any]) -> None:
    env = wire.parse_envelope(body(doc))
    assert not env.ok
    assert env.message == "Could not find file based on file_id."


def test_unknown_action_body_keeps_its_text_under_key_zero() -> None:
    raw = b'{"0":"No method found within endpoint (file): nope","_status":"error","_datetime":"x"}'
    assert wire.parse_envelope(raw).message == "No method found within endpoint (file): nope"


def test_long_server_messages_become_one_short_line() -> None:
    html = "Failed reading response from: http://x/y. Response: <div>\n" + "SYSTEM ERROR " * 100
    env = wire.parse_envelope(body({"status": "error", "response": html}))
    assert "\n" not in env.message
    assert len(env.message) <= wire.MESSAGE_CHARS
    assert env.message.startswith("Failed reading response from")


@pytest.mark.parametrize(
    "raw",
    [
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b"",
        b'"No endpoint found for: nope"',
        b"[1, 2]",
        b'{"unrelated": true}',
        b"\xff\xfe garbage",
    ],
)
def test_anything_but_an_api_object_is_a_transient_garbage_answer(raw: bytes) -> None:
    with pytest.raises(wire.GarbageAnswer) as caught:
        wire.parse_envelope(raw)
    assert len(str(caught.value)) < 200


def test_garbage_excerpt_is_short_and_scrubbed() -> None:
    secret = "S" * 128
    raw = f"<html><pre>POST access_token={secret}&amp;x</pre>{'x' * 5000}</html>".encode()
    with pytest.raises(wire.GarbageAnswer) as caught:
        wire.parse_envelope(raw, lambda text: text.replace(secret, "[secret]"))
    text = str(caught.value)
    assert secret not in text and "SSSSSSSS" not in text
    assert "[secret]" in text and len(text) < 200


# -- one function per type ------------------------------------------------------------


def test_token_with_string_or_numeric_account_id() -> None:
    for account_id in ("74", 74):
        doc = {"data": {"access_token": "t" * 128, "account_id": account_id}}
        assert wire.parse_token(doc) == wire.Token("t" * 128, "74")
    with pytest.raises(wire.GarbageAnswer):
        wire.parse_token({"data": {"account_id": "74"}})


def test_package_strings_numbers_and_nulls() -> None:
    doc = {
        "data": {
            "label": "Registered User",
            "max_upload_size": "5368709120",
            "concurrent_uploads": 0,
        }
    }
    assert wire.parse_package(doc) == Package("Registered User", 5368709120, 0)
    doc = {"data": {"label": None, "max_upload_size": None}}
    assert wire.parse_package(doc) == Package("", 0, 0)


def test_listing_as_real_servers_send_it() -> None:
    doc = {
        "data": {
            "folders": [
                {"id": "3", "parentId": "1", "folderName": "Sub", "totalSize": "0",
                 "url_folder": "http://s/folder/3/Sub", "child_folder_count": 0},
            ],
            "files": [
                {"id": 8, "filename": "b.txt", "shortUrl": "i", "fileSize": 10, "status": "active",
                 "folderId": None, "url_file": "http://s/i", "keywords": "b,txt"},
            ],
        },
        "_status": "success",
    }  # fmt: skip
    listing = wire.parse_listing(doc)
    assert listing.folders == [RemoteFolder("3", "Sub", "1", "http://s/folder/3/Sub")]
    assert listing.files == [RemoteFile("8", "b.txt", 10, None, "active", "http://s/i", "i")]


@pytest.mark.parametrize(
    "data", [{"folders": [], "files": []}, [], {"folders": None, "files": None}, {}]
)
def test_empty_listings(data: Any) -> None:
    listing = wire.parse_listing({"data": data, "_status": "success"})
    assert listing.folders == [] and listing.files == []


def test_file_info_uses_file_status_and_moved_to_root_folder_zero_is_root() -> None:
    info = {"id": "1", "filename": "hello (2).txt", "fileSize": "12", "file_status": "trash",
            "folderId": "0", "shortUrl": "b"}  # fmt: skip
    parsed = wire.parse_file(info)
    assert parsed.status == "trash" and parsed.folder_id is None and parsed.size == 12


def test_numeric_names_and_missing_fields() -> None:
    assert wire.parse_folder({"id": 5, "folderName": 2024, "parentId": None}).name == "2024"
    with pytest.raises(wire.GarbageAnswer):
        wire.parse_file({"id": "1", "filename": "a"})  # no fileSize
    with pytest.raises(wire.GarbageAnswer):
        wire.parse_folder("not an object")
    with pytest.raises(wire.GarbageAnswer):
        wire.parse_file({"id": True, "filename": "a", "fileSize": 1})


def test_upload_answer_new_content_and_deduplicated_content() -> None:
    item = {"name": "hello.txt", "size": 12, "hash": False, "file_id": "1",
            "url": "http://s/b/hello.txt", "short_url": "b"}  # fmt: skip
    new = {"data": [item], "_status": "success"}
    answer = wire.parse_upload(new)
    assert (answer.file_id, answer.name, answer.size, answer.md5) == ("1", "hello.txt", 12, None)
    dedup = {"data": [{"name": "c.txt", "size": "12", "file_id": 12,
                       "hash": "6F5902AC237024BDD0C176CB93063DC4"}]}  # fmt: skip
    answer = wire.parse_upload(dedup)
    assert answer.md5 == "6f5902ac237024bdd0c176cb93063dc4" and answer.size == 12
    blank = {"data": {"name": "x", "size": 1, "file_id": "2", "hash": ""}}
    assert wire.parse_upload(blank).md5 is None


def test_download_url_must_be_a_url() -> None:
    url = "http://s/b/hello_(2).txt?download_token=ab"
    assert wire.parse_download_url({"data": {"file_id": "1", "download_url": url}}) == url
    with pytest.raises(wire.GarbageAnswer):
        wire.parse_download_url({"data": {"download_url": False}})


# -- download URLs --------------------------------------------------------------------


def test_download_urls_escape_raw_names_and_keep_the_token() -> None:
    raw = "http://127.0.0.1:8089/1P/i>_Ünï_文件&a+b?c.txt?download_token=ff00"
    first, second = download_urls(raw)
    assert first == (
        "http://127.0.0.1:8089/1P/i%3E_%C3%9Cn%C3%AF_%E6%96%87%E4%BB%B6%26a%2Bb%3Fc.txt"
        "?download_token=ff00"
    )
    assert second == "http://127.0.0.1:8089/1P?download_token=ff00"


def test_download_urls_leave_encoded_urls_alone() -> None:
    url = "https://s/b/hello%20(2).txt?download_token=ff"
    assert download_urls(url) == [url, "https://s/b?download_token=ff"]
    assert download_urls("https://s/b?download_token=ff") == ["https://s/b?download_token=ff"]
    assert download_urls("https://s/dl/b/x%zz.txt")[0] == "https://s/dl/b/x%25zz.txt"


# -- the upload body ------------------------------------------------------------------


def render(parts: wire.MultipartFile) -> bytes:
    return b"".join(parts)


def test_multipart_body_length_md5_and_quoted_filename(tmp_path: Path) -> None:
    data = b"hello world\n" * 1000
    src = tmp_path / "f"
    src.write_bytes(data)
    seen: list[int] = []
    with src.open("rb") as f:
        part = wire.MultipartFile(
            [("access_token", "t"), ("account_id", "74")], 'a "q"\r\n.txt', f, src,
            on_progress=seen.append, chunk=4096,
        )  # fmt: skip
        out = render(part)
    assert len(out) == part.length
    assert part.md5 == hashlib.md5(data).hexdigest() and part.sent == len(data)
    assert sum(seen) == len(data) and max(seen) <= 4096
    assert b'filename="a %22q%22%0D%0A.txt"' in out
    assert data in out


def test_multipart_body_refuses_a_file_that_grows_or_shrinks(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x" * 10_000)
    with src.open("rb") as f:
        parts = iter(wire.MultipartFile([], "f", f, src, chunk=1000))
        next(parts)
        next(parts)
        src.write_bytes(b"x" * 1500)  # truncated and rewritten shorter
        with pytest.raises(ChangedDuringUpload, match="shrank"):
            list(parts)
    src.write_bytes(b"x" * 100)
    with src.open("rb") as f:
        parts = iter(wire.MultipartFile([], "f", f, src, chunk=1000))
        next(parts)
        with src.open("ab") as g:
            g.write(b"more")
        with pytest.raises(ChangedDuringUpload, match="grew"):
            list(parts)


def test_multipart_body_from_a_non_file_is_a_local_error() -> None:
    from syncd.errors import LocalError

    with pytest.raises(LocalError):
        wire.MultipartFile([], "f", io.BytesIO(b"x"), Path("memory"))
