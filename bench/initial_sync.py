"""Initial sync of many small files: ``syncd sync`` files/s vs a bare httpx upload loop.

    python bench/initial_sync.py                 # 10,000 x 4 KiB in 100 dirs, 3 runs
    python bench/initial_sync.py --smoke         # CI: tiny, one run

Each measurement gets a fresh emulator process (and syncd a fresh state DB), so every
run starts from an empty account. Measured, whole process (start-up included):

- syncd: ``syncd sync`` with the default 4 workers;
- bare: ``bench/bare_upload.py``, 4 httpx threads, authorize once, one folder, upload
  (no scan, no state DB, no MD5, no retries): the ceiling for a Python client;
- rclone (if installed): ``rclone copy --transfers 4`` to ``rclone serve webdav`` on
  loopback, the "rclone in a cron job" alternative (another protocol: context only;
  measured in the first run only, as it takes minutes).

The request economy comes from the emulator's own request log of the syncd run:
requests sent / (1 authorize + 1 package + folders + files).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from common import (
    PYTHON,
    Emulator,
    base_parser,
    emit,
    have,
    header,
    make_tree,
    median,
    python_env,
    run,
    sync_json,
    syncd,
    verdict,
    workdir,
    write_config,
)

HERE = Path(__file__).resolve().parent


def measure_syncd(work: Path, local: Path, files: int, dirs: int) -> dict[str, Any]:
    with Emulator(work / "emu-syncd") as emu:
        config = write_config(work / "syncd.toml", emu, local=local,
                              state_db=work / "state" / "state.db")  # fmt: skip
        result = syncd(config, "sync", "--json").check()
        summary = sync_json(result)
        requests = emu.requests()
        stored = emu.stored_files()
    if summary["uploaded"] != files or stored != files:
        raise SystemExit(f"bench: syncd uploaded {summary['uploaded']}, stored {stored}")
    minimal = 1 + 1 + (dirs + 1) + files  # authorize, package, folders (+ remote_path), files
    return {
        "wall": result.wall,
        "cpu": result.cpu,
        "rss_mb": result.rss_mb,
        "requests": requests,
        "economy": sum(requests.values()) / minimal,
        "minimal": minimal,
    }


def measure_bare(work: Path, local: Path, files: int) -> dict[str, Any]:
    listing = work / "files.txt"
    listing.write_text("".join(f"{p}\n" for p in sorted(map(str, local.rglob("*.bin")))))
    with Emulator(work / "emu-bare") as emu:
        result = run([PYTHON, str(HERE / "bare_upload.py"), emu.api_url, emu.key1, emu.key2,
                      str(listing), "--workers", "4"], env=python_env()).check()  # fmt: skip
        stored = emu.stored_files()
    if json.loads(result.stdout)["files"] != files or stored != files:
        raise SystemExit(f"bench: bare loop stored {stored} of {files}")
    return {"wall": result.wall, "cpu": result.cpu, "rss_mb": result.rss_mb}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure_rclone(work: Path, local: Path, files: int) -> dict[str, Any]:
    served = work / "webdav"
    served.mkdir()
    port = free_port()
    env = {**os.environ, "RCLONE_CONFIG": str(work / "rclone.conf")}
    (work / "rclone.conf").write_text("")
    server = subprocess.Popen(
        ["rclone", "serve", "webdav", str(served), "--addr", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("bench: rclone serve webdav did not start") from None
                time.sleep(0.1)
        result = run(["rclone", "copy", str(local), ":webdav:tree", "--webdav-url",
                      f"http://127.0.0.1:{port}", "--transfers", "4"], env=env).check()  # fmt: skip
    finally:
        server.terminate()
        server.wait(20)
    copied = sum(1 for _ in (served / "tree").rglob("*.bin"))
    if copied != files:
        raise SystemExit(f"bench: rclone copied {copied} of {files}")
    return {"wall": result.wall, "cpu": result.cpu, "rss_mb": result.rss_mb}


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--dirs", type=int, default=100)
    parser.add_argument("--size", type=int, default=4096, help="bytes per file")
    parser.add_argument("--no-rclone", action="store_true", help="skip the rclone baseline")
    args = parser.parse_args()
    if args.smoke:
        args.files, args.dirs, args.runs = 60, 3, 1
    header("initial sync: syncd sync vs a bare 4-thread httpx upload loop", args)
    print(f"# tree: {args.files} files x {args.size} B in {args.dirs} dirs; "
          f"medians of {args.runs} runs, a fresh emulator process each")  # fmt: skip
    rclone = have("rclone") and not args.no_rclone
    if not rclone:
        print("# rclone: not installed (Debian package 'rclone'): that baseline is skipped")
    runs: dict[str, list[dict[str, Any]]] = {"syncd": [], "bare": [], "rclone": []}
    with workdir("initial-sync", keep=args.keep) as work:
        local = work / "local"
        make_tree(local, files=args.files, dirs=args.dirs, size=args.size)
        for i in range(args.runs):
            run_dir = work / f"run{i}"
            run_dir.mkdir()
            runs["syncd"].append(measure_syncd(run_dir, local, args.files, args.dirs))
            runs["bare"].append(measure_bare(run_dir, local, args.files))
            if rclone and i == 0:  # ~30 files/s: one run is enough for context
                runs["rclone"].append(measure_rclone(run_dir, local, args.files))
            for side in ("syncd", "bare", "rclone"):
                if len(runs[side]) == i + 1:
                    r = runs[side][-1]
                    print(f"  run {i + 1}: {side:6} {args.files / r['wall']:8.1f} files/s "
                          f"({r['wall']:.2f} s, client CPU {r['cpu']:.2f} s, "
                          f"peak RSS {r['rss_mb']:.0f} MB)")  # fmt: skip
    rate = {k: args.files / median([r["wall"] for r in v]) for k, v in runs.items() if v}
    cpu = {k: median([r["cpu"] for r in v]) for k, v in runs.items() if v}
    ratio = rate["syncd"] / rate["bare"]
    economy = median([r["economy"] for r in runs["syncd"]])
    requests = runs["syncd"][-1]["requests"]
    print()
    print(f"syncd sync : {rate['syncd']:8.1f} files/s   client CPU {cpu['syncd']:.2f} s "
          f"({cpu['syncd'] / args.files * 1e3:.2f} ms/file)")  # fmt: skip
    print(f"bare loop  : {rate['bare']:8.1f} files/s   client CPU {cpu['bare']:.2f} s "
          f"({cpu['bare'] / args.files * 1e3:.2f} ms/file)")  # fmt: skip
    if "rclone" in rate:
        print(f"rclone copy: {rate['rclone']:8.1f} files/s   (webdav on loopback; context only)")
    print(f"ratio syncd / bare: {ratio:.2f}  {verdict(ratio, 0.8, at_least=True)}")
    if "rclone" in rate:
        print(f"ratio syncd / rclone: {rate['syncd'] / rate['rclone']:.1f}")
    print(f"request economy: {sum(requests.values())} sent / {runs['syncd'][-1]['minimal']} "
          f"minimal = {economy:.4f}  {verdict(economy, 1.05, at_least=False)}")  # fmt: skip
    print(f"  by endpoint: {json.dumps(requests, sort_keys=True)}")
    emit("initial_sync", {
        "files": args.files, "syncd_files_per_s": rate["syncd"],
        "bare_files_per_s": rate["bare"], "rclone_files_per_s": rate.get("rclone"),
        "ratio": ratio, "economy": economy, "requests": requests,
        "syncd_cpu_s": cpu["syncd"], "bare_cpu_s": cpu["bare"],
    })  # fmt: skip


if __name__ == "__main__":
    main()
