"""The client against the bundled emulator over real HTTP: every endpoint, both error
styles, token expiry and revocation, injected faults, lost responses, names, big files."""

from __future__ import annotations

import hashlib
import io
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from syncd.emulator import EmulatorServer
from syncd.errors import ApiError, LostResponse, RemoteUnavailable, WrongPath
from syncd.remote.uploadapi import UploadApiRemote
from syncd.retry import RetryPolicy
from tests.client.conftest import RemoteFactory
from tests.conftest import EmulatorFactory


def connect(srv: EmulatorServer, make_remote: RemoteFactory, **kwargs: Any) -> UploadApiRemote:
    return make_remote(srv.api_url, srv.key1, srv.key2, **kwargs)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def api_calls(srv: EmulatorServer, endpoint: str) -> int:
    return sum(1 for _, ep in srv.requests if ep == endpoint)


def stored(srv: EmulatorServer) -> dict[str, dict[str, Any]]:
    """The emulator's files by name."""
    return {f["name"]: f for f in srv.tree()["files"]}


class FaultOnce:
    """An on_retry hook: ``arm(name)`` turns a fault on; the first retry turns it off."""

    def __init__(self, srv: EmulatorServer) -> None:
        self.srv = srv
        self.name = ""

    def arm(self, name: str, value: float = 1.0) -> None:
        setattr(self.srv.faults, name, value)
        self.name = name

    def __call__(self, endpoint: str, exc: BaseException) -> None:
        if self.name:
            setattr(self.srv.faults, self.name, 0.0)


# -- every endpoint -------------------------------------------------------------------


@pytest.mark.parametrize("style", ["status", "_status"])
def test_every_endpoint_round_trip(
    emulator_factory: EmulatorFactory, make_remote: RemoteFactory, tmp_path: Path, style: str
) -> None:
    srv = emulator_factory(error_style=style)
    remote = connect(srv, make_remote)
    package = remote.package()
    assert package.max_upload_size > 0 and package.label

    docs = remote.create_folder("Docs", None)
    sub = remote.create_folder("Sub", docs.folder_id, is_public=1, password_md5="a" * 32)
    assert (sub.name, sub.parent_id) == ("Sub", docs.folder_id)
    assert remote.folder_info(sub.folder_id) == sub
    root = remote.list_folder(None)
    assert [f.name for f in root.folders] == ["Docs"] and root.files == []

    data = b"hello world\n"
    up = remote.upload(write(tmp_path, "hello.txt", data), "hello.txt", sub.folder_id)
    assert (up.name, up.size, up.md5) == ("hello.txt", 12, hashlib.md5(data).hexdigest())
    [listed] = remote.list_folder(sub.folder_id).files
    assert (listed.file_id, listed.name, listed.size, listed.folder_id) == (
        up.file_id, "hello.txt", 12, sub.folder_id)  # fmt: skip

    renamed = remote.rename_file(up.file_id, "renamed.md")
    assert renamed.name == "renamed.md"
    moved = remote.move_file(up.file_id, docs.folder_id)
    assert moved.folder_id == docs.folder_id
    info = remote.file_info(up.file_id)
    assert (info.name, info.status, info.size, info.folder_id) == (
        "renamed.md", "active", 12, docs.folder_id)  # fmt: skip

    out = io.BytesIO()
    got = remote.download(up.file_id, out)
    assert out.getvalue() == data and got.md5 == up.md5

    remote.delete_file(up.file_id)
    remote.delete_file(up.file_id)  # repeating it succeeds
    assert remote.file_info(up.file_id).status == "trash"
    assert remote.list_folder(docs.folder_id).files == []
    remote.delete_folder(docs.folder_id)

    srv.clear_requests()
    with pytest.raises(ApiError) as caught:
        remote.file_info("999999")
    assert caught.value.server_message == "Could not find file based on file_id."
    assert api_calls(srv, "file/info") == 1  # permanent: not retried
    remote.close()
    assert srv.requests[-1] == ("POST", "disable_access_token")


def test_names_the_server_alters_are_reported(
    emulator: EmulatorServer, make_remote: RemoteFactory, tmp_path: Path
) -> None:
    remote = connect(emulator, make_remote)
    src = write(tmp_path, "f", b"content")
    assert remote.upload(src, "it's.txt", None).name == "its.txt"
    assert remote.upload(src, 'a "b".txt', None).name == "a %22b%22.txt"
    assert remote.upload(src, "x.txt", None).name == "x.txt"
    assert remote.upload(src, "x.txt", None).name == "x (2).txt"


def test_download_of_names_real_servers_do_not_encode(
    emulator: EmulatorServer, make_remote: RemoteFactory, tmp_path: Path
) -> None:
    remote = connect(emulator, make_remote)
    for i, name in enumerate(["what?.txt", "a&b+c d.txt", "Ünï 文件 >.txt", "100%.txt"]):
        data = f"content {i}".encode()
        up = remote.upload(write(tmp_path, f"f{i}", data), name, None)
        out = io.BytesIO()
        got = remote.download(up.file_id, out)
        assert (out.getvalue(), got.md5) == (data, up.md5), name


def test_corrupt_downloads_are_returned_for_the_caller_to_judge(
    emulator: EmulatorServer, make_remote: RemoteFactory, tmp_path: Path
) -> None:
    remote = connect(emulator, make_remote)
    up = remote.upload(write(tmp_path, "f", b"x" * 1000), "f.bin", None)
    emulator.faults.corrupt_download_rate = 1.0
    got = remote.download(up.file_id, io.BytesIO())
    assert got.size == 1000 and got.md5 != up.md5


# -- the token ------------------------------------------------------------------------


def test_reauthorize_after_idle_expiry(
    emulator_factory: EmulatorFactory, make_remote: RemoteFactory
) -> None:
    now = [1_000_000.0]
    srv = emulator_factory(clock=lambda: now[0])
    remote = connect(srv, make_remote)
    remote.list_folder(None)
    now[0] += 3601  # an hour and a second of idleness
    remote.list_folder(None)
    assert remote.stats.authorizations == 2
    assert [ep for _, ep in srv.requests] == [
        "authorize", "folder/listing", "folder/listing", "authorize", "folder/listing"]  # fmt: skip


def test_reauthorize_after_revocation_by_another_authorize(
    emulator: EmulatorServer, make_remote: RemoteFactory
) -> None:
    first = connect(emulator, make_remote)
    second = connect(emulator, make_remote)
    first.list_folder(None)
    second.list_folder(None)  # revokes first's token, as another process would
    first.list_folder(None)
    assert first.stats.authorizations == 2 and second.stats.authorizations == 1


def test_workers_share_one_token(
    emulator_factory: EmulatorFactory, make_remote: RemoteFactory
) -> None:
    emulator = emulator_factory(seed=7, fail_rate=0.2)
    remote = connect(emulator, make_remote, workers=6, policy=RetryPolicy.fast(attempts=10))
    errors: list[BaseException] = []
    # Tokens die only while every worker waits at the barrier (as idle expiry does: it
    # never kills a token just issued), then all six find theirs dead at once.
    barrier = threading.Barrier(6)

    def work(i: int) -> None:
        try:
            for j in range(3):
                remote.list_folder(None)
                remote.package()
                if barrier.wait() == 0 and j < 2:
                    emulator.store.expire_tokens()
                barrier.wait()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # one token at a time: never more authorizations than expiries + 1
    assert remote.stats.authorizations <= 3


# -- faults ---------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["fail_rate", "html_errors", "reset_rate"])
def test_faults_on_reads_are_retried_and_succeed(
    emulator: EmulatorServer, make_remote: RemoteFactory, fault: str
) -> None:
    once = FaultOnce(emulator)
    remote = connect(emulator, make_remote, on_retry=once)
    remote.authorize()
    once.arm(fault)
    assert remote.list_folder(None).folders == []
    assert sum(remote.stats.retries.values()) == 1
    assert api_calls(emulator, "folder/listing") == 2


def test_429_with_retry_after_is_waited_out(
    emulator_factory: EmulatorFactory, make_remote: RemoteFactory, tmp_path: Path
) -> None:
    srv = emulator_factory(retry_after=0.3)
    once = FaultOnce(srv)
    remote = connect(srv, make_remote, on_retry=once)
    remote.authorize()
    once.arm("rate_limit")
    start = time.monotonic()
    up = remote.upload(write(tmp_path, "f", b"abc"), "f.txt", None)
    assert time.monotonic() - start >= 0.3
    assert remote.stats.retries == {"rate_limited": 1}
    assert api_calls(srv, "file/upload") == 2
    assert stored(srv)["f.txt"]["md5"] == up.md5


@pytest.mark.parametrize("fault", ["late_fail_rate", "reset_rate", "fail_rate"])
def test_upload_with_a_lost_answer_is_not_repeated(
    emulator: EmulatorServer, make_remote: RemoteFactory, tmp_path: Path, fault: str
) -> None:
    remote = connect(emulator, make_remote)
    remote.authorize()
    setattr(emulator.faults, fault, 1.0)
    with pytest.raises(LostResponse):
        remote.upload(write(tmp_path, "f", b"abc" * 1000), "f.txt", None)
    setattr(emulator.faults, fault, 0.0)
    assert api_calls(emulator, "file/upload") == 1
    # late_fail stored the file: the engine finds it by listing before sending again
    names = [f.name for f in remote.list_folder(None).files]
    assert names == (["f.txt"] if fault == "late_fail_rate" else [])


def test_create_folder_with_a_lost_answer_is_not_repeated(
    emulator: EmulatorServer, make_remote: RemoteFactory
) -> None:
    remote = connect(emulator, make_remote)
    remote.authorize()
    emulator.faults.late_fail_rate = 1.0
    with pytest.raises(LostResponse):
        remote.create_folder("Docs", None)
    emulator.faults.late_fail_rate = 0.0
    assert [f.name for f in remote.list_folder(None).folders] == ["Docs"]
    assert api_calls(emulator, "folder/create") == 1


def test_an_outage_outlasting_the_policy_is_transient(
    emulator: EmulatorServer, make_remote: RemoteFactory
) -> None:
    remote = connect(emulator, make_remote, policy=RetryPolicy.fast(attempts=3))
    emulator.faults.fail_rate = 1.0
    with pytest.raises(RemoteUnavailable, match="account/package: giving up after 3 attempts"):
        remote.package()
    assert api_calls(emulator, "authorize") == 3


# -- big files ------------------------------------------------------------------------


def test_a_1_gib_upload_keeps_memory_flat(
    emulator: EmulatorServer, make_remote: RemoteFactory, tmp_path: Path
) -> None:
    size = 1024**3
    src = tmp_path / "big.bin"
    with src.open("wb") as f:  # sparse but for a few marks, so the MD5 is not trivial
        for offset in range(0, size, 64 * 1024**2):
            f.seek(offset)
            f.write(offset.to_bytes(8, "big") * 512)
        f.truncate(size)
    remote = connect(emulator, make_remote, timeout=60.0)
    remote.authorize()
    progress = [0]

    def on_progress(delta: int) -> None:
        progress[0] += delta

    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        up = remote.upload(src, "big.bin", None, on_progress=on_progress)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 50 * 1024**2, f"peak grew by {(peak - base) / 1024**2:.1f} MiB"
    assert up.size == size == progress[0]
    assert stored(emulator)["big.bin"]["md5"] == up.md5
    assert stored(emulator)["big.bin"]["size"] == size


# -- secrets --------------------------------------------------------------------------


def test_secrets_absent_from_logs_and_errors(
    emulator: EmulatorServer, make_remote: RemoteFactory, tmp_path: Path
) -> None:
    texts: list[str] = []
    with capture_logs() as logs:
        remote = connect(emulator, make_remote, policy=RetryPolicy.fast(attempts=2))
        remote.list_folder(None)
        emulator.store.expire_tokens()
        remote.list_folder(None)
        emulator.faults.html_errors = 1.0
        for call in (lambda: remote.list_folder(None), lambda: remote.file_info("1")):
            with pytest.raises(Exception) as caught:
                call()
            texts.append(f"{caught.value!s} {caught.value!r} {caught.value.__cause__!s}")
        emulator.faults.html_errors = 0.0
        emulator.faults.late_fail_rate = 1.0
        with pytest.raises(LostResponse) as lost:
            remote.upload(write(tmp_path, "f", b"abc"), "f.txt", None)
        texts.append(str(lost.value))
        remote.close()
    texts.extend(str(event) for event in logs)
    texts.append(repr(remote.client.config))
    blob = "\n".join(texts)
    secrets = remote.secrets()
    assert len(secrets) == 4 and "retrying" in blob  # key1, key2 and two tokens
    for secret in secrets:
        assert secret not in blob


def test_bwlimit_throttles_uploads(
    emulator: EmulatorServer, make_remote: RemoteFactory, tmp_path: Path
) -> None:
    remote = connect(emulator, make_remote, bwlimit=400_000)
    remote.authorize()
    src = write(tmp_path, "f", b"z" * 600_000)
    start = time.monotonic()
    remote.upload(src, "f.bin", None)
    elapsed = time.monotonic() - start
    # 400 kB of initial credit, then 200 kB at 400 kB/s
    assert 0.45 <= elapsed < 3.0


@pytest.mark.parametrize("endpoint", ["file/nope", "nope"])
def test_unknown_actions_and_endpoints_are_wrong_paths(
    emulator: EmulatorServer, make_remote: RemoteFactory, endpoint: str
) -> None:
    remote = connect(emulator, make_remote)
    with pytest.raises(WrongPath, match=f"HTTP 404 for /api/v2/{endpoint}: check remote.api_url"):
        remote.client.call(endpoint)
    assert api_calls(emulator, endpoint) == 1


def test_a_wrong_api_url_is_a_wrong_path(
    emulator: EmulatorServer, make_remote: RemoteFactory
) -> None:
    remote = make_remote(emulator.base_url + "api/v3/", emulator.key1, emulator.key2)
    with pytest.raises(WrongPath, match="/api/v3/authorize"):
        remote.package()
