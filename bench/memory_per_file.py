"""Memory per tracked file: peak RSS of a no-op ``syncd sync`` above the process baseline.

    python bench/memory_per_file.py                               # 100,000 files
    python bench/memory_per_file.py --files 1000000 --runs 1      # manual run (~4 GB disk)
    python bench/memory_per_file.py --smoke                       # CI: tiny

bytes/file = (peak RSS of the no-op pass - peak RSS of ``syncd --version``) / files,
the definition of issue 6. The same pass over a tree of 1/100 the size is measured too:
the difference of the two passes over the difference in files is the marginal cost of
one more file, free of the fixed cost of the modules a pass imports. rclone's
in-memory listing costs 0.5-1 KiB per object, for comparison. 10^6 files are primed
directly (``--prime direct``) unless asked otherwise: a real initial sync takes an hour.
"""

from __future__ import annotations

from pathlib import Path

from common import (
    Emulator,
    base_parser,
    emit,
    header,
    median,
    rss_floor_kib,
    syncd,
    synced_tree,
    verdict,
    workdir,
)


def pass_rss_kib(work: Path, files: int, dirs: int, prime: str, runs: int) -> int:
    with Emulator(work / "emu") as emu:
        config = synced_tree(work, emu, files=files, dirs=dirs, prime=prime)
        syncd(config, "sync").check()  # warm-up: bytecode, page cache
        emu.clear()
        peaks = [syncd(config, "sync").check().rss_kib for _ in range(runs)]
        if emu.requests():
            raise SystemExit(f"bench: the no-op pass sent requests: {emu.requests()}")
        return int(median(peaks))


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
        big_kib = pass_rss_kib(work / "big", args.files, max(1, args.files // 100), prime,
                               args.runs)  # fmt: skip
        small_kib = pass_rss_kib(work / "small", small, max(1, small // 100), prime, args.runs)
    per_file = (big_kib - base_kib) * 1024 / args.files
    marginal = (big_kib - small_kib) * 1024 / max(1, args.files - small)
    print(f"# RSS floor of the measuring launcher: {rss_floor_kib() / 1024:.1f} MiB")
    print(f"syncd --version peak RSS        : {base_kib / 1024:7.1f} MiB (the baseline)")
    print(f"no-op pass, {small:>9} files     : {small_kib / 1024:7.1f} MiB")
    print(f"no-op pass, {args.files:>9} files     : {big_kib / 1024:7.1f} MiB")
    print(f"bytes per file above the baseline: {per_file:6.0f}  "
          f"{verdict(per_file, 200, at_least=False)}")  # fmt: skip
    print(f"marginal bytes per file          : {marginal:6.0f}  (between the two passes)")
    emit("memory_per_file", {
        "files": args.files, "baseline_kib": base_kib, "pass_kib": big_kib,
        "small_pass_kib": small_kib, "bytes_per_file": per_file, "marginal": marginal,
    })  # fmt: skip


if __name__ == "__main__":
    main()
