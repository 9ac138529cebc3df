"""The second process of ``scan_split``: walk the directories it is sent, answer their scans.

Run as ``python -m syncd.scan_helper`` by ``scan_split`` only. Says it is ready once its
imports are done, then reads one pickled request on stdin (root, ignore rules, the stack
of directories to walk, the state DB and pair); an empty stdin means there is no work
after all. Answers on stdout, each as an 8-byte length and a pickle: "ready", every
``DirScan`` in walk order, then ``("done", peak RSS in KiB)``, or a str saying why it
stopped. It reads the state DB through its own read-only connection and writes nothing
else anywhere; a parent that goes away ends it (broken pipe)."""

from __future__ import annotations

import pickle
import signal
import struct
import sys
from pathlib import Path
from typing import BinaryIO

from syncd.migrations import quiet_reader
from syncd.scan import Walker

FRAME = struct.Struct("<Q")  # each answer: its pickle's length, then the pickle
READY = pickle.dumps("ready", pickle.HIGHEST_PROTOCOL)  # the first answer, before any work


def main() -> int:
    # Ctrl-C reaches the whole process group, systemd's stop the whole cgroup: the parent
    # decides what they mean (and kills this process if it abandons the walk).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = sys.stdout.buffer
    try:
        out.write(FRAME.pack(len(READY)) + READY)
        out.flush()
    except BrokenPipeError:
        return 0
    data = sys.stdin.buffer.read()
    if not data:
        return 0
    try:
        request = pickle.loads(data)
        db, pair = request["db"], request["pair"]
        known = quiet_reader(Path(db), pair) if db is not None else None
        walker = Walker(Path(request["root"]), request["rules"], request["follow_symlinks"], known)
        for scan in walker.descend(request["stack"]):
            _answer(out, scan)
        _answer(out, ("done", _peak_rss_kib()))
        out.flush()
    except BrokenPipeError:  # the parent stopped listening: nothing left to do
        return 0
    except Exception as exc:  # the parent walks the rest and says why
        try:
            _answer(out, f"{type(exc).__name__}: {exc}")
            out.flush()
        except OSError:
            pass
        return 1
    return 0


def _peak_rss_kib() -> int:
    """This process's own peak RSS (VmHWM). Not getrusage: after a vfork+exec it also
    counts the parent's memory, which this process only borrowed before its exec."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _answer(out: BinaryIO, obj: object) -> None:
    body = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    out.write(FRAME.pack(len(body)))
    out.write(body)


if __name__ == "__main__":
    sys.exit(main())
