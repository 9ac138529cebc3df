"""A thin httpx client for the emulator tests: real HTTP, no mocks, terse scenarios."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncd.emulator import EmulatorServer

Json = dict[str, Any]


class Api:
    """Calls the API like a site's client would: form POSTs, multipart uploads."""

    def __init__(self, srv: EmulatorServer) -> None:
        self.srv = srv
        self.http = httpx.Client(base_url=srv.api_url, timeout=30)
        self.auth: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def raw(self, endpoint: str, **params: Any) -> httpx.Response:
        return self.http.post(endpoint, data={k: str(v) for k, v in params.items()})

    def post(self, endpoint: str, **params: Any) -> Json:
        """An authenticated call; returns the decoded JSON answer."""
        r = self.raw(endpoint, **{**self.auth, **params})
        assert r.headers["content-type"].startswith("application/json"), r.text
        answer: Json = r.json()
        return answer

    def ok(self, endpoint: str, **params: Any) -> Json:
        answer = self.post(endpoint, **params)
        assert answer.get("_status") == "success", answer
        return answer

    def error(self, endpoint: str, **params: Any) -> str:
        """The message of an expected application error (HTTP 200, 4.x style)."""
        answer = self.post(endpoint, **params)
        assert answer.get("status") == "error" and "_status" not in answer, answer
        message: str = answer["response"]
        return message

    def login(self) -> Api:
        data = self.ok_plain("authorize", key1=self.srv.key1, key2=self.srv.key2)["data"]
        self.auth = {"access_token": data["access_token"], "account_id": data["account_id"]}
        return self

    def ok_plain(self, endpoint: str, **params: Any) -> Json:
        answer: Json = self.raw(endpoint, **params).json()
        assert answer.get("_status") == "success", answer
        return answer

    def upload(self, name: str, content: bytes, folder_id: str | None = None) -> Json:
        """file/upload; returns the answer's single ``data`` element."""
        fields = dict(self.auth)
        if folder_id is not None:
            fields["folder_id"] = folder_id
        r = self.http.post("file/upload", data=fields, files={"upload_file": (name, content)})
        answer: Json = r.json()
        assert answer.get("_status") == "success", answer
        assert isinstance(answer["data"], list) and len(answer["data"]) == 1
        item: Json = answer["data"][0]
        return item

    def upload_raw(
        self, disposition: bytes, content: bytes, extra: dict[str, str] | None = None
    ) -> Json:
        """An upload whose part header is given verbatim (quotes, backslashes …)."""
        boundary = b"emulatortestboundary"
        fields = {**self.auth, **(extra or {})}
        parts = [
            b"--"
            + boundary
            + f'\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
            + v.encode()
            + b"\r\n"
            for k, v in fields.items()
        ]
        parts.append(
            b"--"
            + boundary
            + b"\r\nContent-Disposition: "
            + disposition
            + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
            + content
            + b"\r\n"
        )
        body = b"".join(parts) + b"--" + boundary + b"--\r\n"
        r = self.http.post(
            "file/upload",
            content=body,
            headers={"Content-Type": "multipart/form-data; boundary=" + boundary.decode()},
        )
        answer: Json = r.json()
        return answer

    def listing(self, parent_folder_id: str | None = None) -> Json:
        params = {} if parent_folder_id is None else {"parent_folder_id": parent_folder_id}
        data: Json = self.ok("folder/listing", **params)["data"]
        return data

    def mkdir(self, name: str, parent_id: str | None = None, **params: Any) -> Json:
        if parent_id is not None:
            params["parent_id"] = parent_id
        data: Json = self.ok("folder/create", folder_name=name, **params)["data"]
        return data


@pytest.fixture
def api(emulator: EmulatorServer) -> Iterator[Api]:
    """A logged-in client of the default emulator."""
    client = Api(emulator).login()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def anon(emulator: EmulatorServer) -> Iterator[Api]:
    """A client of the default emulator that has not authorized."""
    client = Api(emulator)
    try:
        yield client
    finally:
        client.close()
