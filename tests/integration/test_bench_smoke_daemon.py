"""CI keeps the daemon benchmark scripts working: each runs in its ``--smoke`` mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify, /proc")


def run_bench(script: str, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SYNCD_", "NOTIFY_", "WATCHDOG_"))}
    env["SYNCD_BENCH_TMP"] = str(tmp_path)  # not /work: CI machines have no such thing
    done = subprocess.run([sys.executable, str(REPO / "bench" / script), "--smoke"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=100,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == [], "the work directory was not removed"
    return done.stdout


def test_daemon_latency_smoke(tmp_path: Path) -> None:
    out = run_bench("daemon_latency.py", tmp_path)
    assert "syncd run latency: p50" in out
    assert "raw inotify latency" in out
    assert "p50 / (debounce + raw p50)" in out


def test_daemon_idle_smoke(tmp_path: Path) -> None:
    out = run_bench("daemon_idle.py", tmp_path)
    assert "inotify watches held: 11;" in out  # 10 directories and the root
    assert "requests while idle: 0" in out
    assert "ratio RSS syncd/sleep" in out
