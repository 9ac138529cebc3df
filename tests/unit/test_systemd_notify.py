"""sd_notify over a real datagram socket owned by the test (path and abstract namespace)."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.systemd import Notifier


class FakeManager:
    """The service manager's end: a bound AF_UNIX datagram socket."""

    def __init__(self, bind_to: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bind_to)
        self.sock.settimeout(5.0)

    def receive(self) -> list[str]:
        return self.sock.recv(4096).decode().split("\n")

    def nothing_received(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.recv(4096)
        except BlockingIOError:
            return True
        finally:
            self.sock.settimeout(5.0)
        return False


@pytest.fixture
def manager() -> Iterator[FakeManager]:
    # AF_UNIX paths are limited to 108 bytes and pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="sdn-", dir="/tmp") as short:
        fake = FakeManager(os.path.join(short, "notify.sock"))
        yield fake
        fake.sock.close()


def test_path_socket_receives_ready_status_stopping(manager: FakeManager) -> None:
    env = {"NOTIFY_SOCKET": manager.sock.getsockname()}
    with Notifier.from_env(env) as notifier:
        assert notifier.enabled
        assert notifier.ready(status="watching 2 pairs")
        assert manager.receive() == ["READY=1", "STATUS=watching 2 pairs"]
        assert notifier.status("pending 3\nlast error: none")
        assert manager.receive() == ["STATUS=pending 3 last error: none"]
        assert notifier.stopping()
        assert manager.receive() == ["STOPPING=1"]
        assert notifier.reloading()
        reload_msg = manager.receive()
        assert reload_msg[0] == "RELOADING=1"
        assert reload_msg[1].startswith("MONOTONIC_USEC=")


def test_abstract_namespace_socket() -> None:
    name = f"syncd-test-{uuid.uuid4().hex}"
    fake = FakeManager("\0" + name)
    try:
        with Notifier.from_env({"NOTIFY_SOCKET": "@" + name}) as notifier:
            assert notifier.ready()
            assert fake.receive() == ["READY=1"]
    finally:
        fake.sock.close()


def test_watchdog_pings_at_half_the_interval(manager: FakeManager) -> None:
    env = {"NOTIFY_SOCKET": manager.sock.getsockname(), "WATCHDOG_USEC": "60000000"}
    with Notifier.from_env(env) as notifier:
        assert notifier.watchdog_interval() == 30.0
        assert notifier.watchdog()
        assert manager.receive() == ["WATCHDOG=1"]


def test_watchdog_is_off_without_usec_or_for_another_pid(manager: FakeManager) -> None:
    sock = manager.sock.getsockname()
    for env in (
        {"NOTIFY_SOCKET": sock},
        {"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "nonsense"},
        {"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "0"},
        {"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"},
    ):
        with Notifier.from_env(env, pid=4242) as notifier:
            assert notifier.watchdog_interval() is None
            assert not notifier.watchdog()
    assert manager.nothing_received()
    env = {"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "4242"}
    with Notifier.from_env(env, pid=4242) as notifier:
        assert notifier.watchdog_interval() == 1.0


def test_everything_is_a_no_op_without_the_socket() -> None:
    with Notifier.from_env({"WATCHDOG_USEC": "60000000"}) as notifier:
        assert not notifier.enabled
        assert notifier.watchdog_interval() is None
        assert not notifier.ready()
        assert not notifier.status("x")
        assert not notifier.stopping()
        assert not notifier.watchdog()
    assert not Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled


def test_a_vanished_manager_is_not_an_error(tmp_path: Path) -> None:
    with Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) as notifier:
        assert notifier.enabled
        assert not notifier.ready()  # logged at debug level, never raised


def test_from_env_reads_the_process_environment(
    manager: FakeManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", manager.sock.getsockname())
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    with Notifier.from_env() as notifier:
        assert notifier.status("hello")
        assert manager.receive() == ["STATUS=hello"]
