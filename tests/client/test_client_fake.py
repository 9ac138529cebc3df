"""The client against a scripted fake site: every error mapping, retry and lost response."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from syncd.errors import (
    ApiError,
    AuthRefused,
    ChangedDuringUpload,
    IntegrityError,
    LocalError,
    LostResponse,
    RemoteUnavailable,
    TokenRejected,
    WrongPath,
)
from syncd.remote.uploadapi import UploadApiRemote
from syncd.retry import RetryPolicy
from tests.client.conftest import RemoteFactory
from tests.client.fake_server import FakeServer, Reply, Seen, upload_answer

FILE = {"id": "1", "filename": "a.txt", "fileSize": "3", "file_status": "active", "folderId": "5"}
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def info_ok() -> Reply:
    return Reply.ok({"data": FILE})


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- laziness, token, secrets ---------------------------------------------------------


def test_nothing_to_do_sends_nothing(fake: FakeServer, make_remote: RemoteFactory) -> None:
    make_remote(fake.api_url, fake.key1, fake.key2).close()
    assert fake.seen == []


def test_one_authorize_then_form_posts_and_disable_on_close(
    fake: FakeServer, remote: UploadApiRemote
) -> None:
    fake.script("file/info", info_ok(), info_ok())
    assert remote.file_info("1").folder_id == "5"
    remote.file_info("1")
    remote.close()
    assert fake.endpoints() == ["authorize", "file/info", "file/info", "disable_access_token"]
    request = fake.seen[1]
    assert request.method == "POST" and request.fields["file_id"] == "1"
    assert request.fields["account_id"] == "74" and request.fields["access_token"] in fake.issued
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert fake.tokens == set()
    assert remote.stats.authorizations == 1 and remote.stats.requests["file/info"] == 2


def test_rejected_token_is_refreshed_once_and_the_call_repeated(
    fake: FakeServer, remote: UploadApiRemote
) -> None:
    fake.script("file/info", info_ok(), info_ok())
    remote.file_info("1")
    fake.expire_tokens()  # idle expiry / another process authorized
    remote.file_info("1")
    assert fake.endpoints() == ["authorize", "file/info", "file/info", "authorize", "file/info"]


def test_http_401_from_a_proxy_also_means_reauthorize(
    fake: FakeServer, remote: UploadApiRemote
) -> None:
    fake.script("file/info", Reply(401, b"<html>401</html>"), info_ok())
    remote.file_info("1")
    assert fake.count("authorize") == 2


def test_a_token_rejected_twice_is_not_retried_forever(
    fake: FakeServer, remote: UploadApiRemote
) -> None:
    fake.script("file/info", Reply(401), Reply(401), info_ok())
    with pytest.raises(TokenRejected):
        remote.file_info("1")
    assert fake.count("authorize") == 2 and fake.count("file/info") == 2


def test_concurrent_workers_share_one_token_and_one_refresh(
    fake: FakeServer, make_remote: RemoteFactory
) -> None:
    remote = make_remote(fake.api_url, fake.key1, fake.key2, workers=8)
    fake.default = info_ok()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                remote.file_info("1")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def run_workers() -> None:
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run_workers()
    assert remote.stats.authorizations == 1
    fake.expire_tokens()
    run_workers()
    assert errors == [] and remote.stats.authorizations == 2 and fake.count("authorize") == 2


@pytest.mark.parametrize(
    "message",
    [
        "Could not authenticate user. The key pair may be invalid or your account may be "
        "locked from too many failed logins.",
        "Your account level does not have access to the file upload API. Please contact "
        "site support for more information.",
    ],
)
def test_refused_authorize_is_auth_refused_and_not_retried(
    fake: FakeServer, remote: UploadApiRemote, message: str
) -> None:
    fake.script("authorize", Reply.error(message, style="_status"))
    with pytest.raises(AuthRefused, match=r"account|key pair"):
        remote.package()
    assert fake.endpoints() == ["authorize"]


def test_wrong_keys_are_refused(fake: FakeServer, make_remote: RemoteFactory) -> None:
    remote = make_remote(fake.api_url, "0" * 64, "1" * 64)
    with pytest.raises(AuthRefused):
        remote.list_folder(None)


# -- what is retried, what is not ---------------------------------------------------


@pytest.mark.parametrize(
    "trouble",
    [
        Reply(502, HTML_502),
        Reply(503, b"", headers={"Retry-After": "0"}),
        Reply(200, HTML_502),
        Reply(200, b""),
        Reply(200, b'{"data": {"id": "1"}, "_status": "success"}'),  # fields missing
        Reply(drop="after_body"),
        Reply(drop="before_body"),
        Reply(429, b"slow down", headers={"Retry-After": "0"}),
    ],
    ids=["502", "503", "html-200", "empty", "missing-fields", "reset", "reset-early", "429"],
)
def test_transient_troubles_on_reads_are_retried(
    fake: FakeServer, remote: UploadApiRemote, trouble: Reply
) -> None:
    fake.script("file/info", trouble, trouble, info_ok())
    assert remote.file_info("1").name == "a.txt"
    assert fake.count("file/info") == 3
    assert sum(remote.stats.retries.values()) == 2


def test_retry_causes_are_counted(fake: FakeServer, remote: UploadApiRemote) -> None:
    fake.script("file/info", Reply(502), Reply(429), Reply(200, b"<html>"), info_ok())
    remote.file_info("1")
    assert remote.stats.retries == {"http_502": 1, "rate_limited": 1, "garbage": 1}


def test_read_timeouts_are_retried(fake: FakeServer, make_remote: RemoteFactory) -> None:
    remote = make_remote(fake.api_url, fake.key1, fake.key2, timeout=0.3)
    fake.script("file/info", Reply(delay=1.0), info_ok())
    assert remote.file_info("1").file_id == "1"
    assert remote.stats.retries == {"ReadTimeout": 1}


def test_retry_after_is_honoured(fake: FakeServer, remote: UploadApiRemote) -> None:
    import time

    fake.script("folder/listing", Reply(429, headers={"Retry-After": "1"}))
    fake.script("folder/listing", Reply.ok({"data": {"folders": [], "files": []}}))
    start = time.monotonic()
    remote.list_folder(None)
    assert time.monotonic() - start >= 1.0


def test_permanent_api_errors_are_not_retried(fake: FakeServer, remote: UploadApiRemote) -> None:
    fake.script("file/info", Reply.error("Could not find file based on file_id."))
    with pytest.raises(ApiError) as caught:
        remote.file_info("999999")
    assert caught.value.server_message == "Could not find file based on file_id."
    assert str(caught.value) == "file/info: Could not find file based on file_id."
    assert fake.count("file/info") == 1


@pytest.mark.parametrize("status", [400, 403, 405, 413])
def test_other_client_errors_are_permanent(
    fake: FakeServer, remote: UploadApiRemote, status: int
) -> None:
    fake.script("file/info", Reply(status, b"<html>no</html>"))
    with pytest.raises(ApiError, match=f"HTTP {status}"):
        remote.file_info("1")
    assert fake.count("file/info") == 1


def test_404_names_the_path(fake: FakeServer, remote: UploadApiRemote) -> None:
    fake.script(
        "file/info",
        Reply(404, {"0": "No method found within endpoint (file): info", "_status": "error"}),
    )
    with pytest.raises(WrongPath) as caught:
        remote.file_info("1")
    assert str(caught.value).startswith("HTTP 404 for /api/v2/file/info: check remote.api_url")
    assert "No method found" in str(caught.value)


def test_a_redirect_means_a_wrong_api_url(fake: FakeServer, remote: UploadApiRemote) -> None:
    fake.script("file/info", Reply(301, headers={"Location": "https://files.example/api/v2/"}))
    with pytest.raises(WrongPath, match=r"redirected to files\.example"):
        remote.file_info("1")


def test_a_dead_site_becomes_remote_unavailable(make_remote: RemoteFactory) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    remote = make_remote(f"http://127.0.0.1:{port}/api/v2/", "k" * 64, "k" * 64)
    with pytest.raises(
        RemoteUnavailable, match="account/package: giving up after 6 attempts: authorize: cannot"
    ):
        remote.package()
    assert remote.stats.retries == {"ConnectError": 5}


def test_huge_answers_are_garbage(fake: FakeServer, remote: UploadApiRemote) -> None:
    remote.client.max_answer_bytes = 64 * 1024
    fake.script("file/info", *[Reply(200, b"x" * 1024 * 1024)] * 6)
    with pytest.raises(RemoteUnavailable, match="not a JSON answer"):
        remote.file_info("1")


def test_numbers_instead_of_strings_are_fine(fake: FakeServer, remote: UploadApiRemote) -> None:
    fake.script("account/package", Reply.ok({"data": {"label": "Free", "max_upload_size": 1000,
                                                      "concurrent_uploads": 0}}))  # fmt: skip
    package = remote.package()
    assert package.max_upload_size == 1000 and remote.package() is package  # cached
    assert fake.count("account/package") == 1


# -- non-idempotent calls: folder/create and file/upload ----------------------------


FOLDER = {"id": 9, "parentId": None, "folderName": "Docs", "url_folder": "http://s/folder/9"}


def test_create_folder_sends_the_documented_fields(
    fake: FakeServer, remote: UploadApiRemote
) -> None:
    fake.script("folder/create", Reply.ok({"data": FOLDER}))
    folder = remote.create_folder("Docs", "3", is_public=1, password_md5="ab" * 16)
    assert folder.folder_id == "9" and folder.name == "Docs"
    fields = fake.seen[-1].fields
    assert fields["folder_name"] == "Docs" and fields["parent_id"] == "3"
    assert fields["is_public"] == "1" and fields["access_password"] == "ab" * 16
    fake.script("folder/create", Reply.ok({"data": FOLDER}))
    remote.create_folder("Docs", None)
    assert "parent_id" not in fake.seen[-1].fields and "access_password" not in fake.seen[-1].fields


@pytest.mark.parametrize(
    "trouble",
    [Reply(drop="after_body"), Reply(502, HTML_502), Reply(200, HTML_502), Reply.ok({"data": []})],
    ids=["reset", "502", "html", "no-data"],
)
def test_create_folder_with_a_lost_answer_is_not_repeated(
    fake: FakeServer, remote: UploadApiRemote, trouble: Reply
) -> None:
    fake.script("folder/create", trouble)
    with pytest.raises(LostResponse):
        remote.create_folder("Docs", None)
    assert fake.count("folder/create") == 1


def test_create_folder_refused_before_acting_is_retried(
    fake: FakeServer, remote: UploadApiRemote
) -> None:
    fake.script(
        "folder/create", Reply(429, headers={"Retry-After": "0"}), Reply.ok({"data": FOLDER})
    )
    assert remote.create_folder("Docs", None).folder_id == "9"
    assert fake.count("folder/create") == 2


def test_upload_streams_multipart_with_content_length(
    fake: FakeServer, remote: UploadApiRemote, tmp_path: Path
) -> None:
    data = b"0123456789" * 300_000  # 3 MB: several 1 MiB pieces
    progress: list[int] = []
    result = remote.upload(
        write(tmp_path, "big.bin", data), "big.bin", "5", on_progress=progress.append
    )
    seen = fake.seen[-1]
    assert seen.endpoint == "file/upload" and seen.headers["Content-Type"].startswith(
        "multipart/form-data; boundary="
    )
    assert "Transfer-Encoding" not in seen.headers
    assert int(seen.headers["Content-Length"]) > len(data)
    assert seen.fields["folder_id"] == "5" and seen.fields["account_id"] == "74"
    assert seen.file_md5 == hashlib.md5(data).hexdigest() == result.md5
    assert result.size == len(data) == sum(progress) and result.file_id == "17"
    assert result.name == "big.bin"


def test_upload_to_the_root_sends_no_folder_id(
    fake: FakeServer, remote: UploadApiRemote, tmp_path: Path
) -> None:
    remote.upload(write(tmp_path, "a", b"abc"), "a.txt", None)
    assert "folder_id" not in fake.seen[-1].fields


def test_upload_filename_quotes_like_browsers(
    fake: FakeServer, remote: UploadApiRemote, tmp_path: Path
) -> None:
    result = remote.upload(write(tmp_path, "q", b"abc"), 'it\'s "q"\r\n ü.txt', None)
    assert fake.seen[-1].filename == "it's %22q%22%0D%0A ü.txt"
    assert result.name == "its %22q%22%0D%0A ü.txt"  # what the server stored, for the caller


def test_upload_hash_mismatch_trashes_the_copy(
    fake: FakeServer, remote: UploadApiRemote, tmp_path: Path
) -> None:
    fake.script("file/upload", Reply(200, lambda seen: upload_answer(seen, hash="0" * 32)))
    fake.script("file/delete", Reply.ok({"data": {**FILE, "file_status": "trash"}}))
    with pytest.raises(IntegrityError, match="hash"):
        remote.upload(write(tmp_path, "a", b"abc"), "a.txt", None)
    assert fake.endpoints()[-1] == "file/delete" and fake.seen[-1].fields["file_id"] == "17"


def test_upload_size_mismatch_without_hash_trashes_the_copy(
    fake: FakeServer, remote: UploadApiRemote, tmp_path: Path
) -> None:
    fake.script(
        "file/upload", Reply(200, lambda seen: upload_answer(seen, size=seen.file_size - 1))
    )
    with pytest.raises(IntegrityError, match="size 2 != 3 bytes sent"):
        remote.upload(write(tmp_path, "a", b"abc"), "a.txt", None)
    assert fake.count("file/delete") == 1


def test_upload_matching_hash_is_accepted(
    fake: FakeServer, remote: UploadApiRemote, tmp_path: Path
) -> None:
    def dedup(seen: Seen) -> dict[str, Any]:  # what a 4.x site says for known content
        return upload_answer(seen, hash=seen.file_md5.upper(), size=str(seen.file_size))

    fake.script("file/upload", Reply(200, dedup))
    result = remote.upload(write(tmp_path, "a", b"abc"), "a.txt", None)
    assert result.md5 == hashlib.md5(b"abc").hexdigest()


@pytest.mark.parametrize(
    "trouble",
    [
        Reply(drop="after_body"),
        Reply(502, HTML_502),
        Reply(504, b""),
        Reply(200, b"<html>gateway</html>"),
        Reply.error("Failed reading response from: http://s/core/page/ajax/api_upload_handler"
                    ".ajax.php. Response: <div>SYSTEM ERROR</div>"),
        Reply.error("Error uploading file. No response received from: http://s/x"),
        Reply.ok({"data": [{"name": "a.txt"}]}),
    ],
    ids=["reset", "502", "504-empty", "html", "failed-reading", "no-response", "no-file-id"],
)  # fmt: skip
def test_upload_with_a_lost_answer_raises_lost_response_without_resending(
    fake: FakeServer, remote: UploadApiRemote, tmp_path: Path, trouble: Reply
) -> None:
    progress: list[int] = []
    fake.script("file/upload", trouble)
    with pytest.raises(LostResponse):
        remote.upload(write(tmp_path, "a", b"abc"), "a.txt", None, on_progress=progress.append)
    assert fake.count("file/upload") == 1
    assert sum(progress) == 0  # the progress of the lost attempt was taken back


def test_upload_read_timeout_is_a_lost_response(
    fake: FakeServer, make_remote: RemoteFactory, tmp_path: Path
) -> None:
    remote = make_remote(fake.api_url, fake.key1, fake.key2, timeout=0.3)
    fake.script("file/upload", Reply(delay=1.0))
    with pytest.raises(LostResponse, match="ReadTimeout"):
        remote.upload(write(tmp_path, "a", b"abc"), "a.txt", None)
    assert fake.count("file/upload") == 1


def test_upload_refused_before_storing_is_retried(
    fake: FakeServer, remote: UploadApiRemote, tmp_path: Path
) -> None:
    fake.script("file/upload", Reply(429, headers={"Retry-After": "0"}))
    progress: list[int] = []
    result = remote.upload(write(tmp_path, "a", b"abc"), "a.txt", None, on_progress=progress.append)
    assert result.file_id == "17" and fake.count("file/upload") == 2 and sum(progress) == 3


def test_upload_with_an_expired_token_is_sent_again_once(
    fake: FakeServer, remote: UploadApiRemote, tmp_path: Path
) -> None:
    remote.authorize()
    fake.expire_tokens()
    result = remote.upload(write(tmp_path, "a", b"abc"), "a.txt", None)
    assert result.size == 3
    assert fake.endpoints() == ["authorize", "file/upload", "authorize", "file/upload"]


def test_upload_permanent_error(fake: FakeServer, remote: UploadApiRemote, tmp_path: Path) -> None:
    fake.script("file/upload", Reply.error("Filesize received was zero."))
    with pytest.raises(ApiError, match="zero"):
        remote.upload(write(tmp_path, "e", b""), "e.txt", None)


def test_upload_of_a_missing_file_is_a_local_error(remote: UploadApiRemote, tmp_path: Path) -> None:
    with pytest.raises(LocalError):
        remote.upload(tmp_path / "missing", "missing", None)


@pytest.mark.parametrize("change", ["grow", "shrink"])
def test_upload_of_a_file_changing_meanwhile_is_stopped(
    fake: FakeServer, remote: UploadApiRemote, tmp_path: Path, change: str
) -> None:
    src = write(tmp_path, "live.log", b"x" * 3 * 1024 * 1024)

    def meddle(delta: int) -> None:
        if delta > 0 and not meddle.done:  # type: ignore[attr-defined]
            meddle.done = True  # type: ignore[attr-defined]
            if change == "grow":
                with src.open("ab") as f:
                    f.write(b"more")
            else:
                with src.open("r+b") as f:
                    f.truncate(1024 * 1024 + 10)

    meddle.done = False  # type: ignore[attr-defined]
    with pytest.raises(ChangedDuringUpload, match="grew" if change == "grow" else "shrank"):
        remote.upload(src, "live.log", None, on_progress=meddle)
    # The body is cut short of its Content-Length: whatever part of it the server read (it
    # may not have read any yet), it never got the whole file.
    whole = 3 * 1024 * 1024
    assert all(s.endpoint != "file/upload" or s.file_size < whole for s in fake.seen)


# -- download -------------------------------------------------------------------------


def download_reply(fake: FakeServer, path: str) -> Reply:
    url = f"{fake.base}{path}?download_token={'ab' * 32}"
    return Reply.ok({"data": {"file_id": "1", "filename": "x", "download_url": url}})


def test_download_escapes_raw_names_and_hashes_what_it_writes(
    fake: FakeServer, remote: UploadApiRemote
) -> None:
    fake.script("file/download", download_reply(fake, "/b/i>_Ünï&a+b?.txt"))
    fake.default = Reply(200, b"hello world\n")
    out = io.BytesIO()
    result = remote.download("1", out)
    get = fake.seen[-1]
    assert get.method == "GET" and get.endpoint == "/b/i%3E_%C3%9Cn%C3%AF%26a%2Bb%3F.txt"
    assert out.getvalue() == b"hello world\n"
    assert result.size == 12 and result.md5 == hashlib.md5(b"hello world\n").hexdigest()


def test_download_falls_back_to_the_short_url_and_never_judges_by_status(
    fake: FakeServer, remote: UploadApiRemote
) -> None:
    fake.script("file/download", download_reply(fake, "/b/bad name.txt"))
    fake.script("/b/bad%20name.txt", Reply(500, b"PHP error"))
    fake.script("/b", Reply(200, b"<html>error page</html>"))
    out = io.BytesIO()
    result = remote.download("1", out)
    assert [s.endpoint for s in fake.seen if s.method == "GET"] == ["/b/bad%20name.txt", "/b"]
    assert out.getvalue() == b"<html>error page</html>" and result.size == 23


def test_download_retries_rewind_the_destination(fake: FakeServer, remote: UploadApiRemote) -> None:
    fake.script("file/download", download_reply(fake, "/b"))
    fake.script("/b", Reply(200, b"partial-then-dropped" * 1000, drop="after_body"))
    fake.script("/b", Reply(503, b""), Reply(200, b"the bytes"))
    out = io.BytesIO(b"keep:")
    out.seek(5)
    progress: list[int] = []
    result = remote.download("1", out, on_progress=progress.append)
    assert out.getvalue() == b"keep:the bytes" and result.size == 9 and sum(progress) == 9


# -- secrets --------------------------------------------------------------------------


def test_secrets_never_reach_logs_errors_or_reprs(
    fake: FakeServer, make_remote: RemoteFactory, tmp_path: Path
) -> None:
    registered: list[str] = []
    remote = make_remote(
        fake.api_url,
        fake.key1,
        fake.key2,
        policy=RetryPolicy.fast(attempts=2),
        on_secret=registered.append,
    )
    texts: list[str] = [repr(remote.client.config)]

    def echo(seen: Seen) -> dict[str, Any]:  # a debug page that echoes the request
        return {"status": "error", "response": f"bad request {seen.fields}"}

    with capture_logs() as logs:
        fake.script("file/info", Reply(200, lambda seen: echo(seen)))
        fake.script("file/edit", Reply(502, f"<pre>{fake.key1} {fake.key2}</pre>".encode()))
        fake.script("file/edit", Reply(200, lambda seen: f"<pre>{seen.fields}</pre>".encode()))
        calls: list[Callable[[], object]] = [
            lambda: remote.file_info("1"),
            lambda: remote.rename_file("1", "b"),
        ]
        for call in calls:
            with pytest.raises(Exception) as caught:
                call()
            exc: BaseException | None = caught.value
            while exc is not None:
                texts.append(f"{exc!s} {exc!r}")
                exc = exc.__cause__ or exc.__context__
        fake.script("file/upload", Reply(drop="after_body"))
        with pytest.raises(LostResponse) as lost:
            remote.upload(write(tmp_path, "a", b"abc"), "a.txt", None)
        texts.append(str(lost.value))
        remote.close()
    texts.extend(str(event) for event in logs)
    secrets = [fake.key1, fake.key2, *fake.issued]
    assert set(remote.secrets()) == set(secrets) and registered == fake.issued
    blob = "\n".join(texts)
    assert "retrying" in blob
    for secret in secrets:
        assert secret not in blob
