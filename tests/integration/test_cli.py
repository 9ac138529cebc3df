"""The command line as users and scripts see it: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import main
from syncd.emulator import EmulatorServer
from tests.conftest import EmulatorFactory
from tests.scenario import SYNCD, Scenario

README = Path(__file__).resolve().parents[2] / "README.md"


def test_exit_0_in_sync_and_json_is_the_only_stdout(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.write("a/b.txt", "b")
    proc = sc.cli("sync", "--json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["exit_code"] == 0 and document["pairs"][0]["uploaded"] == 1


def test_sync_logs_each_upload_only_with_v(tmp_path: Path, emulator: EmulatorServer) -> None:
    """A backup of 10,000 files is not 10,000 log lines: `sync` says what it did in its
    summary and periodic progress lines; -v lists every upload (the daemon always does)."""
    sc = Scenario(tmp_path, emulator)
    sc.write("a.txt", "a")
    quiet = sc.cli("sync")
    assert quiet.returncode == 0 and '"uploaded"' not in quiet.stderr, quiet.stderr
    sc.write("b.txt", "b")
    verbose = sc.cli("-v", "sync")
    uploaded = [json.loads(ln) for ln in verbose.stderr.splitlines() if '"uploaded"' in ln]
    assert [(e["event"], e["path"]) for e in uploaded] == [("uploaded", "b.txt")]


def test_exit_1_when_a_file_failed(tmp_path: Path, emulator_factory: EmulatorFactory) -> None:
    sc = Scenario(tmp_path, emulator_factory(max_upload_size=10))
    sc.write("small.txt", "ok")
    sc.write("large.txt", "x" * 100)
    proc = sc.cli("sync")
    assert proc.returncode == 1
    assert "large.txt" in proc.stdout and "max upload size" in proc.stdout
    assert [f["rel"] for f in sc.remote_files()] == ["small.txt"]


def test_exit_75_when_the_remote_is_unreachable(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.write("a.txt", "a")
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = sc.config_path.read_text().replace(emulator.api_url,
                                               f"http://127.0.0.1:{port}/api/v2/")
    sc.config_path.write_text(text)
    proc = sc.cli("sync", timeout=180)
    assert proc.returncode == 75, proc.stderr
    assert "syncd: error:" in proc.stderr or "authorize" in proc.stdout + proc.stderr


def test_exit_77_when_authorization_is_refused(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.write("a.txt", "a")
    wrong = "f" * 64
    sc.config_path.write_text(sc.config_path.read_text().replace(emulator.key1, wrong))
    proc = sc.cli("sync")
    assert proc.returncode == 77, proc.stderr
    assert "Could not authenticate user" in proc.stderr + proc.stdout
    assert wrong not in proc.stderr + proc.stdout


def test_exit_78_config_error_names_file_and_key(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.config_path.write_text(sc.config_path.read_text().replace("workers = 4", 'workers = "x"'))
    proc = sc.cli("sync")
    assert proc.returncode == 78
    [line] = proc.stderr.strip().splitlines()
    assert str(sc.config_path) in line and "workers" in line


def test_exit_2_on_usage_errors(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    assert sc.cli("sync", "--no-such-flag").returncode == 2
    assert sc.cli("sync", "--pair", "nope").returncode == 2


def test_exit_130_when_interrupted(tmp_path: Path, emulator_factory: EmulatorFactory) -> None:
    sc = Scenario(tmp_path, emulator_factory(latency=0.3))
    for i in range(20):
        sc.write(f"f{i}.txt", str(i))
    proc = subprocess.Popen([*SYNCD, "--config", str(sc.config_path), "sync"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err


def test_init_writes_a_private_starter_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "conf" / "syncd.toml"
    runner = CliRunner()
    first = runner.invoke(main, ["init", str(target)])
    assert first.exit_code == 0, first.output
    assert target.stat().st_mode & 0o777 == 0o600
    second = runner.invoke(main, ["init", str(target)])
    assert second.exit_code == 78 and "--force" in second.output
    assert runner.invoke(main, ["init", "--force", str(target)]).exit_code == 0


def test_check_reports_the_package(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    proc = sc.cli("check")
    assert proc.returncode == 0, proc.stderr
    assert "account package: Registered User" in proc.stdout
    assert "readable" in proc.stdout and "writable" in proc.stdout


def test_status_and_ls_work_offline_and_follow_the_spec_shape(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.write("a.txt", "a")
    assert sc.cli("sync").returncode == 0
    emulator.stop()  # status and ls never touch the network
    status = json.loads(sc.cli("status", "--json").stdout)
    assert status["daemon"] == {"running": False, "pid": None}
    [pair] = status["pairs"]
    assert set(pair) == {"name", "local", "remote_path", "files", "bytes_synced", "last_pass",
                         "last_error"}
    assert pair["files"]["synced"] == 1 and pair["bytes_synced"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", pair["last_pass"])
    [row] = json.loads(sc.cli("ls", "--json").stdout)
    assert {"pair", "path", "size", "md5", "file_id", "folder_id", "url", "state",
            "error"} <= set(row)
    assert row["path"] == "a.txt" and row["state"] == "synced" and len(row["md5"]) == 32


def test_verify_finds_and_repairs_a_missing_copy(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.write("a.txt", "a")
    sc.write("b.txt", "b")
    sc.sync()
    [victim] = [f for f in sc.remote_files() if f["rel"] == "a.txt"]
    import httpx

    token = httpx.post(emulator.api_url + "authorize",
                       data={"key1": emulator.key1, "key2": emulator.key2}).json()["data"]
    httpx.post(emulator.api_url + "file/delete", data={**token, "file_id": victim["id"]})
    assert sc.cli("verify").returncode == 1
    assert sc.cli("verify", "--deep", "--repair").returncode == 1
    assert sc.sync().uploaded == 1
    sc.assert_in_sync()
    assert sc.cli("verify", "--deep").returncode == 0


def test_logout_disables_the_token(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    assert sc.cli("logout").returncode == 0
    assert ("POST", "disable_access_token") in sc.requests()


def test_every_command_has_help_with_an_example_and_is_in_the_readme() -> None:
    readme = README.read_text()
    runner = CliRunner()
    for name, command in main.commands.items():
        assert command.help and "Example" in command.help, name
        assert f"syncd {name}" in readme, f"README does not mention syncd {name}"
        assert runner.invoke(main, [name, "--help"]).exit_code == 0


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help(args: list[str]) -> None:
    proc = subprocess.run([*SYNCD, *args], capture_output=True, text=True, check=False,
                          env={**os.environ})
    assert proc.returncode == 0 and proc.stdout
