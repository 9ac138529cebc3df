"""A whole-tree walk shared with a second process, for big trees on machines with cores
to spare.

``split_walk`` yields exactly what ``scan.walk`` yields, in the same order, but a helper
process (``python -m syncd.scan_helper``) scans the later part of the tree while this
process scans the first. Why: a pass over a big tree with little to do is CPU-bound in
Python - one scandir, one lstat and one state lookup per file (bench/RESULTS.md) - while
the second core sits idle. Why a fresh interpreter and not ``fork``: this process holds
an SQLite connection, which must never cross a fork, and may run upload threads; the
helper opens its own read-only connection to the state DB.

How: the helper starts before the root is listed and this process walks on alone while
it starts (~60 ms). Once the helper says it is ready, the bottom half of the directories
then waiting on the stack (the subtrees a walk reaches last) is sent to it; this process
walks the rest, yields it, then yields the helper's scans in the order they came, which
is the order ``walk`` would have used. A tree walked before the helper is ready is
simply walked alone. While walking its own part it drains the helper's output into a buffer
(at most ``BUFFER_CAP`` bytes; beyond that the helper waits), so neither side stalls.

Failure: the helper may never cost a pass. If it cannot start, exits early or sends
something unreadable, one warning is logged and this process walks the helper's part
itself, skipping the directories whose scans it already yielded. Closing the generator
early (a stop, an abort) kills and reaps the helper.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from syncd.log import get_logger
from syncd.model import DirScan
from syncd.paths import IgnoreRules
from syncd.scan import Known, Pending, Walker
from syncd.scan_helper import FRAME, READY

log = get_logger(__name__)

# A pair with fewer folder records is walked alone: the helper's ~60 ms of start-up would
# not pay for itself (a walk costs ~0.5 ms per directory of 100 files here).
SPLIT_MIN_FOLDERS = 100
# The helper's part of the directories waiting when the walk splits (once the helper
# says it is ready). More than half: this process also plans every directory. On the
# 100k-file bench tree 0.58 beat 0.5, 0.66 and 0.75 (medians of 11 interleaved runs).
HELPER_SHARE = 0.58
BUFFER_CAP = 8 << 20  # bytes of the helper's answers held here before it must wait
_READ = 1 << 20


@dataclass(frozen=True)
class HelperJob:
    """What the helper needs besides the walk itself: the state DB and pair whose
    ``StateStore.quiet_keys`` are the walk's ``known`` (the helper reads them there
    itself), and (tests only: an injected fault) another command to run."""

    db: Path | None
    pair: str
    command: tuple[str, ...] | None = None
    wait_ready: float = 0.0  # tests: wait this long for "ready" before walking at all


class HelperFailed(Exception):
    """The helper stopped before saying it was done; the message says why."""


def split_walk(
    root: Path,
    rules: IgnoreRules,
    *,
    follow_symlinks: bool = False,
    known: Known | None = None,
    helper: HelperJob | None = None,
) -> Iterator[DirScan]:
    """``walk(root, rules, …)`` over the whole tree, with ``helper`` (None: alone)."""
    walker = Walker(root, rules, follow_symlinks, known)
    stack: list[Pending] = [("", walker.ancestors_of(""))]
    if helper is None or (proc := _Helper.start(helper)) is None:
        yield from walker.descend(stack)
        return
    share: list[Pending] = []
    try:
        proc.wait_ready(helper.wait_ready)
        while stack:
            if not share and proc.ready and len(stack) >= 2:
                cut = min(len(stack) - 1, max(1, round(len(stack) * HELPER_SHARE)))
                share = stack[:cut]  # the bottom of the stack: what a walk reaches last
                del stack[:cut]
                proc.send(_request(walker, rules, helper, share))
            rel, ancestors = stack.pop()
            scan, subdirs = walker.scan(rel, ancestors)
            yield scan
            walker.push(stack, subdirs, ancestors)
            proc.drain()
        if share:
            yield from _helper_part(proc, walker, share)
    finally:
        proc.close()


def _request(
    walker: Walker, rules: IgnoreRules, helper: HelperJob, share: list[Pending]
) -> dict[str, object]:
    return {
        "root": walker.root,
        "rules": rules,
        "follow_symlinks": walker.follow,
        "db": str(helper.db) if helper.db is not None and walker.known is not None else None,
        "pair": helper.pair,
        "stack": share,
    }


def _helper_part(proc: _Helper, walker: Walker, share: list[Pending]) -> Iterator[DirScan]:
    """The helper's scans; if it fails, the rest of its part walked here."""
    done: set[str] = set()
    try:
        for scan in proc.scans():
            done.add(scan.path)
            yield scan
        return
    except HelperFailed as exc:
        log.warning("scan helper failed; walking its part in this process", error=str(exc))
    for scan in walker.descend(share):
        if scan.path not in done:
            yield scan


class _Helper:
    """The helper process, the request not yet written to it, and the bytes it has sent
    that were not read yet. Both pipes are non-blocking: the walk never waits on it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        assert proc.stderr is not None
        self.fd_in, self.fd_out = proc.stdin.fileno(), proc.stdout.fileno()
        self.fd_err = proc.stderr.fileno()
        for fd in (self.fd_in, self.fd_out, self.fd_err):
            os.set_blocking(fd, False)
        self.err_tail = b""  # the end of what it said on stderr (read as it comes: a
        # helper blocked on a full stderr pipe would never finish its answers)
        self.outgoing = b""  # the request, as far as not written yet
        self.buffer = bytearray()
        self.eof = False
        self.ready = False  # the helper has started and waits for its work
        self.done = False  # the helper answered its last scan
        self.peak_rss_kib = 0  # its own peak, as it reported it
        self.failure: str | None = None

    @classmethod
    def start(cls, job: HelperJob) -> _Helper | None:
        try:
            command, env = helper_command()
            proc = subprocess.Popen(
                job.command or command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=env,
            )  # fmt: skip
        except (OSError, ValueError) as exc:  # ValueError: no interpreter or package path
            log.warning("cannot start the scan helper; walking alone", error=str(exc))
            return None
        return cls(proc)

    def send(self, request: dict[str, object]) -> None:
        """Queue the work; it is written as the helper reads it (see ``drain``)."""
        try:
            self.outgoing = pickle.dumps(request, pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            self.failure = f"could not send the work: {exc}"
            self._close_stdin()
            return
        self._push()

    def drain(self) -> None:
        """Write what the helper will take of the request, and read what it has answered,
        without waiting; hold at most ``BUFFER_CAP`` bytes of answers."""
        self._push()
        while not self.eof and len(self.buffer) < BUFFER_CAP and self._read():
            pass
        if not self.ready and (frame := self._frame_at(0)) is not None:
            body, end = frame
            self.ready = body == READY
            del self.buffer[:end]
            if not self.ready:
                self.failure = "its first answer was not 'ready'"

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready and not self.eof and (left := deadline - time.monotonic()) > 0:
            select.select([self.fd_out, self.fd_err], [], [], left)
            self.drain()

    def scans(self) -> Iterator[DirScan]:
        """Each DirScan the helper sent, in order, until it says it is done."""
        if not self.ready:  # the work was never sent: nothing to wait for
            raise HelperFailed(self.failure or "it never said it was ready")
        while self.outgoing and self.failure is None:
            select.select([], [self.fd_in], [])
            self._push()
        if self.failure is not None:
            raise HelperFailed(self.failure)
        pos = 0
        while True:
            frame = self._frame_at(pos)
            if frame is None:
                del self.buffer[:pos]
                pos = 0
                if self.eof:
                    raise HelperFailed(self._exit_reason())
                select.select([self.fd_out, self.fd_err], [], [])
                self._read()
                continue
            body, pos = frame
            try:
                answer = pickle.loads(body)
            except Exception as exc:  # any unreadable answer is a failure
                raise HelperFailed(f"unreadable answer: {exc}") from exc
            if isinstance(answer, tuple) and answer[:1] == ("done",):
                self.done, self.peak_rss_kib = True, answer[1]
                return
            if not isinstance(answer, DirScan):
                raise HelperFailed(str(answer))
            yield answer

    def close(self) -> None:
        """Reap the helper (killed first unless it said it was done); never raises."""
        if self.proc.returncode is None:
            if not self.done or not _exits_soon(self.proc):
                # Not Popen.kill: it would reap the process first, losing its usage.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
            self._reap()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _reap(self) -> None:
        try:
            _, status, usage = os.wait4(self.proc.pid, 0)
        except ChildProcessError:  # reaped elsewhere: nothing left to learn
            self.proc.returncode = -signal.SIGKILL
            return
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        if not self.ready and self.proc.returncode > 0:  # it failed on its own
            log.warning("scan helper failed to start; walked alone", error=self._exit_reason())
        log.debug("scan helper reaped", exit_code=self.proc.returncode,
                  peak_rss_kib=self.peak_rss_kib,
                  cpu_s=round(usage.ru_utime + usage.ru_stime, 3))  # fmt: skip

    # -- internals ---------------------------------------------------------------------
    def _push(self) -> None:
        if not self.outgoing:
            return
        try:
            written = os.write(self.fd_in, self.outgoing)
        except BlockingIOError:
            return
        except OSError as exc:  # EPIPE: the helper is gone
            self.failure = f"could not send the work: {exc.strerror or exc}"
            self.outgoing = b""
            self._close_stdin()
            return
        self.outgoing = self.outgoing[written:]
        if not self.outgoing:
            self._close_stdin()  # end of the request

    def _close_stdin(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()

    def _read(self) -> bool:
        """One read of the helper's answers; False when none was waiting."""
        self._read_stderr()
        try:
            chunk = os.read(self.fd_out, _READ)
        except BlockingIOError:
            return False
        if not chunk:
            self.eof = True
        self.buffer += chunk
        return bool(chunk)

    def _frame_at(self, pos: int) -> tuple[bytes, int] | None:
        """The answer starting at ``pos`` and where the next starts, if all of it is here."""
        if len(self.buffer) - pos < FRAME.size:
            return None
        end = pos + FRAME.size + FRAME.unpack_from(self.buffer, pos)[0]
        if len(self.buffer) < end:
            return None
        return bytes(self.buffer[pos + FRAME.size : end]), end

    def _read_stderr(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError: nothing to read now
            while chunk := os.read(self.fd_err, _READ):
                self.err_tail = (self.err_tail + chunk)[-4096:]

    def _exit_reason(self) -> str:
        code = self.proc.returncode if self.proc.returncode is not None else self.proc.wait()
        self._read_stderr()
        err = self.err_tail.decode("utf-8", "replace").strip()
        last = err.splitlines()[-1] if err else "no message"
        return f"it ended (exit code {code}) before it was done: {last}"


def _exits_soon(proc: subprocess.Popen[bytes], timeout: float = 2.0) -> bool:
    """Whether a helper that answered everything exits within ``timeout`` (left
    unreaped: ``close`` reaps it with its resource usage)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        time.sleep(0.002)
    return False


def helper_command() -> tuple[list[str], dict[str, str]]:
    """The helper's command line and environment (also for bench/memory_per_file.py).

    This environment with ``sys.path`` as PYTHONPATH: the helper runs without ``site``
    (-S, ~20 ms less start-up) yet must import syncd and its libraries exactly as this
    process does (an editable install puts no syncd directory on sys.path)."""
    import syncd

    if not sys.executable or not syncd.__file__:  # embedded or frozen: no interpreter to run
        raise ValueError("no Python interpreter or syncd package path to start it with")
    package_parent = str(Path(syncd.__file__).resolve().parent.parent)
    entries = [package_parent] + [p for p in sys.path if p and os.path.isabs(p)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(entries))}
    return [sys.executable, "-S", "-m", "syncd.scan_helper"], env
