"""Fixtures shared by every test suite: the bundled emulator over real HTTP.

``emulator`` is a started ``EmulatorServer`` with a fresh data dir per test;
``emulator_factory(**options)`` starts more (other faults, error style, token TTL …).
At teardown each one is stopped and must not have hit an internal error: a test that
trips an emulator bug fails loudly instead of passing against a broken fake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.emulator import EmulatorOptions, EmulatorServer

EmulatorFactory = Callable[..., EmulatorServer]


def _check_clean(srv: EmulatorServer) -> None:
    errors = srv.errors
    assert not errors, "the emulator failed internally:\n" + "\n".join(errors)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    srv = EmulatorServer(EmulatorOptions(data_dir=tmp_path / "emulator")).start()
    try:
        yield srv
    finally:
        srv.stop()
    _check_clean(srv)


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[EmulatorFactory]:
    started: list[EmulatorServer] = []

    def make(**overrides: Any) -> EmulatorServer:
        overrides.setdefault("data_dir", tmp_path / f"emulator-{len(started)}")
        srv = EmulatorServer(EmulatorOptions(**overrides)).start()
        started.append(srv)
        return srv

    try:
        yield make
    finally:
        for srv in started:
            srv.stop()
    for srv in started:
        _check_clean(srv)
