"""Sizes of the reliability suites: small enough for CI by default, large by hand.

``SYNCD_SOAK=1`` switches every suite to its long version (see docs/reliability.md);
each size can also be set on its own, e.g. ``SYNCD_TORTURE_KILLS=300``. Every run is
seeded (``SYNCD_RELIABILITY_SEED``, default 20261127) and so reproducible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest


def _int(name: str, ci: int, long: int, soak: bool) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else (long if soak else ci)


@dataclass(frozen=True)
class Scale:
    soak: bool
    seed: int
    soak_files: int  # files in the fault-soak tree
    soak_rounds: int  # mutate-then-converge rounds of the fault soak
    torture_files: int  # files in the crash-torture tree
    torture_kills: int  # random kill -9 of `syncd sync`
    daemon_kills: int  # random kill -9 of `syncd run`
    crashpoints: int  # occurrences tried per targeted crash point
    big_dir: int  # files in one directory
    depth: int  # levels of the deep tree

    @classmethod
    def from_env(cls) -> Scale:
        soak = os.environ.get("SYNCD_SOAK", "") not in ("", "0")
        return cls(
            soak=soak,
            seed=_int("SYNCD_RELIABILITY_SEED", 20261127, 20261127, soak),
            soak_files=_int("SYNCD_SOAK_FILES", 120, 1500, soak),
            soak_rounds=_int("SYNCD_SOAK_ROUNDS", 2, 8, soak),
            torture_files=_int("SYNCD_TORTURE_FILES", 200, 600, soak),
            torture_kills=_int("SYNCD_TORTURE_KILLS", 12, 200, soak),
            daemon_kills=_int("SYNCD_DAEMON_KILLS", 5, 60, soak),
            crashpoints=_int("SYNCD_CRASHPOINTS", 2, 8, soak),
            big_dir=_int("SYNCD_BIG_DIR_FILES", 10_000, 10_000, soak),
            depth=_int("SYNCD_DEPTH", 100, 100, soak),
        )


@pytest.fixture(scope="session")
def scale() -> Scale:
    return Scale.from_env()
