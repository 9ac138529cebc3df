"""Big uploads and downloads stream: memory stays flat whatever the file size."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

from tests.emulator.conftest import Api

SIZE = 200 * 1024 * 1024
LIMIT = 30 * 1024 * 1024


def make_file(path: Path) -> str:
    """A 200 MiB file: a repeated 1 MiB pattern (cheap to write, not all zeros)."""
    block = os.urandom(1 << 20)
    digest = hashlib.md5()
    with path.open("wb") as fh:
        for _ in range(SIZE // len(block)):
            fh.write(block)
            digest.update(block)
    return digest.hexdigest()


def test_200mb_upload_and_download_use_little_memory(api: Api, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    md5 = make_file(big)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with big.open("rb") as fh:
            r = api.http.post(
                "file/upload", data=api.auth, files={"upload_file": ("big.bin", fh)}, timeout=120
            )
        item = r.json()["data"][0]
        _, upload_peak = tracemalloc.get_traced_memory()

        tracemalloc.reset_peak()
        url = api.ok("file/download", file_id=item["file_id"])["data"]["download_url"]
        digest, received = hashlib.md5(), 0
        with api.http.stream("GET", url, timeout=120) as resp:
            for chunk in resp.iter_bytes():
                digest.update(chunk)
                received += len(chunk)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert item["size"] == SIZE
    assert api.srv.tree()["files"][0]["md5"] == md5
    assert received == SIZE and digest.hexdigest() == md5
    assert upload_peak - base < LIMIT, f"upload peak grew {(upload_peak - base) >> 20} MiB"
    assert download_peak - base < LIMIT, f"download peak grew {(download_peak - base) >> 20} MiB"
    assert list((api.srv.store.tmp_dir).iterdir()) == []  # no temporary file left behind
