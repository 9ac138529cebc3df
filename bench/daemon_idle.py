"""What an idle ``syncd run`` costs: CPU seconds and RSS while watching a big tree.

    python bench/daemon_idle.py [--dirs 1000] [--files-per-dir 100] [--seconds 60]
                                [--smoke] [--keep]

A tree of ``dirs x files-per-dir`` files is built under ``$SYNCD_BENCH_TMP`` (default
/work/bench-tmp) and its state DB primed as a finished ``syncd sync`` would leave it
(``common.prime_state_directly``: no upload of 10^5 files), so the daemon's start pass
is the no-op rescan of a restart. ``syncd run`` is started as systemd would (with
``$NOTIFY_SOCKET`` and ``WatchdogSec=60``: a ping every 30 s); once READY (start pass
done, watches set), its ``utime + stime`` from ``/proc/<pid>/stat`` is sampled across
``--seconds`` of idleness, and its RSS read at the end. Baseline in the same window: an
idle ``sleep`` process. Targets: <= 0.1 CPU-s per minute, RSS <= 80 MB.
"""

from __future__ import annotations

import os
import subprocess
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

READY_TIMEOUT = 600.0  # the start pass stats every file once
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` so far (clock ticks: 10 ms resolution)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def sched_totals(pid: int) -> tuple[float, int]:
    """(CPU seconds at nanosecond resolution, times scheduled in) summed over the threads
    of ``pid`` (``/proc/<pid>/task/*/schedstat``): ticks are too coarse for an idle minute."""
    seconds, slices = 0.0, 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                run_ns, _wait_ns, count = fh.read().split()[:3]
        except (OSError, ValueError):
            continue  # a thread that just ended
        seconds += int(run_ns) / 1e9
        slices += int(count)
    return seconds, slices


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of ``pid``, KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def inotify_watches(pid: int) -> int:
    """Watches held by ``pid``'s inotify instances (``inotify wd:`` lines in fdinfo)."""
    total = 0
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as fh:
                total += sum(1 for line in fh if line.startswith("inotify wd:"))
        except OSError:
            continue
    return total


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--dirs", type=int, default=1000)
    parser.add_argument("--files-per-dir", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0, help="idle window measured")
    args = parser.parse_args()
    dirs, per_dir, window = (10, 10, 3.0) if args.smoke else (
        args.dirs, args.files_per_dir, args.seconds)
    header("syncd run: CPU and memory while idle, watching a big tree", args)
    with workdir("daemon-idle", keep=args.keep) as work, Emulator(work / "emulator") as emu:
        local = work / "local"
        started = time.monotonic()
        make_tree(local, files=dirs * per_dir, dirs=dirs, size=64)
        config = write_config(work / "config.toml", emu, local=local,
                              state_db=work / "state" / "state.db")
        records = prime_state_directly(config)
        print(f"tree: {records} files in {dirs} dirs, built and recorded in "
              f"{time.monotonic() - started:.1f} s")
        measure(work, config, emu, window)


def measure(work: Path, config: Path, emu: Emulator, window: float) -> None:
    with syncd_run(work, config, drop_env=("SYNCD_", "WATCHDOG_"),
                   WATCHDOG_USEC="60000000") as (proc, manager):  # fmt: skip
        sleeper = subprocess.Popen(["sleep", str(int(window) + 30)])
        try:
            spawned = time.monotonic()
            manager.wait_ready(proc, READY_TIMEOUT)
            ready_after = time.monotonic() - spawned
            start_cpu = cpu_seconds(proc.pid)
            emu.clear()
            cpu0, base0, t0 = cpu_seconds(proc.pid), cpu_seconds(sleeper.pid), time.monotonic()
            fine0, base_fine0 = sched_totals(proc.pid), sched_totals(sleeper.pid)
            time.sleep(window)  # the measured idle window
            cpu1, base1, t1 = cpu_seconds(proc.pid), cpu_seconds(sleeper.pid), time.monotonic()
            fine1, base_fine1 = sched_totals(proc.pid), sched_totals(sleeper.pid)
            mem, base_mem = memory_kib(proc.pid), memory_kib(sleeper.pid)
            watches = inotify_watches(proc.pid)
            requests = emu.requests()
        finally:
            sleeper.kill()
            sleeper.wait()
    elapsed = t1 - t0
    per_minute = (cpu1 - cpu0) * 60 / elapsed
    base_per_minute = (base1 - base0) * 60 / elapsed
    rss_mb, peak_mb = mem["VmRSS"] * 1024 / 1e6, mem["VmHWM"] * 1024 / 1e6
    base_rss_mb = base_mem["VmRSS"] * 1024 / 1e6
    floor = 1 / TICK  # one clock tick: the resolution of the figures
    print(f"start pass (spawn -> READY): {ready_after:.1f} s, {start_cpu:.2f} CPU-s")
    print(f"inotify watches held: {watches}; requests while idle: {sum(requests.values())}")
    print(f"idle window: {elapsed:.1f} s")
    fine_per_minute = (fine1[0] - fine0[0]) * 60 / elapsed
    base_fine_per_minute = (base_fine1[0] - base_fine0[0]) * 60 / elapsed
    print(f"syncd run: {cpu1 - cpu0:.2f} CPU-s by /proc/stat ticks = {per_minute:.3f} "
          f"CPU-s/min; by schedstat {fine_per_minute * 1000:.2f} CPU-ms/min, "
          f"{(fine1[1] - fine0[1]) * 60 / elapsed:.0f} wake-ups/min; "
          f"RSS {rss_mb:.1f} MB (peak {peak_mb:.1f} MB)")
    print(f"baseline sleep: {base1 - base0:.2f} CPU-s = {base_per_minute:.3f} CPU-s/min; "
          f"by schedstat {base_fine_per_minute * 1000:.3f} CPU-ms/min, "
          f"{(base_fine1[1] - base_fine0[1]) * 60 / elapsed:.0f} wake-ups/min; "
          f"RSS {base_rss_mb:.1f} MB")
    base_text = (f"{fine_per_minute / base_fine_per_minute:.0f}" if base_fine_per_minute
                 else "unbounded (sleep used no CPU at all)")
    print(f"ratio CPU syncd/sleep (schedstat) = {base_text}; against one clock tick per "
          f"minute ({floor:g} s): {fine_per_minute / floor:.3f}; "
          f"ratio RSS syncd/sleep = {rss_mb / base_rss_mb:.1f}")
    print(f"CPU: {verdict(max(per_minute, fine_per_minute), 0.1, at_least=False)}; "
          f"RSS: {verdict(rss_mb, 80, at_least=False)}")


if __name__ == "__main__":
    main()
