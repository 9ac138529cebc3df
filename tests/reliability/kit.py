"""Shared pieces of the reliability suites: seeded trees, mutations, faults, figures.

Everything random takes a ``random.Random``: a failure report names the seed and the
same run can be replayed (against a fault-free emulator, to count the minimal requests).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncd.emulator import EmulatorServer
from tests.scenario import Scenario

REPO = Path(__file__).resolve().parents[2]
SYNCD = [sys.executable, "-m", "syncd"]
CRASHPOINT = [sys.executable, "-m", "tests.reliability.crashpoint"]

# Directory names include ones a server alters (the quote is dropped on upload, but
# folder/create keeps it), blanks, non-ASCII and nesting.
DIRS = ["", "docs", "docs/2024", "it's", "x y", "ünï/文件", "deep/a/b/c/d", "no_ext"]
STEMS = ["report", "it's", "photo", "Ünïcode", "notes (draft)", "semi;colon", "a+b"]
EXTS = [".txt", ".bin", ".TXT", "", ".tar.gz"]


def quiet_env() -> dict[str, str]:
    """The environment for a ``syncd`` subprocess: nothing of the test's SYNCD_* leaks."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}


def random_name(rng: random.Random) -> str:
    return f"{rng.choice(STEMS)} {rng.randrange(10**6)}{rng.choice(EXTS)}"


def random_path(rng: random.Random, dirs: list[str] | None = None) -> str:
    folder = rng.choice(dirs or DIRS)
    name = random_name(rng)
    return f"{folder}/{name}" if folder else name


def random_bytes(rng: random.Random, small: int = 1, large: int = 6000) -> bytes:
    return rng.randbytes(rng.randint(small, large))


def build_tree(sc: Scenario, rng: random.Random, files: int) -> None:
    """``files`` files with random content spread over ``DIRS``, plus an empty directory
    and a name the server stores altered (``it's.txt`` -> ``its.txt``: a rename step)."""
    for _ in range(files):
        sc.write(random_path(rng), random_bytes(rng))
    sc.write("it's.txt", b"quoted name")
    sc.mkdir("empty dir")


def mutate(
    sc: Scenario, rng: random.Random, share: float = 0.1, dir_chance: float = 0.5
) -> dict[str, int]:
    """Modify, delete and add files, sometimes drop or add a directory. Deterministic
    for a given rng and local tree."""
    files = sorted(sc.local_files())
    changed = rng.sample(files, max(1, int(len(files) * share))) if files else []
    for path in changed:
        sc.write(path, random_bytes(rng))
    files = sorted(sc.local_files())
    gone = rng.sample(files, max(1, int(len(files) * share / 2))) if files else []
    for path in gone:
        sc.remove(path)
    added = [random_path(rng) for _ in range(max(1, int(len(files) * share / 2)))]
    for path in added:
        sc.write(path, random_bytes(rng))
    dirs = sorted(d for d in sc.local_dirs() if d not in ("empty dir",))
    dropped = 0
    if dirs and rng.random() < dir_chance:
        sc.remove(rng.choice(dirs))
        dropped = 1
    if rng.random() < dir_chance:
        sc.write(f"new {rng.randrange(1000)}/{random_name(rng)}", random_bytes(rng))
    sc.write("it's.txt", random_bytes(rng, 20, 40))  # replace + rename every round
    return {
        "modified": len(changed) + 1,
        "deleted": len(gone),
        "added": len(added),
        "dirs_dropped": dropped,
    }


# -- the emulator --------------------------------------------------------------------


ROLL_KINDS = ("reset", "429", "5xx", "html", "late")  # the emulator's order of rolls


class FaultLedger:
    """Counts the faults an emulator injects, by (endpoint, kind), and (``token_every``)
    expires every token after each ``token_every`` API requests, faulted ones included,
    so that clients must re-authorize on demand, again and again (requests in flight
    with the old token are refused too, as when another client authorizes with the same
    keys)."""

    def __init__(self, srv: EmulatorServer, token_every: int = 0) -> None:
        self.srv = srv
        self.token_every = token_every
        self.requests = 0
        self.expired = 0
        self.faults: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._here = threading.local()  # this handler thread's endpoint and roll number
        self._record, self._roll = srv.app.record, srv.app.roll
        srv.app.record = self._on_request  # type: ignore[method-assign]
        srv.app.roll = self._on_roll  # type: ignore[method-assign]

    def _on_request(self, method: str, endpoint: str) -> None:
        self._record(method, endpoint)
        self._here.endpoint, self._here.rolls = endpoint, 0
        with self._lock:
            self.requests += 1
            due = self.token_every and self.requests % self.token_every == 0
        if due:
            self.srv.store.expire_tokens()
            with self._lock:
                self.expired += 1

    def _on_roll(self, rate: float) -> bool:
        fired = self._roll(rate)
        endpoint = getattr(self._here, "endpoint", "?")
        n = getattr(self._here, "rolls", 0)
        self._here.rolls = n + 1
        if fired:
            kind = ROLL_KINDS[n] if n < len(ROLL_KINDS) else "other"
            with self._lock:
                self.faults[(endpoint, kind)] += 1
        return fired

    def injected(self, *, endpoints: tuple[str, ...] = (), kinds: tuple[str, ...] = ()) -> int:
        return sum(
            n
            for (endpoint, kind), n in self.faults.items()
            if (not endpoints or endpoint in endpoints) and (not kinds or kind in kinds)
        )

    def stop(self) -> None:
        self.srv.app.record = self._record  # type: ignore[method-assign]
        self.srv.app.roll = self._roll  # type: ignore[method-assign]


def issued_tokens(srv: EmulatorServer) -> set[str]:
    """Every access token the emulator ever issued (its journal keeps revoked ones too)."""
    tokens: set[str] = set()
    journal = srv.options.data_dir / "store.jsonl"
    with journal.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("t") == "token":
                rec = entry["r"]
                tokens.add(rec if isinstance(rec, str) else rec["id"])
    with srv.store.lock:
        tokens |= set(srv.store.tokens)
    return tokens


def count(srv: EmulatorServer, endpoint: str | None = None) -> int:
    return sum(1 for _, e in srv.requests if endpoint is None or e == endpoint)


# -- processes -----------------------------------------------------------------------


def syncd_cmd(sc: Scenario, *args: str, crash: tuple[str, int] | None = None) -> list[str]:
    """``syncd --config … --log-format json ARGS`` (under ``crashpoint`` when ``crash``
    is (point, n): the process kills itself at the n-th occurrence of point)."""
    head = [*CRASHPOINT, crash[0], str(crash[1]), "--"] if crash else SYNCD
    return [*head, "--config", str(sc.config_path), "--log-format", "json", *args]


def spawn(
    sc: Scenario, *args: str, crash: tuple[str, int] | None = None, stderr: Path | None = None
) -> subprocess.Popen[bytes]:
    err = stderr.open("ab") if stderr is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            syncd_cmd(sc, *args, crash=crash),
            cwd=REPO,
            env=quiet_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    finally:
        if stderr is not None:
            err.close()  # type: ignore[union-attr]


def kill9(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)


def wait_for(what: str, predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


# -- figures -------------------------------------------------------------------------


@dataclass
class Figures:
    """Numbers a run reports (printed with -s, appended to $SYNCD_RELIABILITY_REPORT)."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def add(self, key: str, n: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + n

    def emit(self) -> None:
        line = json.dumps({"test": self.name, **self.values}, sort_keys=True)
        print(f"\nreliability figures: {line}")
        target = os.environ.get("SYNCD_RELIABILITY_REPORT")
        if target:
            with open(target, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")


@contextmanager
def figures(name: str) -> Iterator[Figures]:
    fig = Figures(name)
    try:
        yield fig
    finally:
        fig.emit()
