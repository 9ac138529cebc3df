"""Fixtures for the API client tests: a scriptable fake site and remotes that close."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from syncd.config import RemoteConfig
from syncd.remote.uploadapi import UploadApiRemote
from syncd.retry import RetryPolicy
from tests.client.fake_server import FakeServer

FAST = RetryPolicy.fast()

RemoteFactory = Callable[..., UploadApiRemote]


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_remote() -> Iterator[RemoteFactory]:
    """make_remote(api_url, key1, key2, timeout=…, policy=…, **remote_kwargs)."""
    made: list[UploadApiRemote] = []

    def make(
        api_url: str,
        key1: str,
        key2: str,
        *,
        timeout: float = 5.0,
        policy: RetryPolicy = FAST,
        **kwargs: Any,
    ) -> UploadApiRemote:
        config = RemoteConfig(api_url=api_url, key1=key1, key2=key2, timeout=timeout)
        remote = UploadApiRemote(config, policy=policy, **kwargs)
        made.append(remote)
        return remote

    yield make
    for remote in made:
        remote.close()


@pytest.fixture
def remote(fake: FakeServer, make_remote: RemoteFactory) -> UploadApiRemote:
    return make_remote(fake.api_url, fake.key1, fake.key2)
