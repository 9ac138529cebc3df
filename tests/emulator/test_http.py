"""Routing and HTTP details (API-observed.md 12a-12c) and the /_emulator helpers."""

from __future__ import annotations

import socket

import httpx

from syncd.emulator import EmulatorServer
from tests.emulator.conftest import Api


def test_unknown_action_is_a_404_with_the_zero_key(api: Api) -> None:
    r = api.raw("file/nope", **api.auth)
    assert r.status_code == 404
    answer = r.json()
    assert list(answer) == ["0", "_status", "_datetime"]
    assert answer["0"] == "No method found within endpoint (file): nope"
    assert answer["_status"] == "error"


def test_token_is_checked_before_the_action(anon: Api) -> None:
    r = anon.raw("file/nope", access_token="x", account_id="1")
    assert r.status_code == 200
    assert r.json()["response"].startswith("Could not validate access_token")


def test_unknown_endpoint_is_a_php_fatal_error_page(api: Api) -> None:
    r = api.raw("nope", **api.auth)
    assert r.status_code == 404 and r.reason_phrase == "Not Found'"
    assert r.headers["content-type"].startswith("text/html")
    assert "SYSTEM ERROR" in r.text


def test_paths_are_case_insensitive(api: Api) -> None:
    api.mkdir("Docs")
    r = api.raw("FOLDER/LISTING", **api.auth)
    assert [f["folderName"] for f in r.json()["data"]["folders"]] == ["Docs"]


def test_get_with_a_query_string_works_for_any_endpoint(api: Api) -> None:
    api.mkdir("Docs")
    r = api.http.get("folder/listing", params=api.auth)
    assert r.json()["data"]["folders"][0]["folderName"] == "Docs"


def test_request_log(api: Api) -> None:
    srv = api.srv
    api.ok("folder/listing")
    api.raw("File/Info", **api.auth)
    assert srv.requests == [
        ("POST", "authorize"),
        ("POST", "folder/listing"),
        ("POST", "file/info"),
    ]
    srv.clear_requests()
    httpx.get(srv.base_url + "_emulator/tree")
    assert srv.requests == []


def test_tree(api: Api) -> None:
    docs = api.mkdir("Docs")["id"]
    sub = api.mkdir("Sub", parent_id=docs)["id"]
    up = api.upload("a.txt", b"abc", sub)
    tree = httpx.get(api.srv.base_url + "_emulator/tree").json()
    assert tree == api.srv.tree()
    assert tree["folders"] == [
        {
            "id": docs,
            "parent_id": None,
            "name": "Docs",
            "status": "active",
            "account_id": "1",
            "path": "Docs",
        },
        {
            "id": sub,
            "parent_id": docs,
            "name": "Sub",
            "status": "active",
            "account_id": "1",
            "path": "Docs/Sub",
        },
    ]
    assert tree["files"] == [
        {
            "id": up["file_id"],
            "name": "a.txt",
            "folder_id": sub,
            "size": 3,
            "md5": "900150983cd24fb0d6963f7d28e17f72",
            "status": "active",
            "account_id": "1",
            "path": "Docs/Sub/a.txt",
        }
    ]


def test_faults_endpoint_reads_and_sets(emulator: EmulatorServer) -> None:
    url = emulator.base_url + "_emulator/faults"
    assert httpx.get(url).json()["fail_rate"] == 0.0
    assert httpx.post(url, json={"latency": 0.01})
    assert emulator.faults.latency == 0.01
    emulator.faults.latency = 0.0


def test_keep_alive_serves_many_requests_on_one_connection(api: Api) -> None:
    host, port = api.srv.base_url.split("//")[1].rstrip("/").split(":")
    body = f"access_token={api.auth['access_token']}&account_id=1".encode()
    request = (
        b"POST /api/v2/folder/listing HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"application/x-www-form-urlencoded\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    with socket.create_connection((host, int(port))) as sock, sock.makefile("rb") as f:
        for _ in range(3):
            sock.sendall(request)
            assert f.readline().startswith(b"HTTP/1.1 200")
            length = 0
            while (line := f.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert b'"_status":"success"' in f.read(length)


def test_site_pages(emulator: EmulatorServer) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        assert http.get("/").status_code == 200
        assert http.get("/favicon.ico").status_code == 404
        assert http.post("/somewhere", content=b"x" * 10).status_code == 404
        assert http.get("/api/v2").status_code == 404
