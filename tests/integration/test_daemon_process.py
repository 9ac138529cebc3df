"""``syncd run`` as a real process under a fake service manager: sd_notify datagrams on a
socket the test owns, real signals (SIGTERM, SIGHUP), ``syncd status`` alongside, and the
state left behind (no intent, lock released, token disabled)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.emulator import EmulatorServer
from syncd.lock import read_holder
from syncd.state import StateStore
from tests.scenario import SYNCD, Scenario

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify, signals")

START = 30.0  # interpreter start + start pass, on a loaded CI machine
STOP = 10.0  # the bound for SIGTERM -> exit


class FakeManager:
    """systemd's end of ``$NOTIFY_SOCKET``: an abstract-namespace datagram socket, read
    at once by a thread as PID 1 does (a full socket queue would block the sender)."""

    def __init__(self) -> None:
        self.name = f"syncd-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.sock.settimeout(0.05)
        self.messages: list[list[str]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="fake-manager", daemon=True)
        self._reader.start()

    @property
    def env(self) -> str:
        return "@" + self.name

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self.messages.append(data.decode().split("\n"))
                self._cond.notify_all()

    def wait_for(self, line: str, timeout: float, *, after: int = 0) -> int:
        """Wait until a datagram (the ``after``-th or later) holds ``line``; its index."""
        def found() -> int | None:
            for i, message in enumerate(self.messages[after:], start=after):
                if line in message:
                    return i
            return None

        with self._cond:
            ok = self._cond.wait_for(lambda: found() is not None, timeout)
            assert ok, f"no {line!r} within {timeout:g} s; got {self.messages}"
            index = found()
            assert index is not None
            return index

    def count(self) -> int:
        with self._cond:
            return len(self.messages)

    def close(self) -> None:
        self._closed = True
        self._reader.join(5)
        self.sock.close()


class Service:
    """One ``python -m syncd --config … run`` process, its log in a file."""

    def __init__(self, sc: Scenario, manager: FakeManager, **env: str) -> None:
        self.sc = sc
        self.log_path = sc.tmp / f"daemon-{uuid.uuid4().hex[:6]}.log"
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SYNCD_", "NOTIFY_", "WATCHDOG_"))}
        full_env.update(NOTIFY_SOCKET=manager.env, **env)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [*SYNCD, "--config", str(sc.config_path), "--log-format", "json", "run"],
                stdout=log, stderr=subprocess.STDOUT, env=full_env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"syncd run did not exit within {timeout:g} s:\n{self.log()}") from None

    def ensure_gone(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def manager() -> Iterator[FakeManager]:
    fake = FakeManager()
    yield fake
    fake.close()


@pytest.fixture
def sc(tmp_path: Path, emulator: EmulatorServer) -> Scenario:
    return Scenario(tmp_path, emulator, debounce=0.5, rescan_interval=0)


@pytest.fixture
def service(sc: Scenario, manager: FakeManager) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(**env: str) -> Service:
        svc = Service(sc, manager, **env)
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.ensure_gone()


def wait_until(what: str, predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout:g} s: {what}"
        time.sleep(0.02)


def remote_has(sc: Scenario, rel: str, data: bytes) -> bool:
    digest = hashlib.md5(data).hexdigest()
    return [f["md5"] for f in sc.remote_files() if f["rel"] == rel] == [digest]


def assert_clean_state(sc: Scenario) -> None:
    """No intent left, the lock released, every active remote copy recorded."""
    assert read_holder(sc.state_db) is None
    with StateStore(sc.state_db) as state:
        assert state.intents("main") == []
        recorded = {rec.file_id for rec in state.iter_files("main") if rec.file_id}
    unrecorded = [f["rel"] for f in sc.remote_files() if f["id"] not in recorded]
    assert unrecorded == [], f"remote copies nobody recorded: {unrecorded}"


def test_run_notifies_the_service_manager_and_stops_cleanly_on_sigterm(
    sc: Scenario, manager: FakeManager, service: Callable[..., Service]
) -> None:
    sc.write("a.txt", b"uploaded by the start pass")
    svc = service(WATCHDOG_USEC="2000000")  # WatchdogSec=2: a ping every second
    ready = manager.wait_for("READY=1", START)
    assert any(line.startswith("STATUS=") for line in manager.messages[ready]), manager.messages
    assert remote_has(sc, "a.txt", b"uploaded by the start pass")  # READY after the pass

    status = sc.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["daemon"] == {"running": True, "pid": svc.proc.pid}
    text = sc.cli("status")
    assert f"running (pid {svc.proc.pid}, queue 0)" in text.stdout

    sc.write("b.txt", b"a live change")
    wait_until("b.txt uploaded", lambda: remote_has(sc, "b.txt", b"a live change"), 2.5)
    manager.wait_for("WATCHDOG=1", 5.0, after=ready + 1)

    svc.signal(signal.SIGTERM)
    stopped = time.monotonic()
    assert svc.wait(STOP) == 0, svc.log()
    assert time.monotonic() - stopped < STOP
    manager.wait_for("STOPPING=1", 1.0)
    assert_clean_state(sc)
    assert ("POST", "disable_access_token") in sc.requests()
    after = json.loads(sc.cli("status", "--json").stdout)
    assert after["daemon"] == {"running": False, "pid": None}


def test_sigterm_during_uploads_finishes_in_flight_work_and_records_it(
    sc: Scenario, emulator: EmulatorServer, manager: FakeManager,
    service: Callable[..., Service]
) -> None:
    sc.write_config(workers=2, bwlimit="256K")  # with 1 s of burst credit
    svc = service()
    manager.wait_for("READY=1", START)
    for i in range(6):  # the first two take 3 s: in flight when stopped; four never start
        sc.write(f"media/{i}.bin", os.urandom(512 * 1024))

    def uploading() -> bool:
        with StateStore(sc.state_db) as state:
            return any(i.kind == "upload" for i in state.intents("main"))  # not a mkdir

    wait_until("an upload in flight", uploading, 5.0)
    svc.signal(signal.SIGTERM)
    assert svc.wait(STOP) == 0, svc.log()
    manager.wait_for("STOPPING=1", 1.0)
    assert_clean_state(sc)
    assert ("POST", "disable_access_token") in sc.requests()
    events = [json.loads(line) for line in svc.log().splitlines() if line.startswith("{")]
    assert any(e.get("event") == "daemon stopped" and e.get("exit_code") == 0 for e in events)
    sent = [e["path"] for e in events if e.get("event") == "uploaded"]
    assert 1 <= len(sent) <= 2, sent  # what was in flight finished, nothing new started
    with StateStore(sc.state_db) as state:
        assert {r.path for r in state.iter_files("main") if r.file_id} == set(sent)
    # What was not sent is simply not recorded: the next start uploads it.
    sc.write_config(bwlimit="")
    svc2 = service()
    manager.wait_for("READY=1", START, after=manager.count())
    svc2.signal(signal.SIGTERM)
    assert svc2.wait(STOP) == 0
    sc.assert_in_sync()


def test_sighup_reloads_the_config(
    sc: Scenario, tmp_path: Path, manager: FakeManager, service: Callable[..., Service]
) -> None:
    svc = service()
    ready = manager.wait_for("READY=1", START)
    other = tmp_path / "other"
    other.mkdir()
    with sc.config_path.open("a") as f:
        f.write(f'[[pair]]\nname = "other"\nlocal = "{other}"\nremote_path = "other"\n')
    svc.signal(signal.SIGHUP)
    reloading = manager.wait_for("RELOADING=1", 5.0, after=ready + 1)
    manager.wait_for("READY=1", 10.0, after=reloading)
    (other / "new.txt").write_bytes(b"in the added pair")

    def uploaded() -> bool:
        return any(f["path"] == "other/new.txt" for f in sc.server.tree()["files"])

    wait_until("file of the added pair uploaded", uploaded, 2.5)
    svc.signal(signal.SIGTERM)
    assert svc.wait(STOP) == 0, svc.log()
