"""The benchmark scripts still run: each ``bench/*.py`` figure script with ``--smoke``.

Tiny sizes and no thresholds (a figure may say MISS): this only proves that a script
starts its emulator, drives syncd and its baseline, and prints its figures, so that a
full run (bench/README.md) does not rot between releases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
HELPERS = {"common.py", "bare_upload.py"}  # imported or driven by the figure scripts
ELSEWHERE = {"daemon_latency.py", "daemon_idle.py"}  # test_bench_smoke_daemon.py
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name not in HELPERS | ELSEWHERE)


def test_every_figure_script_is_covered() -> None:
    expected = {"initial_sync.py", "big_file.py", "noop_pass.py", "memory_per_file.py",
                "burst.py"}  # fmt: skip
    assert expected <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_runs_in_smoke_mode(script: str, tmp_path: Path) -> None:
    env = {**os.environ, "SYNCD_BENCH_TMP": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke"],
        capture_output=True, text=True, env=env, timeout=100, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "PASS" in proc.stdout or "MISS" in proc.stdout, proc.stdout[-2000:]
    figures = [line for line in proc.stdout.splitlines() if line.startswith("figure: ")]
    for line in figures:  # the machine-readable summary, where a script prints one
        assert json.loads(line.removeprefix("figure: "))["bench"]
    assert list(tmp_path.iterdir()) == [], "the work directory was not removed"
