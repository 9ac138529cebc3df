"""The received ``upload_file`` part: hashed as it arrives, then given a place on disk.

Up to ``SPILL`` bytes stay in memory (most files are small, and a file creation is the
costly part of a small upload); beyond that the bytes go through two threads, one hashing
and one writing a temporary file, so a 5 GiB upload needs a few MiB of memory and runs at
disk speed. Blobs are content-addressed, so identical content is stored once.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

SPILL = 1 << 20  # uploads up to this size never touch a temporary file
STAGE_QUEUE = 4  # chunks queued per stage: bounds a big upload's memory to a few MiB


@dataclass
class Upload:
    """The received ``upload_file`` part: its raw name, size and MD5, bytes kept aside."""

    filename: str
    size: int = 0
    md5: str = ""
    too_big: bool = False
    data: bytearray | None = field(default_factory=bytearray)
    tmp_path: Path | None = None

    def discard(self) -> None:
        if self.tmp_path is not None:
            self.tmp_path.unlink(missing_ok=True)
            self.tmp_path = None
        self.data = None


class _Stage:
    """Applies ``fn`` to each chunk in its own thread. A big upload runs two stages (MD5
    and disk write) beside the receiving thread: each of the three runs at a few hundred
    MB/s here and releases the GIL, so in parallel they nearly add up."""

    def __init__(self, fn: Callable[[memoryview | bytes], object], name: str) -> None:
        self._fn = fn
        self._queue: queue.Queue[memoryview | bytes | None] = queue.Queue(maxsize=STAGE_QUEUE)
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:  # after a failure keep draining: never block the producer
                try:
                    self._fn(item)
                except Exception as exc:
                    self._error = exc

    def put(self, chunk: memoryview | bytes) -> None:
        self._queue.put(chunk)  # chunks are slices of immutable socket reads: no copy needed

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class UploadSink:
    """Receives the upload part: in memory up to SPILL, then through hash/write stages."""

    def __init__(self, upload: Upload, tmp_dir: Path, limit: int) -> None:
        self.upload = upload
        self._tmp_dir = tmp_dir
        self._limit = limit
        self._md5 = hashlib.md5()
        self._fh: IO[bytes] | None = None
        self._stages: list[_Stage] = []

    def write(self, chunk: memoryview) -> None:
        up = self.upload
        up.size += len(chunk)
        if up.too_big:
            return
        if up.size > self._limit:
            up.too_big = True
            self.close()
            up.discard()
            return
        if not self._stages:
            assert up.data is not None
            if len(up.data) + len(chunk) <= SPILL:
                up.data += chunk
                return
            up.tmp_path = self._tmp_dir / uuid.uuid4().hex
            self._fh = open(up.tmp_path, "wb")  # noqa: SIM115 - closed in close()
            self._stages = [
                _Stage(self._md5.update, "emulator-md5"),
                _Stage(self._fh.write, "emulator-write"),
            ]
            first, up.data = bytes(up.data), None
            for stage in self._stages:
                stage.put(first)
        for stage in self._stages:
            stage.put(chunk)

    def close(self) -> None:
        stages, self._stages = self._stages, []
        fh, self._fh = self._fh, None
        try:
            for stage in stages:
                stage.close()
        finally:
            if fh is not None:
                fh.close()
        if not stages and self.upload.data is not None:
            self._md5.update(self.upload.data)
        self.upload.md5 = self._md5.hexdigest()


def publish_blob(upload: Upload, target: Path) -> None:
    """Give the upload's bytes their content-addressed place, or drop them if an intact
    copy is already there. Small uploads are written straight to the final name (one file
    creation: the costly part of a small upload); a torn blob left by a crash has the wrong
    size (the size is in its name) and is replaced."""
    if _intact(target, upload.size):
        upload.discard()
        return
    if upload.tmp_path is not None:
        os.replace(upload.tmp_path, target)
        upload.tmp_path = None
        return
    data, upload.data = upload.data or b"", None
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        if _intact(target, len(data)):
            return  # a concurrent upload of the same bytes won the race
        tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _intact(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False
