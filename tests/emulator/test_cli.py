"""``run_emulator`` (what ``syncd emulator`` runs) and the click fault options."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import httpx
from click.testing import CliRunner

from syncd.emulator.cli_options import add_fault_options

ROOT = Path(__file__).resolve().parents[2]


def start(*args: str) -> subprocess.Popen[str]:
    code = (
        "import sys; from pathlib import Path; from syncd.emulator.main import run_emulator;"
        "run_emulator('127.0.0.1', 0, Path(sys.argv[1]) if sys.argv[1] else None,"
        " fail_rate=None, token_ttl=120.0)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def read_banner(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Serving"):
            break
    return "".join(lines)


def test_run_emulator_prints_a_config_snippet_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = start(str(tmp_path / "data"))
    try:
        banner = read_banner(proc)
        api_url = re.search(r'api_url = "(http://127\.0\.0\.1:\d+/api/v2/)"', banner)
        key1 = re.search(r'key1 = "(\w{64})"', banner)
        key2 = re.search(r'key2 = "(\w{64})"', banner)
        assert api_url and key1 and key2, banner
        assert "[remote]" in banner and "allow_http" in banner and "kept across restarts" in banner
        assert "token idle expiry 120s" in banner
        r = httpx.post(
            api_url.group(1) + "authorize", data={"key1": key1.group(1), "key2": key2.group(1)}
        )
        assert r.json()["_status"] == "success"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "emulator stopped" in out
    assert (tmp_path / "data" / "store.jsonl").exists()


def test_sigint_stops_a_temporary_emulator() -> None:
    proc = start("")
    try:
        banner = read_banner(proc)
        assert "temporary (deleted on exit)" in banner
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err


def test_fault_options_become_run_emulator_kwargs() -> None:
    seen: dict[str, Any] = {}

    @click.command()
    @add_fault_options
    def cmd(**kwargs: Any) -> None:
        seen.update(kwargs)

    result = CliRunner().invoke(
        cmd,
        [
            "--fail-rate",
            "0.25",
            "--max-upload-size",
            "100M",
            "--hash-always",
            "--error-style",
            "_status",
            "--retry-after",
            "0.5",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen["fail_rate"] == 0.25 and seen["max_upload_size"] == 100 * 1024 * 1024
    assert seen["hash_always"] is True and seen["error_style"] == "_status"
    assert seen["retry_after"] == 0.5 and seen["seed"] == 3
    assert seen["latency"] is None and seen["token_ttl"] is None
    assert {
        "reset_rate",
        "rate_limit",
        "late_fail_rate",
        "concurrent_uploads",
        "html_errors",
        "corrupt_download_rate",
    } <= set(seen)
    bad = CliRunner().invoke(cmd, ["--fail-rate", "2"])
    assert bad.exit_code == 2
    bad = CliRunner().invoke(cmd, ["--max-upload-size", "lots"])
    assert bad.exit_code == 2 and "not a size" in bad.output
