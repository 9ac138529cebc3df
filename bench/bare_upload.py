"""The baseline of ``initial_sync.py``: the least a Python client must do to upload files.

    python bench/bare_upload.py API_URL KEY1 KEY2 LIST_FILE [--workers 4]

Authorizes once, creates one folder and uploads every file named in LIST_FILE (one path
a line) into it with a pool of httpx threads: no scan, no state, no hashing, no retries,
no renaming. Prints one JSON line: files uploaded and seconds spent after start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("api_url")
    parser.add_argument("key1")
    parser.add_argument("key2")
    parser.add_argument("list_file")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    api = args.api_url if args.api_url.endswith("/") else args.api_url + "/"
    with open(args.list_file, encoding="utf-8") as fh:
        paths = fh.read().splitlines()
    start = time.perf_counter()
    limits = httpx.Limits(max_connections=args.workers, max_keepalive_connections=args.workers)
    with httpx.Client(limits=limits, timeout=120) as client:

        def ok(response: httpx.Response) -> dict[str, Any]:
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            if body.get("_status", body.get("status")) != "success":
                raise SystemExit(f"bare_upload: API error: {body}")
            return body

        token = ok(client.post(api + "authorize", data={"key1": args.key1, "key2": args.key2}))
        auth = {
            "access_token": token["data"]["access_token"],
            "account_id": str(token["data"]["account_id"]),
        }
        folder = ok(client.post(api + "folder/create", data={**auth, "folder_name": "bare"}))
        fields = {**auth, "folder_id": str(folder["data"]["id"])}
        done = 0
        lock = threading.Lock()

        def upload(path: str) -> None:
            nonlocal done
            with open(path, "rb") as fh:
                files = {"upload_file": (os.path.basename(path), fh)}
                ok(client.post(api + "file/upload", data=fields, files=files))
            with lock:
                done += 1

        with ThreadPoolExecutor(args.workers) as pool:
            for future in [pool.submit(upload, p) for p in paths]:
                future.result()
    print(json.dumps({"files": done, "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
