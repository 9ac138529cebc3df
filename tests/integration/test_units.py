"""The systemd units in systemd/: they verify, they are hardened, and Python runs under them.

Needs `systemd-analyze` (Debian package `systemd`); CI installs it, so this is not skipped.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
SERVICES = ["syncd.service", "syncd@.service", "syncd-backup.service"]
ALL_UNITS = [*SERVICES, "syncd-backup.timer"]
INSTALLED_BINARY = "/usr/local/bin/syncd"
EXPOSURE = re.compile(r"Overall exposure level for (\S+): (\d+\.\d+) (\w+)")


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze missing: apt-get install -y systemd"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def unit_dir(tmp_path: Path) -> Path:
    """The units, with ExecStart pointing at a binary that exists on this machine."""
    for name in ALL_UNITS:
        text = (UNITS / name).read_text().replace(INSTALLED_BINARY, sys.executable)
        if not os.path.exists("/bin/kill"):  # ExecReload's; procps is absent in slim images
            text = text.replace("/bin/kill", sys.executable)
        (tmp_path / name).write_text(text)
    return tmp_path


def parse(unit: str) -> dict[str, list[str]]:
    """Key -> values of a unit file (comments and section headers dropped)."""
    keys: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            keys.setdefault(key, []).append(value)
    return keys


def test_units_pass_systemd_analyze_verify(unit_dir: Path) -> None:
    targets = [
        str(unit_dir / "syncd.service"),
        str(unit_dir / "syncd@example.service"),  # the template, instantiated
        str(unit_dir / "syncd-backup.service"),
        str(unit_dir / "syncd-backup.timer"),
    ]
    result = analyze("verify", *targets)
    # verify exits 0 even for unknown keys or bad values; it only complains on stderr.
    complaints = [
        line for line in result.stderr.splitlines() if str(unit_dir) in line or "syncd" in line
    ]
    assert result.returncode == 0, result.stderr
    assert complaints == []


@pytest.mark.parametrize("unit", SERVICES)
def test_services_are_hardened(unit_dir: Path, unit: str) -> None:
    result = analyze("security", "--offline=yes", "--no-pager", str(unit_dir / unit))
    match = EXPOSURE.search(result.stdout)
    assert match, result.stdout + result.stderr
    score, level = float(match.group(2)), match.group(3)
    documented = re.search(
        r"Measured exposure level: (\d+\.\d+)", (REPO / "docs" / "systemd.md").read_text()
    )
    assert documented, "docs/systemd.md states the measured exposure level"
    assert score <= float(documented.group(1)), f"{unit}: {score} {level} (regressed)"
    assert level in ("SAFE", "OK")


def test_units_say_what_spec_section_5_asks() -> None:
    daemon = parse("syncd.service")
    for key, value in {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "180",
        "Restart": "on-failure",
        "RestartPreventExitStatus": "77 78",
        "StateDirectory": "syncd",
        "ProtectSystem": "strict",
        "ProtectHome": "read-only",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "TimeoutStopSec": "30",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
    }.items():
        assert daemon[key] == [value], key
    assert daemon["ExecStart"] == [
        f"{INSTALLED_BINARY} --config /etc/syncd/config.toml --log-format json run"
    ]
    assert daemon["LoadCredential"] == ["key1:/etc/syncd/key1", "key2:/etc/syncd/key2"]

    instance = parse("syncd@.service")
    assert instance["ExecStart"] == [
        f"{INSTALLED_BINARY} --config /etc/syncd/%i.toml --log-format json run"
    ]
    assert instance["StateDirectory"] == ["syncd/%i"]
    assert instance["LoadCredential"] == ["key1:/etc/syncd/%i.key1", "key2:/etc/syncd/%i.key2"]

    backup = parse("syncd-backup.service")
    assert backup["Type"] == ["oneshot"]
    assert backup["ExecStart"][0].endswith(" sync")
    timer = parse("syncd-backup.timer")
    assert timer["OnCalendar"] == ["daily"]
    assert timer["Persistent"] == ["true"]
    assert "RandomizedDelaySec" in timer


def hardening(unit: str) -> str:
    return (UNITS / unit).read_text().split("# Hardening:")[1].split("[Install]")[0].strip()


def test_every_service_has_the_same_hardening() -> None:
    reference = hardening("syncd.service")
    for unit in SERVICES[1:]:
        assert hardening(unit) == reference, unit


PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1  # linux/prctl.h, Linux >= 6.3

CHILD = """
import pathlib, sqlite3, ssl, sys, tempfile, threading
import httpx, structlog
from syncd.watcher import Watcher
from syncd.metrics import Metrics
root = pathlib.Path(tempfile.mkdtemp())
seen = threading.Event()
with Watcher({"p": root}, lambda *hint: seen.set()) as watcher:
    (root / "f").write_bytes(b"x")
    assert seen.wait(10) and watcher.healthy
sqlite3.connect(":memory:").execute("create table t(x)")
metrics = Metrics()
metrics.serve("127.0.0.1:0")
metrics.close()
print("ok")
"""


def test_python_and_watchdog_work_under_memory_deny_write_execute() -> None:
    """MemoryDenyWriteExecute=yes forbids W+X mappings (libffi, ctypes callbacks, JITs).
    The kernel's own PR_SET_MDWE enforces the same rule, so run a child under it."""
    libc = ctypes.CDLL(None, use_errno=True)
    launcher = (
        "import ctypes, os, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        f"if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:\n"
        "    sys.exit(99)\n"
        "os.execv(sys.executable, [sys.executable, '-c', sys.argv[1]])\n"
    )
    if libc.prctl(66, 0, 0, 0, 0) < 0:  # PR_GET_MDWE unknown: kernel older than 6.3
        pytest.skip("kernel without PR_SET_MDWE")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", launcher, CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
