"""A pass with nothing to do: ``syncd sync`` wall time vs ``find ROOT -printf '%s %T@\\n'``.

    python bench/noop_pass.py                    # 100,000 files in 1,000 dirs, 5 runs
    python bench/noop_pass.py --prime direct     # same, state written directly (fast)
    python bench/noop_pass.py --smoke            # CI: tiny, one run

The tree is synced once (``--prime sync``: a real ``syncd sync``), then each run times
``find`` (the floor: one lstat per entry, in C) and ``syncd sync`` as whole processes,
start-up included, alternately; for context also a bare Python ``os.scandir`` + lstat
walk (``WALK``: what any Python scanner pays before doing anything with an entry).
syncd must upload nothing and send no request at all (SPEC §4 "Authorize lazily"): the
emulator's request log is checked over all runs.
"""

from __future__ import annotations

from common import (
    PYTHON,
    Emulator,
    base_parser,
    emit,
    header,
    median,
    run,
    sync_json,
    syncd,
    synced_tree,
    verdict,
    workdir,
)

# The Python floor: interpreter start, one scandir and one lstat per entry, nothing else.
WALK = """
import os, sys
def walk(fd):
    with os.scandir(fd) as it:
        for de in it:
            if de.stat(follow_symlinks=False).st_mode & 0o170000 == 0o040000:
                sub = os.open(de.name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                try:
                    walk(sub)
                finally:
                    os.close(sub)
walk(os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY))
"""


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.set_defaults(runs=5)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--dirs", type=int, default=0, help="default: files / 100")
    parser.add_argument("--prime", choices=("sync", "direct"), default="sync")
    args = parser.parse_args()
    if args.smoke:
        args.files, args.runs = 300, 1
    dirs = args.dirs or max(1, args.files // 100)
    header("no-op pass: syncd sync vs find -printf", args)
    print(f"# tree: {args.files} files in {dirs} dirs, all synced; medians of {args.runs} runs")
    with workdir("noop-pass", keep=args.keep) as work, Emulator(work / "emu") as emu:
        config = synced_tree(work, emu, files=args.files, dirs=dirs, prime=args.prime)
        root = work / "local"
        # Warm-up (untimed): page cache and bytecode, the same for both; also proves the
        # pass has nothing to do.
        emu.clear()
        warm = sync_json(syncd(config, "sync", "--json").check())
        run(["find", str(root), "-printf", "%s %T@\n"], keep_output=False).check()
        walls: dict[str, list[float]] = {"find": [], "syncd": [], "walk": []}
        cpus: dict[str, list[float]] = {"find": [], "syncd": [], "walk": []}
        for i in range(args.runs):
            f = run(["find", str(root), "-printf", "%s %T@\n"], keep_output=False).check()
            s = syncd(config, "sync").check()
            w = run([PYTHON, "-c", WALK, str(root)], keep_output=False).check()
            for side, r in (("find", f), ("syncd", s), ("walk", w)):
                walls[side].append(r.wall)
                cpus[side].append(r.cpu)
            print(f"  run {i + 1}: find {f.wall:.3f} s   syncd sync {s.wall:.3f} s "
                  f"(CPU {s.cpu:.2f} s, peak RSS {s.rss_mb:.0f} MB)   "
                  f"python walk {w.wall:.3f} s")  # fmt: skip
        requests = emu.requests()
    total = sum(requests.values())
    uploads = requests.get("file/upload", 0) + warm["uploaded"]
    per_run = total / (args.runs + 1)
    find_s, syncd_s = median(walls["find"]), median(walls["syncd"])
    walk_s = median(walls["walk"])
    ratio = syncd_s / find_s
    print()
    print(f"find       : {find_s:.3f} s (CPU {median(cpus['find']):.2f} s)")
    print(f"syncd sync : {syncd_s:.3f} s (CPU {median(cpus['syncd']):.2f} s)")
    print(f"python walk: {walk_s:.3f} s (context: the floor of any Python scanner)")
    print(f"ratio syncd / find: {ratio:.2f}  {verdict(ratio, 3, at_least=False)}")
    print(f"ratio python walk / find: {walk_s / find_s:.2f}; syncd / python walk: "
          f"{syncd_s / walk_s:.2f}")  # fmt: skip
    print(f"uploads: {uploads}  {verdict(uploads, 0, at_least=False)}")
    print(f"HTTP requests per pass: {per_run:g} ({total} over {args.runs + 1} passes)  "
          f"{verdict(per_run, 2, at_least=False)}")  # fmt: skip
    emit("noop_pass", {
        "files": args.files, "find_s": find_s, "syncd_s": syncd_s, "ratio": ratio,
        "python_walk_s": walk_s,
        "uploads": uploads, "requests_per_pass": per_run,
        "syncd_cpu_s": median(cpus["syncd"]),
    })  # fmt: skip


if __name__ == "__main__":
    main()
