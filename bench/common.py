"""Shared helpers of the benchmark scripts (run them as ``python bench/<name>.py``).

Every script measures syncd and its baseline in the same run against the same bundled
emulator. The emulator always runs in its own process (``python bench/common.py serve``),
so that neither syncd nor a Python baseline shares a GIL with it; it answers simple
commands on its stdin (``requests``, ``clear``, ``files``) so a script can count the
requests a run sent without touching the emulator's code.

Measured processes are started with ``subprocess.Popen`` and reaped with ``os.wait4``,
which returns the resource usage of exactly that child: wall time (our clock around
start and reap: process start is included), user+system CPU seconds, peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# /tmp is slow for creating many files on this machine class (~20x): big trees go here.
BENCH_TMP = Path(os.environ.get("SYNCD_BENCH_TMP", "/work/bench-tmp"))


def syncd_command() -> list[str]:
    """``syncd`` as a user runs it: the console script next to this Python, if any."""
    script = Path(PYTHON).with_name("syncd")
    return [str(script)] if script.exists() else [PYTHON, "-m", "syncd"]


# -- measuring a child process -------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One finished child process."""

    argv: list[str]
    code: int
    wall: float  # seconds, from spawn to reap (process start and exit included)
    cpu: float  # user + system CPU seconds of the child alone
    rss_kib: int  # peak resident set size of the child, KiB
    stdout: str
    stderr: str

    @property
    def rss_mb(self) -> float:
        return self.rss_kib * 1024 / 1e6

    def check(self, *ok: int) -> Run:
        if self.code not in (ok or (0,)):
            raise SystemExit(
                f"bench: {' '.join(self.argv[:4])}… exited {self.code}\n{self.stderr[-3000:]}"
            )
        return self


# Peak RSS needs care: Linux carries the hiwater mark of the address space a child was
# forked from across exec, so a child forked from this (big) Python process would report
# at least this process's RSS. The measured command is therefore started by a small
# launcher and reaped there: GNU time when installed (its own RSS ~2 MB), else a
# ``python -S`` launcher (~8 MB): the RSS floor of any figure (``rss_floor_kib``).
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
_LAUNCHER = """
import os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(out, "w") as fh:
    fh.write(f"{os.waitstatus_to_exitcode(status)} {wall} {ru.ru_utime + ru.ru_stime} "
             f"{ru.ru_maxrss}")
"""


def run(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    keep_output: bool = True,
) -> Run:
    """Run ``argv`` to completion and measure it: wall time (process start and exit
    included), CPU seconds and peak RSS of that process alone."""
    argv = list(argv)
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as report,
    ):
        sink: IO[bytes] | int = out if keep_output else subprocess.DEVNULL
        if GNU_TIME:
            wrapped = [GNU_TIME, "-f", "%x %U %S %M", "-o", report.name, *argv]
        else:
            wrapped = [PYTHON, "-S", "-c", _LAUNCHER, report.name, *argv]
        start = time.perf_counter()
        code = subprocess.call(wrapped, stdout=sink, stderr=err, stdin=subprocess.DEVNULL,
                               env=env, cwd=cwd)  # fmt: skip
        wall = time.perf_counter() - start
        fields = report.read().split()
        if GNU_TIME:  # "%x %U %S %M"; a line before them when the child was killed
            if len(fields) < 4 or not fields[-4].lstrip("-").isdigit():
                raise SystemExit(f"bench: {argv[0]} died (exit {code}): {fields}")
            code, user, system, rss = fields[-4:]
            cpu = float(user) + float(system)
        else:
            code, wall_text, cpu_text, rss = fields[:4]
            wall, cpu = float(wall_text), float(cpu_text)
        out.seek(0)
        err.seek(0)
        return Run(argv, int(code), wall, cpu, int(rss), out.read().decode("utf-8", "replace"),
                   err.read().decode("utf-8", "replace"))  # fmt: skip


def rss_floor_kib() -> int:
    """The peak RSS the launcher reports for ``true``: no figure can be below it."""
    return run(["true"]).rss_kib


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def repeat(n: int, once: Callable[[], float]) -> list[float]:
    return [once() for _ in range(n)]


# -- the emulator in its own process ---------------------------------------------------------


class Emulator:
    """The bundled emulator in a child process; a context manager."""

    def __init__(self, data_dir: Path, **options: Any) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        argv = [PYTHON, str(Path(__file__).resolve()), "serve", "--data", str(data_dir)]
        if options:
            argv += ["--options", json.dumps(options)]
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        hello = self._ask(None)
        self.api_url: str = hello["api_url"]
        self.key1: str = hello["key1"]
        self.key2: str = hello["key2"]
        self.pid = self._proc.pid

    def _ask(self, command: str | None) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        if command is not None:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise SystemExit("bench: the emulator process died")
        return json.loads(line)

    def requests(self) -> dict[str, int]:
        """Requests seen since the last ``clear()``, by endpoint."""
        return dict(self._ask("requests"))

    def clear(self) -> None:
        self._ask("clear")

    def stored_files(self) -> int:
        """Active files stored in the account."""
        return int(self._ask("files"))

    def active_files(self) -> list[dict[str, Any]]:
        """path, md5 and size of every active stored file."""
        return list(self._ask("tree"))

    def cpu_seconds(self) -> float:
        """CPU seconds the emulator process has used so far (from /proc)."""
        with open(f"/proc/{self.pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(argv: list[str]) -> None:
    """The emulator process: one JSON line per command read on stdin; EOF stops it."""
    sys.path.insert(0, str(REPO))
    from syncd.emulator import EmulatorOptions, EmulatorServer

    parser = argparse.ArgumentParser(prog="common.py serve")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--options", default="{}")
    args = parser.parse_args(argv)
    options = {"request_log_size": 10_000_000, **json.loads(args.options)}
    srv = EmulatorServer(EmulatorOptions(data_dir=args.data, port=0, **options)).start()

    def say(value: object) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    say({"api_url": srv.api_url, "key1": srv.key1, "key2": srv.key2})
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "requests":
                counts: dict[str, int] = {}
                for _method, endpoint in srv.requests:
                    counts[endpoint] = counts.get(endpoint, 0) + 1
                say(counts)
            elif command == "clear":
                srv.clear_requests()
                say({})
            elif command == "files":
                say(sum(1 for f in srv.tree()["files"] if f["status"] == "active"))
            elif command == "tree":
                say([{k: f[k] for k in ("path", "md5", "size")}
                     for f in srv.tree()["files"] if f["status"] == "active"])  # fmt: skip
            else:
                say({"error": f"unknown command {command!r}"})
    finally:
        srv.stop()


# -- trees, configs, syncd -------------------------------------------------------------------


@contextlib.contextmanager
def workdir(name: str, *, keep: bool = False) -> Iterator[Path]:
    """A fresh directory under ``BENCH_TMP`` (removed at the end unless ``keep``)."""
    BENCH_TMP.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=BENCH_TMP))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def make_tree(root: Path, *, files: int, dirs: int, size: int, seed: int = 0) -> int:
    """``files`` files of ``size`` bytes spread evenly over ``dirs`` directories
    (``d0000/f000000.bin``…); contents differ per file. Returns the bytes written."""
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(max(size, 64) + 64)
    per_dir = -(-files // max(dirs, 1))
    written = 0
    n = 0
    for d in range(dirs):
        sub = root / f"d{d:04d}"
        sub.mkdir(exist_ok=True)
        for _ in range(min(per_dir, files - n)):
            # A unique 8-byte head per file: no two files share content (no server dedup).
            data = (n + seed * 10**9).to_bytes(8, "little") + block[n % 64 : n % 64 + size - 8]
            fd = os.open(sub / f"f{n:07d}.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data[:size])
            finally:
                os.close(fd)
            written += size
            n += 1
    return written


def make_big_file(path: Path, size: int) -> None:
    """``size`` bytes of incompressible data, written in 8 MiB pieces."""
    piece = os.urandom(8 << 20)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, len(piece))
            fh.write(piece[:n])
            left -= n


def write_config(
    path: Path,
    emulator: Emulator,
    *,
    local: Path,
    state_db: Path,
    remote_path: str = "bench",
    workers: int = 4,
    timeout: float | None = 120,
    **sync_options: float | str,
) -> Path:
    """A config of one pair "bench" (``local`` -> ``remote_path``) against ``emulator``;
    ``timeout=None`` leaves ``[remote] timeout`` at syncd's default."""
    path.write_text(
        "\n".join(
            [
                "[remote]",
                f'api_url = "{emulator.api_url}"',
                f'key1 = "{emulator.key1}"',
                f'key2 = "{emulator.key2}"',
                *([] if timeout is None else [f"timeout = {timeout}"]),
                "",
                "[sync]",
                f'state_db = "{state_db}"',
                f"workers = {workers}",
                *(f"{k} = {json.dumps(v)}" for k, v in sync_options.items()),
                "",
                "[[pair]]",
                'name = "bench"',
                f'local = "{local}"',
                f'remote_path = "{remote_path}"',
                "",
            ]
        )
    )
    path.chmod(0o600)
    return path


def python_env() -> dict[str, str]:
    """The environment for measured Python processes: bytecode cached as in a normal
    install (this sandbox sets PYTHONDONTWRITEBYTECODE, which would make every start
    recompile syncd), kept in the system temp dir so the checkout stays clean."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "syncd-bench-pycache")
    return env


def syncd(
    config: Path, *args: str, keep_output: bool = True, prefix: Sequence[str] = ()
) -> Run:
    """``syncd --config CONFIG ARGS…`` measured (stderr = its JSON log lines); ``prefix``
    runs it through another command that execs it (e.g. ``taskset -c 0``)."""
    env = {**python_env(), "SYNCD_CONFIG": str(config)}
    return run([*prefix, *syncd_command(), "--config", str(config), *args], env=env,
               keep_output=keep_output)  # fmt: skip


class ServiceManager:
    """systemd's end of ``$NOTIFY_SOCKET``, read at once by a thread as PID 1 does (a full
    datagram queue would block the service's sends)."""

    def __init__(self) -> None:
        self.address = f"@syncd-bench-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.address[1:])
        self.sock.settimeout(0.1)
        self.ready = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if b"READY=1" in data.split(b"\n"):
                self.ready.set()

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if proc.poll() is not None:
                raise SystemExit(f"bench: syncd run exited {proc.returncode} before READY")
            if time.monotonic() > deadline:
                raise SystemExit("bench: syncd run sent no READY=1")

    def close(self) -> None:
        self._closed = True
        self._thread.join(5)
        self.sock.close()


@contextlib.contextmanager
def syncd_run(
    work: Path,
    config: Path,
    *,
    flags: Sequence[str] = ("-q",),
    drop_env: tuple[str, ...] = ("SYNCD_",),
    **env: str,
) -> Iterator[tuple[subprocess.Popen[bytes], ServiceManager]]:
    """``syncd --config CONFIG FLAGS… run`` started as systemd would: ``$NOTIFY_SOCKET``
    names a ``ServiceManager``; this environment without the variables starting with
    ``drop_env``, plus ``env``; output to ``WORK/daemon.log``. On leaving: SIGTERM, 30 s
    to exit (then SIGKILL); an exit code other than 0 ends the bench."""
    manager = ServiceManager()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(drop_env)}
    full_env.update(NOTIFY_SOCKET=manager.address, **env)
    with (work / "daemon.log").open("wb") as log:
        proc = subprocess.Popen([*syncd_command(), "--config", str(config), *flags, "run"],
                                stdout=log, stderr=subprocess.STDOUT, env=full_env)  # fmt: skip
    try:
        yield proc, manager
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        manager.close()
    if code != 0:
        raise SystemExit(f"bench: syncd run exited {code}; see {work / 'daemon.log'}")


def sync_json(result: Run) -> dict[str, Any]:
    """The one pair summary of ``syncd sync --json``."""
    document: dict[str, Any] = json.loads(result.stdout)
    pair: dict[str, Any] = document["pairs"][0]
    return pair


def synced_tree(work: Path, emulator: Emulator, *, files: int, dirs: int, prime: str) -> Path:
    """A tree of ``files`` small files in ``dirs`` dirs that syncd has completely synced;
    returns its config. ``prime``: "sync" runs a real ``syncd sync`` (minutes at 10^5
    files), "direct" writes the state DB as that sync would (``prime_state_directly``)."""
    local = work / "local"
    make_tree(local, files=files, dirs=dirs, size=64)
    config = write_config(work / "syncd.toml", emulator, local=local,
                          state_db=work / "state" / "state.db")  # fmt: skip
    started = time.perf_counter()
    if prime == "sync":
        uploaded = sync_json(syncd(config, "sync", "--json").check())["uploaded"]
    else:
        uploaded = prime_state_directly(config)
    if uploaded != files:
        raise SystemExit(f"bench: priming recorded {uploaded} of {files} files")
    print(f"# primed by {prime}: {files} files in {time.perf_counter() - started:.0f} s")
    return config


def prime_state_directly(config_path: Path) -> int:
    """Write the state DB a completed ``syncd sync`` of the config's one pair would leave,
    without uploading (fake file ids): minutes saved when a no-op pass over 10^5-10^6
    files is what is measured. The records are made from the same lstat triple syncd
    compares, through syncd's own ``StateStore``. Returns the number of file records."""
    sys.path.insert(0, str(REPO))
    from syncd.config import load_config
    from syncd.model import FileRecord, FileState, FolderRecord, target_key, target_value
    from syncd.state import StateStore

    config = load_config(config_path, env={})
    pair = config.pairs[0]
    root = pair.local
    n = 0
    with StateStore(config.sync.state_db) as state:
        # Without this the engine would take the pair for a new target and start over.
        state.set_meta(target_key(pair), target_value(pair))
        with state.transaction():
            state.put_folder(FolderRecord(pair.name, "", "1"))
            for dirpath, dirnames, filenames in os.walk(root):
                rel_dir = os.path.relpath(dirpath, root)
                rel_dir = "" if rel_dir == "." else rel_dir
                for d in dirnames:
                    rel = f"{rel_dir}/{d}" if rel_dir else d
                    state.put_folder(FolderRecord(pair.name, rel, str(1000 + n)))
                for f in filenames:
                    rel = f"{rel_dir}/{f}" if rel_dir else f
                    st = os.lstat(os.path.join(dirpath, f))
                    n += 1
                    state.put_file(
                        FileRecord(
                            pair.name, rel, size=st.st_size, mtime_ns=st.st_mtime_ns,
                            inode=st.st_ino, md5="0" * 32, file_id=str(n), folder_id="1",
                            remote_name=f, url=f"http://127.0.0.1/{n}/{f}", short_url=str(n),
                            uploaded_at="2025-01-01T00:00:00Z", state=FileState.SYNCED,
                            verified="md5",
                        )
                    )  # fmt: skip
        state.end_pass(pair.name, ok=True, error=None)
    return n


# -- reporting ------------------------------------------------------------------------------


def emit(name: str, figures: dict[str, Any]) -> None:
    """The machine-readable last line of every script (the smoke test parses it)."""
    print("figure: " + json.dumps({"bench": name, **figures}, sort_keys=True))


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def header(title: str, args: argparse.Namespace) -> None:
    print(f"# {title}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} · {machine()}")
    print(f"# command: {' '.join([Path(PYTHON).name, *sys.argv])}")
    if getattr(args, "smoke", False):
        print("# SMOKE MODE: tiny sizes, figures meaningless")


def verdict(value: float, target: float, *, at_least: bool) -> str:
    ok = value >= target if at_least else value <= target
    sign = "≥" if at_least else "≤"
    return f"{'PASS' if ok else 'MISS'} (target {sign} {target:g})"


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run (CI)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser


def have(program: str) -> bool:
    return shutil.which(program) is not None


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        _serve(sys.argv[2:])
    else:
        raise SystemExit("usage: common.py serve --data DIR [--options JSON]")
