"""How fast ``syncd run`` mirrors a change: from a file's close to its upload recorded.

    python bench/daemon_latency.py [--files 50] [--debounce 0.5] [--tree N] [--smoke]

A real ``syncd run`` process (started like systemd would, with ``$NOTIFY_SOCKET``; its
READY tells us the start pass is over) watches an empty tree; files are then written one
at a time, and for each the time from ``close()`` returning to the state DB holding the
upload (state ``synced``, MD5 of the written bytes) is measured by polling the DB every
millisecond. Baselines measured in the same run: the debounce itself (a path must stay
quiet that long) and the raw inotify latency (``syncd.watcher`` alone: close -> the
close-write hint, what ``inotifywait`` would show). Target: p50 <= 0.7 s, p95 <= 1.0 s.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import threading
import time
from pathlib import Path

from common import (
    Emulator,
    base_parser,
    header,
    make_tree,
    prime_state_directly,
    syncd_run,
    verdict,
    workdir,
    write_config,
)

from syncd.state import StateStore
from syncd.watcher import Watcher

READY_TIMEOUT = 60.0
RECORD_TIMEOUT = 15.0
PAUSE = 0.2  # seconds between two files: each is measured on an idle daemon


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def write_file(path: Path, data: bytes) -> tuple[float, float]:
    """Write and close ``path``; ``perf_counter()`` right before and right after close."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        before = time.perf_counter()
        os.close(fd)
    return before, time.perf_counter()


def raw_event_latency(root: Path, count: int) -> list[float]:
    """close() -> the last inotify hint for that file (the close-write), through
    ``syncd.watcher`` alone; timed from just before close(): the hint may be handled on
    another core before close() has even returned."""
    root.mkdir(parents=True)
    arrivals: dict[str, list[float]] = {}
    cond = threading.Condition()

    def sink(pair: str, rel: str, kind: str) -> None:
        with cond:
            arrivals.setdefault(rel, []).append(time.perf_counter())
            cond.notify_all()

    out: list[float] = []
    with Watcher({"raw": root}, sink):
        for i in range(count):
            rel = f"raw{i:04d}.bin"
            closing, _ = write_file(root / rel, os.urandom(1024))
            with cond:  # created, modified, closed: three hints per new file
                deadline = time.monotonic() + 1.0
                while len(arrivals.get(rel, ())) < 3 and time.monotonic() < deadline:
                    cond.wait(deadline - time.monotonic())
                out.append(arrivals.get(rel, [closing])[-1] - closing)
            time.sleep(0.01)
    return out


def daemon_latency(
    work: Path, emulator: Emulator, count: int, debounce: float, *, verbose: bool = False,
    tree: int = 0,
) -> list[float]:
    local = work / "local"
    local.mkdir()
    config = write_config(work / "config.toml", emulator, local=local,
                          state_db=work / "state" / "state.db", remote_path="latency",
                          timeout=None, debounce=debounce)  # fmt: skip
    if tree:  # already mirrored, watched and recorded: what every partial pass carries
        make_tree(local / "bulk", files=tree, dirs=max(1, tree // 100), size=64)
        prime_state_directly(config)
    out: list[float] = []
    with syncd_run(work, config, flags=("-v" if verbose else "-q",)) as (proc, manager):
        manager.wait_ready(proc, READY_TIMEOUT)
        with StateStore(work / "state" / "state.db") as state:
            for i in range(count):
                rel = f"f{i:04d}.bin"
                data = os.urandom(4096) + rel.encode()
                digest = hashlib.md5(data).hexdigest()
                _, closed = write_file(local / rel, data)
                while True:
                    rec = state.file("bench", rel)
                    if rec is not None and rec.md5 == digest and rec.state == "synced":
                        out.append(time.perf_counter() - closed)
                        break
                    if time.perf_counter() - closed > RECORD_TIMEOUT:
                        raise SystemExit(f"bench: {rel} not recorded in {RECORD_TIMEOUT:g} s")
                    time.sleep(0.001)
                time.sleep(PAUSE)
    return out


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--files", type=int, default=50, help="files written one by one")
    parser.add_argument("--debounce", type=float, default=0.5, help="[sync] debounce, s")
    parser.add_argument("--verbose", action="store_true", help="syncd run -v (log kept)")
    parser.add_argument("--tree", type=int, default=0,
                        help="also watch this many recorded files (100 per directory)")
    args = parser.parse_args()
    count = 3 if args.smoke else args.files
    header("syncd run: latency from close() to recorded upload", args)
    with workdir("daemon-latency", keep=args.keep) as work, Emulator(work / "emulator") as emu:
        raw = raw_event_latency(work / "raw", count)
        lat = daemon_latency(work, emu, count, args.debounce, verbose=args.verbose,
                             tree=0 if args.smoke else args.tree)
    raw50 = statistics.median(raw)
    p50, p95 = percentile(lat, 0.50), percentile(lat, 0.95)
    baseline = args.debounce + raw50
    print(f"files: {count}, debounce: {args.debounce:g} s, "
          f"also watching {0 if args.smoke else args.tree} recorded files")
    print(f"raw inotify latency (syncd.watcher alone): p50 {raw50 * 1000:.2f} ms, "
          f"p95 {percentile(raw, 0.95) * 1000:.2f} ms")
    print(f"syncd run latency: p50 {p50:.3f} s, p95 {p95:.3f} s, max {max(lat):.3f} s, "
          f"min {min(lat):.3f} s")
    print(f"p50 / (debounce + raw p50) = {p50 / baseline:.2f}; "
          f"p95 / (debounce + raw p50) = {p95 / baseline:.2f}")
    print(f"overhead over the debounce: p50 {(p50 - args.debounce) * 1000:.0f} ms, "
          f"p95 {(p95 - args.debounce) * 1000:.0f} ms")
    print(f"p50: {verdict(p50, 0.7, at_least=False)}; p95: {verdict(p95, 1.0, at_least=False)}")


if __name__ == "__main__":
    main()
