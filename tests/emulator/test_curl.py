"""The JSON shapes as a plain curl user sees them (curl is the users' first client)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from syncd.emulator import EmulatorServer

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


def curl(*args: str) -> Any:
    out = subprocess.run(["curl", "-sS", *args], check=True, capture_output=True, timeout=60)
    return json.loads(out.stdout)


def test_curl_session(emulator: EmulatorServer, tmp_path: Path) -> None:
    api = emulator.api_url
    auth = curl("-d", f"key1={emulator.key1}", "-d", f"key2={emulator.key2}", api + "authorize")
    assert auth["_status"] == "success" and len(auth["data"]["access_token"]) == 128
    token = ["-d", f"access_token={auth['data']['access_token']}", "-d", "account_id=1"]
    folder = curl(*token, "-d", "folder_name=Docs", api + "folder/create")
    assert folder["response"] == "Folder successfully created."
    assert folder["data"]["id"] == "1" and folder["data"]["parentId"] is None

    (tmp_path / "hello.txt").write_bytes(b"hello world\n")
    form = ["-F", f"access_token={auth['data']['access_token']}", "-F", "account_id=1"]
    upload = curl(
        *form,
        "-F",
        "folder_id=1",
        "-F",
        f"upload_file=@{tmp_path / 'hello.txt'}",
        api + "file/upload",
    )
    assert upload["response"] == "File uploaded"
    assert upload["data"][0]["name"] == "hello.txt" and upload["data"][0]["size"] == 12
    assert upload["data"][0]["hash"] is False

    listing = curl(*token, "-d", "parent_folder_id=1", api + "folder/listing")
    assert [f["filename"] for f in listing["data"]["files"]] == ["hello.txt"]
    assert listing["data"]["folders"] == []

    error = curl(*token, api + "file/info")
    assert error == {
        "status": "error",
        "response": "Please provide the file_id param.",
        "_datetime": error["_datetime"],
    }
