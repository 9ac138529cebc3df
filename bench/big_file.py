"""One big file: ``syncd sync`` MB/s, client CPU and peak RSS vs ``curl -F upload_file=@…``.

    python bench/big_file.py                 # 1 GiB, 3 runs
    python bench/big_file.py --size 256M     # smaller
    python bench/big_file.py --smoke         # CI: 8 MiB, one run
    python bench/big_file.py --pin           # emulator and client on cores of their own

Both upload the same file to a fresh emulator process each (whole process measured,
start-up included). syncd also computes the MD5 of the bytes it sends in the same read
pass (SPEC §4) and records the upload; curl only sends. MB/s = 10^6 bytes per second.

``--pin`` (context, not the issue's figure): the emulator's threads are pinned to the last
core and the client to the others with ``taskset``, so the two stop competing for the
same cores and each side's own limit shows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from common import (
    Emulator,
    base_parser,
    emit,
    have,
    header,
    make_big_file,
    median,
    run,
    sync_json,
    syncd,
    verdict,
    workdir,
    write_config,
)

_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in _UNITS:
        return int(float(text[:-1]) * _UNITS[text[-1]])
    return int(text)


def authorize(emu: Emulator) -> dict[str, str]:
    body = urllib.parse.urlencode({"key1": emu.key1, "key2": emu.key2}).encode()
    with urllib.request.urlopen(emu.api_url + "authorize", body, timeout=30) as answer:
        data = json.load(answer)["data"]
    return {"access_token": data["access_token"], "account_id": str(data["account_id"])}


def pinning(pin: bool) -> tuple[list[str], str]:
    """(prefix for the client, CPU list for the emulator), or nothing when not pinning."""
    last = (os.cpu_count() or 1) - 1
    if not pin or last < 1:
        return [], ""
    return ["taskset", "-c", f"0-{last - 1}"], str(last)


def pin_emulator(emu: Emulator, cpus: str) -> None:
    if cpus:  # -a: every thread of the emulator process
        run(["taskset", "-a", "-c", "-p", cpus, str(emu.pid)], keep_output=False).check()


def measure_syncd(work: Path, local: Path, size: int, pin: bool = False) -> dict[str, Any]:
    prefix, cpus = pinning(pin)
    with Emulator(work / "emu") as emu:
        pin_emulator(emu, cpus)
        config = write_config(work / "syncd.toml", emu, local=local,
                              state_db=work / "state" / "state.db")  # fmt: skip
        server_cpu = emu.cpu_seconds()
        result = syncd(config, "sync", "--json", prefix=prefix).check()
        server_cpu = emu.cpu_seconds() - server_cpu
        if sync_json(result)["bytes"] != size or emu.stored_files() != 1:
            raise SystemExit(f"bench: syncd did not upload the file: {result.stdout}")
    shutil.rmtree(work / "emu")
    return {"wall": result.wall, "cpu": result.cpu, "rss_mb": result.rss_mb,
            "server_cpu": server_cpu}  # fmt: skip


def measure_curl(work: Path, path: Path, pin: bool = False) -> dict[str, Any]:
    prefix, cpus = pinning(pin)
    with Emulator(work / "emu") as emu:
        pin_emulator(emu, cpus)
        auth = authorize(emu)
        server_cpu = emu.cpu_seconds()
        result = run([*prefix, "curl", "-sS", "--fail",
                      "-F", f"access_token={auth['access_token']}",
                      "-F", f"account_id={auth['account_id']}", "-F", f"upload_file=@{path}",
                      emu.api_url + "file/upload"]).check()  # fmt: skip
        server_cpu = emu.cpu_seconds() - server_cpu
        answer = json.loads(result.stdout)
        if answer.get("_status", answer.get("status")) != "success" or emu.stored_files() != 1:
            raise SystemExit(f"bench: curl upload failed: {result.stdout[:500]}")
    shutil.rmtree(work / "emu")
    return {"wall": result.wall, "cpu": result.cpu, "rss_mb": result.rss_mb,
            "server_cpu": server_cpu}  # fmt: skip


def md5_seconds(path: Path) -> float:
    """CPU seconds to read and MD5 the file here: the work syncd must add to curl's."""
    started = time.process_time()
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return time.process_time() - started


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="e.g. 1G, 256M")
    parser.add_argument("--pin", action="store_true",
                        help="emulator and client on separate cores (context)")  # fmt: skip
    args = parser.parse_args()
    if args.smoke:
        args.size, args.runs = 8 << 20, 1
    if not have("curl"):
        raise SystemExit("bench: curl is needed for the baseline of this figure")
    header("one big file: syncd sync vs curl -F upload_file=@…", args)
    print(f"# file: {args.size / 2**20:.0f} MiB of random bytes; medians of {args.runs} runs")
    runs: dict[str, list[dict[str, Any]]] = {"syncd": [], "curl": []}
    with workdir("big-file", keep=args.keep) as work:
        local = work / "local"
        local.mkdir()
        path = local / "big.bin"
        make_big_file(path, args.size)
        for i in range(args.runs):
            run_dir = work / f"run{i}"
            run_dir.mkdir()
            runs["syncd"].append(measure_syncd(run_dir, local, args.size, args.pin))
            runs["curl"].append(measure_curl(run_dir, path, args.pin))
            for side in ("syncd", "curl"):
                r = runs[side][-1]
                print(f"  run {i + 1}: {side:5} {args.size / r['wall'] / 1e6:7.1f} MB/s "
                      f"({r['wall']:.2f} s, CPU {r['cpu']:.2f} s, peak RSS "
                      f"{r['rss_mb']:.0f} MB; emulator CPU {r['server_cpu']:.2f} s)")  # fmt: skip
        md5_cpu = median([md5_seconds(path) for _ in range(args.runs)])
    mbs = {k: args.size / median([r["wall"] for r in v]) / 1e6 for k, v in runs.items()}
    cpu = {k: median([r["cpu"] for r in v]) for k, v in runs.items()}
    rss = {k: median([r["rss_mb"] for r in v]) for k, v in runs.items()}
    ratio = mbs["syncd"] / mbs["curl"]
    print()
    for side in ("syncd", "curl"):
        print(f"{side:5}: {mbs[side]:7.1f} MB/s   client CPU {cpu[side]:.2f} s   "
              f"peak RSS {rss[side]:.0f} MB")  # fmt: skip
    server = {k: median([r["server_cpu"] for r in v]) for k, v in runs.items()}
    print(f"read + MD5 alone (hashlib, here): {md5_cpu:.2f} CPU-s = "
          f"{args.size / md5_cpu / 1e6:.0f} MB/s")  # fmt: skip
    shared = "pinned apart" if pinning(args.pin)[1] else "shared by client and server"
    print(f"emulator CPU per upload: {server['syncd']:.2f} s (syncd), "
          f"{server['curl']:.2f} s (curl); {os.cpu_count()} cores {shared}")
    print(f"ratio syncd / curl: {ratio:.2f}  {verdict(ratio, 0.9, at_least=True)}")
    print(f"syncd peak RSS: {rss['syncd']:.0f} MB  {verdict(rss['syncd'], 80, at_least=False)}")
    emit("big_file", {
        "bytes": args.size, "syncd_mb_s": mbs["syncd"], "curl_mb_s": mbs["curl"],
        "ratio": ratio, "syncd_cpu_s": cpu["syncd"], "curl_cpu_s": cpu["curl"],
        "syncd_rss_mb": rss["syncd"], "curl_rss_mb": rss["curl"], "md5_cpu_s": md5_cpu,
        "server_cpu_s": server, "pinned": bool(pinning(args.pin)[1]),
    })  # fmt: skip


if __name__ == "__main__":
    main()
