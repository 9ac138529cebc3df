"""Fault injection: what proxies and tired PHP hosts do to requests, on demand."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest

from syncd.emulator import EmulatorServer
from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Api


def login(srv: EmulatorServer) -> Api:
    return Api(srv).login()


def test_reset_drops_plain_requests_and_uploads(emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory()
    with login(srv) as api:
        srv.faults.reset_rate = 1.0
        with pytest.raises(httpx.TransportError):
            api.raw("folder/listing", **api.auth)
        with pytest.raises(httpx.TransportError):
            api.http.post(
                "file/upload", data=api.auth, files={"upload_file": ("big.bin", b"x" * (4 << 20))}
            )
        srv.faults.reset_rate = 0.0
        api.ok("folder/listing")  # the client reconnects; nothing was stored
    assert srv.tree()["files"] == []
    assert srv.requests.count(("POST", "file/upload")) == 1


def test_rate_limit_answers_429_with_retry_after(emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory(rate_limit=1.0)
    with httpx.Client(base_url=srv.api_url) as http:
        r = http.post("folder/create", data={"folder_name": "x"})
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.headers["content-type"] == "text/html"
        srv.faults.retry_after = 0.1
        assert http.post("authorize").headers["retry-after"] == "0.1"
        srv.faults.rate_limit = 0.0
        assert http.post("authorize").status_code == 200
    assert srv.tree()["folders"] == []


def test_fail_rate_answers_5xx_html_without_acting(emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory()
    with login(srv) as api:
        srv.faults.fail_rate = 1.0
        codes = set()
        for _ in range(20):
            r = api.raw("folder/create", folder_name="x", **api.auth)
            codes.add(r.status_code)
            assert r.headers["content-type"] == "text/html" and "<html>" in r.text
        assert codes <= {500, 502, 503} and len(codes) > 1
    assert srv.tree()["folders"] == []


def test_late_fail_acts_then_answers_502(emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory()
    with login(srv) as api:
        srv.faults.late_fail_rate = 1.0
        r = api.http.post(
            "file/upload", data=api.auth, files={"upload_file": ("lost.txt", b"answer lost")}
        )
        assert r.status_code == 502
        assert api.raw("folder/create", folder_name="Lost", **api.auth).status_code == 502
        assert api.raw("folder/listing", **api.auth).status_code == 200  # not a late-fail call
        srv.faults.late_fail_rate = 0.0
        listing = api.listing()
    assert [f["filename"] for f in listing["files"]] == ["lost.txt"]
    assert [f["folderName"] for f in listing["folders"]] == ["Lost"]


def test_html_errors_answer_200_with_a_php_error_page(emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory(html_errors=1.0)
    with httpx.Client(base_url=srv.api_url) as http:
        r = http.post("authorize", data={"key1": srv.key1, "key2": srv.key2})
    assert r.status_code == 200 and "SYSTEM ERROR" in r.text
    assert r.headers["content-type"].startswith("text/html")


def test_latency(emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory(latency=0.2)
    with httpx.Client(base_url=srv.api_url) as http:
        start = time.monotonic()
        http.post("authorize")
        assert time.monotonic() - start >= 0.2


def test_corrupt_download_flips_one_byte(emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory()
    content = bytes(range(256)) * 40
    with login(srv) as api:
        file_id = api.upload("c.bin", content)["file_id"]
        url = api.ok("file/download", file_id=file_id)["data"]["download_url"]
        srv.faults.corrupt_download_rate = 1.0
        bad = api.http.get(url).content
        srv.faults.corrupt_download_rate = 0.0
        good = api.http.get(url).content
    assert len(bad) == len(content) and good == content
    assert sum(a != b for a, b in zip(bad, content, strict=True)) == 1


def test_faults_apply_to_downloads_but_never_to_the_emulator_endpoints(
    emulator_factory: EmulatorFactory,
) -> None:
    srv = emulator_factory()
    with login(srv) as api:
        url = api.ok("file/download", file_id=api.upload("a.bin", b"a")["file_id"])
        srv.faults.fail_rate = 1.0
        assert api.http.get(url["data"]["download_url"]).status_code >= 500
        assert api.http.get(srv.base_url + "_emulator/tree").status_code == 200
        srv.faults.fail_rate = 0.0


def test_a_seed_makes_faults_repeatable(emulator_factory: EmulatorFactory) -> None:
    def pattern() -> list[int]:
        srv = emulator_factory(fail_rate=0.5, seed=7)
        with httpx.Client(base_url=srv.api_url) as http:
            return [http.post("authorize").status_code for _ in range(16)]

    first = pattern()
    assert first == pattern() and len(set(first)) > 1


def test_faults_mix_and_the_store_stays_consistent(emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory(seed=3)
    with login(srv) as api:
        srv.faults.fail_rate = srv.faults.reset_rate = srv.faults.late_fail_rate = 0.2
        sent = 0
        for i in range(30):
            try:
                api.http.post(
                    "file/upload",
                    data=api.auth,
                    files={"upload_file": (f"f{i}.bin", b"%d" % i * 1000)},
                )
                sent += 1
            except httpx.TransportError:
                pass
        srv.faults.fail_rate = srv.faults.reset_rate = srv.faults.late_fail_rate = 0.0
        for f in srv.tree()["files"]:
            i = int(f["name"][1:-4])
            assert f["md5"] == hashlib.md5(b"%d" % i * 1000).hexdigest()
        assert sent >= 10
