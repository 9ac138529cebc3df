"""Memory per tracked file: peak RSS of a no-op ``syncd sync`` above the process baseline.

    python bench/memory_per_file.py                               # 100,000 files
    python bench/memory_per_file.py --files 1000000 --runs 1      # manual run (~4 GB disk)
    python bench/memory_per_file.py --smoke                       # CI: tiny

bytes/file = (peak RSS of the no-op pass - peak RSS of ``syncd --version``) / files,
the definition of issue 6. A pass over a big tree walks half of it in a second process
(``syncd.scan_helper``, see syncd/scan_split.py): its peak RSS (from syncd's own debug
line, one extra ``-v`` run) above its own baseline (the helper started with no work) is
added, and the two processes' total peak is printed too. The same pass over a tree of
1/100 the size is measured as well: the difference of the two passes over the difference
in files is the marginal cost of one more file, free of the fixed cost of the modules a
pass imports. rclone's in-memory listing costs 0.5-1 KiB per object, for comparison.
10^6 files are primed directly (``--prime direct``) unless asked otherwise: a real
initial sync takes an hour.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import (
    REPO,
    Emulator,
    base_parser,
    emit,
    header,
    median,
    python_env,
    rss_floor_kib,
    run,
    syncd,
    synced_tree,
    verdict,
    workdir,
)


def pass_rss_kib(work: Path, files: int, dirs: int, prime: str, runs: int) -> tuple[int, int]:
    """Median peak RSS of the no-op pass's process, and of its scan helper (0: none)."""
    with Emulator(work / "emu") as emu:
        config = synced_tree(work, emu, files=files, dirs=dirs, prime=prime)
        syncd(config, "sync").check()  # warm-up: bytecode, page cache
        emu.clear()
        peaks = [syncd(config, "sync").check().rss_kib for _ in range(runs)]
        logged = syncd(config, "-v", "--log-format", "json", "sync").check().stderr
        if emu.requests():
            raise SystemExit(f"bench: the no-op pass sent requests: {emu.requests()}")
    helper = [json.loads(line) for line in logged.splitlines() if "scan helper reaped" in line]
    return int(median(peaks)), int(helper[0]["peak_rss_kib"]) if helper else 0


def helper_baseline_kib() -> int:
    """Peak RSS of the scan helper started with no work (it exits after its imports)."""
    sys.path.insert(0, str(REPO))
    from syncd.scan_split import helper_command

    argv, env = helper_command()
    env = {**python_env(), "PYTHONPATH": env["PYTHONPATH"]}
    run(argv, env=env).check()  # warm-up: bytecode
    return int(median([run(argv, env=env).check().rss_kib for _ in range(3)]))


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--prime", choices=("sync", "direct"), default=None,
                        help="default: sync up to 200,000 files, direct above")  # fmt: skip
    args = parser.parse_args()
    if args.smoke:
        args.files, args.runs = 300, 1
    prime = args.prime or ("sync" if args.files <= 200_000 else "direct")
    small = max(1, args.files // 100)
    header("memory per tracked file: peak RSS of a no-op pass", args)
    with workdir("memory", keep=args.keep) as work:
        syncd(work / "none.toml", "--version").check()  # warm-up; --version reads no config
        base_kib = int(median([syncd(work / "none.toml", "--version").check().rss_kib
                               for _ in range(max(3, args.runs))]))  # fmt: skip
        (work / "big").mkdir()
        (work / "small").mkdir()
        helper_base_kib = helper_baseline_kib()
        big_kib, big_helper_kib = pass_rss_kib(
            work / "big", args.files, max(1, args.files // 100), prime, args.runs
        )
        small_kib, _ = pass_rss_kib(work / "small", small, max(1, small // 100), prime, args.runs)
    helper_extra = max(0, big_helper_kib - helper_base_kib) if big_helper_kib else 0
    per_file = (big_kib - base_kib + helper_extra) * 1024 / args.files
    marginal = (big_kib - small_kib) * 1024 / max(1, args.files - small)
    print(f"# RSS floor of the measuring launcher: {rss_floor_kib() / 1024:.1f} MiB")
    print(f"syncd --version peak RSS        : {base_kib / 1024:7.1f} MiB (the baseline)")
    print(f"scan helper with no work        : {helper_base_kib / 1024:7.1f} MiB (its baseline)")
    print(f"no-op pass, {small:>9} files     : {small_kib / 1024:7.1f} MiB")
    print(f"no-op pass, {args.files:>9} files     : {big_kib / 1024:7.1f} MiB"
          f" + scan helper {big_helper_kib / 1024:.1f} MiB"
          f" = {(big_kib + big_helper_kib) / 1024:.1f} MiB in all")  # fmt: skip
    print(f"bytes per file above the baseline: {per_file:6.0f}  "
          f"{verdict(per_file, 200, at_least=False)}")  # fmt: skip
    print(f"marginal bytes per file          : {marginal:6.0f}  (between the two passes)")
    emit("memory_per_file", {
        "files": args.files, "baseline_kib": base_kib, "pass_kib": big_kib,
        "helper_kib": big_helper_kib, "helper_baseline_kib": helper_base_kib,
        "small_pass_kib": small_kib, "bytes_per_file": per_file, "marginal": marginal,
    })  # fmt: skip


if __name__ == "__main__":
    main()
