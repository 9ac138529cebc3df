"""Burst coalescing under ``syncd run``: one file rewritten 1,000 times in 2 s -> uploads.

    python bench/burst.py                  # 1,000 rewrites in 2 s, debounce 0.5 s, 3 runs
    python bench/burst.py --smoke          # CI: 50 rewrites in 0.5 s, one run

The daemon watches a small tree; once it is ready, one file is rewritten (open, write,
close) at an even pace. Counted: ``file/upload`` requests the emulator received from
the first write until the daemon has the last content stored. The baseline is what an
``inotifywait -e close_write | curl`` loop would send: one upload per close-after-write,
counted in the same run by a watchdog observer on the same file. The stored copy must
end with the last content written (coalescing must never lose the final write).
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

from common import (
    Emulator,
    base_parser,
    emit,
    header,
    make_tree,
    median,
    syncd_run,
    verdict,
    workdir,
    write_config,
)
from watchdog.events import FileClosedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer


class CloseCounter(FileSystemEventHandler):
    """Counts close-after-write events on one file: a naive uploader's uploads."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.count = 0
        self._lock = threading.Lock()

    def on_closed(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileClosedEvent) and event.src_path == self.path:
            with self._lock:
                self.count += 1


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.05)


def one_run(work: Path, writes: int, seconds: float, debounce: float) -> dict[str, Any]:
    local = work / "local"
    make_tree(local, files=20, dirs=2, size=512)
    hot = local / "d0000" / "hot.txt"
    hot.write_bytes(b"initial\n")
    with Emulator(work / "emu") as emu:
        config = write_config(work / "syncd.toml", emu, local=local,
                              state_db=work / "state" / "state.db", debounce=debounce,
                              max_delay=max(60.0, debounce))  # fmt: skip
        with syncd_run(work, config, flags=("--log-format", "json")) as (daemon, manager):
            manager.wait_ready(daemon, 60)
            emu.clear()
            counter = CloseCounter(hot)
            observer = Observer()
            observer.schedule(counter, str(hot.parent))
            observer.start()
            start = time.monotonic()
            content = b""
            for i in range(writes):
                content = f"rewrite {i:06d} ".encode() * (1 + i % 7)
                with open(hot, "wb") as fh:
                    fh.write(content)
                delay = start + (i + 1) * seconds / writes - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            burst = time.monotonic() - start
            final = hashlib.md5(content).hexdigest()
            rel = "bench/" + hot.relative_to(local).as_posix()

            def stored() -> bool:
                return any(f["path"] == rel and f["md5"] == final for f in emu.active_files())

            wait_for(stored, debounce + 30, "the last content to be uploaded")
            settled = time.monotonic() - start
            time.sleep(debounce + 1.0)  # anything else still coming would show now
            observer.stop()
            observer.join()
            requests = emu.requests()
    return {"uploads": requests.get("file/upload", 0), "naive": counter.count,
            "burst_s": burst, "settled_s": settled, "requests": requests}  # fmt: skip


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--debounce", type=float, default=0.5)
    args = parser.parse_args()
    if args.smoke:
        args.writes, args.seconds, args.debounce, args.runs = 50, 0.5, 0.3, 1
    header("burst coalescing: one file rewritten under syncd run", args)
    print(f"# {args.writes} rewrites in {args.seconds:g} s, debounce {args.debounce:g} s; "
          f"{args.runs} runs")  # fmt: skip
    results = []
    with workdir("burst", keep=args.keep) as work:
        for i in range(args.runs):
            run_dir = work / f"run{i}"
            run_dir.mkdir()
            r = one_run(run_dir, args.writes, args.seconds, args.debounce)
            results.append(r)
            print(f"  run {i + 1}: syncd {r['uploads']} upload(s), naive watcher "
                  f"{r['naive']}; burst took {r['burst_s']:.2f} s, last content stored "
                  f"{r['settled_s']:.2f} s after the first write; requests {r['requests']}")
    uploads = max(r["uploads"] for r in results)
    naive = median([r["naive"] for r in results])
    print()
    print(f"syncd run uploads (worst run): {uploads}  {verdict(uploads, 2, at_least=False)}")
    print(f"inotifywait|curl-style uploads: {naive:g} (close-after-write events seen)")
    emit("burst", {"writes": args.writes, "seconds": args.seconds, "uploads": uploads,
                   "naive_uploads": naive,
                   "settled_s": median([r["settled_s"] for r in results])})  # fmt: skip


if __name__ == "__main__":
    main()
