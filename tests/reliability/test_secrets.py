"""Secrets audit: key1, key2, every access token the site issued, folder passwords (and
the MD5 the API receives for them) never appear in stdout, stderr, the state DB bytes,
or the texts of errors - through every command at ``-v --log-format json``, its error
paths, a faulty site, and the daemon through a fault soak.
"""

from __future__ import annotations

import hashlib
import io
import json
import signal
import subprocess
from pathlib import Path

from syncd.config import load_config
from syncd.emulator import EmulatorServer
from syncd.log import configure_logging
from syncd.retry import RetryPolicy
from tests.conftest import EmulatorFactory
from tests.reliability.kit import (
    FaultLedger,
    issued_tokens,
    quiet_env,
    syncd_cmd,
    wait_for,
)
from tests.scenario import Scenario

PASSWORD = "correct horse battery staple folder"
FAULTS = {
    "fail_rate": 0.15,
    "rate_limit": 0.05,
    "retry_after": 0.05,
    "reset_rate": 0.03,
    "late_fail_rate": 0.05,
    "html_errors": 0.02,
}


def with_password(sc: Scenario) -> Scenario:
    with sc.config_path.open("a") as fh:
        fh.write(f'folder_password = "{PASSWORD}"\n')
    return sc


def secrets_of(srv: EmulatorServer, *extra: str) -> dict[str, str]:
    found = {
        "key1": srv.key1,
        "key2": srv.key2,
        "folder password": PASSWORD,
        "folder password MD5": hashlib.md5(PASSWORD.encode()).hexdigest(),
    }
    for n, token in enumerate(sorted(issued_tokens(srv))):
        found[f"token #{n}"] = token
    for n, value in enumerate(extra):
        found[f"other secret #{n}"] = value
    return found


def state_bytes(sc: Scenario) -> bytes:
    parent = sc.state_db.parent
    return b"".join(
        p.read_bytes() for p in sorted(parent.glob(sc.state_db.name + "*")) if p.is_file()
    )


def assert_no_secret(where: str, text: str | bytes, secrets: dict[str, str]) -> None:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    leaked = [name for name, value in secrets.items() if value.encode() in data]
    assert not leaked, f"{where} leaks {leaked}"


class Audit:
    """Runs commands, keeps everything they printed, checks it all at the end."""

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.outputs: list[tuple[str, str]] = []
        self.codes: dict[str, int] = {}

    def run(self, *args: str, config: Path | None = None, timeout: float = 120) -> int:
        cmd = syncd_cmd(self.sc, "-v", *args)
        if config is not None:
            cmd[cmd.index(str(self.sc.config_path))] = str(config)
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=quiet_env(), timeout=timeout, check=False
        )
        label = " ".join(args)
        self.outputs += [(f"{label} stdout", done.stdout), (f"{label} stderr", done.stderr)]
        self.codes[label] = done.returncode
        return done.returncode

    def check(self, secrets: dict[str, str]) -> None:
        for where, text in self.outputs:
            assert_no_secret(where, text, secrets)
        assert_no_secret("the state DB", state_bytes(self.sc), secrets)


def test_every_command_keeps_every_secret(
    tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    srv = emulator_factory(seed=7)
    sc = with_password(Scenario(tmp_path, srv, on_delete="trash"))
    for i in range(12):
        sc.write(f"dir {i % 3}/file {i}.txt", f"content {i}")
    sc.write("it's.txt", b"renamed by the server")
    audit = Audit(sc)
    assert audit.run("init", str(tmp_path / "starter.toml")) == 0
    assert audit.run("check") == 0
    assert audit.run("sync", "--dry-run") == 0
    assert audit.run("sync") == 0
    srv.faults.fail_rate, srv.faults.late_fail_rate = 0.2, 0.1  # errors carry server texts
    sc.write("dir 0/file 0.txt", "changed under faults")
    audit.run("sync")
    srv.faults.fail_rate = srv.faults.late_fail_rate = 0.0
    assert audit.run("sync") == 0
    for command in (
        ["status"],
        ["status", "--json"],
        ["ls"],
        ["ls", "--json"],
        ["verify"],
        ["verify", "--deep"],
        ["sync", "--json"],
        ["restore", "--to", str(tmp_path / "restored")],
        ["restore", "--from-remote", "backup", "--to", str(tmp_path / "from remote")],
        ["adopt"],
        ["logout"],
    ):
        audit.run(*command)
    assert audit.codes["restore --to " + str(tmp_path / "restored")] == 0

    bad_keys = tmp_path / "bad keys.toml"
    wrong_key = "f" * 64
    bad_keys.write_text(sc.config_path.read_text().replace(srv.key2, wrong_key))
    sc.write("needs a request.txt", "so that sync authorizes")
    assert audit.run("sync", config=bad_keys) == 77
    short = tmp_path / "short key.toml"
    short.write_text(sc.config_path.read_text().replace(srv.key1, srv.key1[:40]))
    assert audit.run("check", config=short) == 78
    unreachable = tmp_path / "unreachable.toml"
    unreachable.write_text(
        sc.config_path.read_text().replace(srv.api_url, "http://127.0.0.1:9/api/v2/")
    )
    assert audit.run("check", config=unreachable) == 75

    secrets = secrets_of(srv, wrong_key)
    assert sum(1 for name in secrets if name.startswith("token")) >= 10
    audit.check(secrets)


def test_errors_and_logs_of_a_faulty_in_process_run_keep_every_secret(
    tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    """Exception texts: the pass's errors and every log line (retries carry the text of
    each exception) at debug level, with faults and expiring tokens."""
    srv = emulator_factory(seed=11, **FAULTS)
    FaultLedger(srv, token_every=7)
    sc = with_password(Scenario(tmp_path, srv, on_delete="trash"))
    for i in range(30):
        sc.write(f"d{i % 4}/sub/f{i}.txt", f"{i}")
    logs = io.StringIO()
    configure_logging(verbosity=2, fmt="json", stream=logs)
    config = load_config(sc.config_path, env={})
    for secret in config.secrets():  # as the CLI registers them
        from syncd.log import add_secret

        add_secret(secret)
    texts: list[str] = []
    try:
        for _ in range(6):
            result = sc.sync(policy=RetryPolicy.fast(attempts=3))
            texts += [result.error or "", *(e for _, e in result.failed + result.pending)]
            if result.fatal is not None:
                texts.append(repr(result.fatal))
                cause = result.fatal.__cause__
                texts.append(repr(cause) if cause is not None else "")
    finally:
        configure_logging(verbosity=0, fmt="json")
    secrets = secrets_of(srv)
    assert_no_secret("pass errors", "\n".join(texts), secrets)
    assert_no_secret("debug logs", logs.getvalue(), secrets)
    assert_no_secret("the state DB", state_bytes(sc), secrets)
    assert logs.getvalue().count("\n") > 100  # the audit looked at a real log


def test_the_daemon_through_a_fault_soak_keeps_every_secret(
    tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    srv = emulator_factory(seed=5, latency=0.01, **FAULTS)
    FaultLedger(srv, token_every=25)
    sc = with_password(
        Scenario(tmp_path, srv, on_delete="trash", debounce=0.2, max_delay=1.0, rescan_interval=0)
    )
    for i in range(20):
        sc.write(f"d{i % 4}/f{i}.txt", f"{i}")
    out, err = tmp_path / "run.out", tmp_path / "run.err"
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(syncd_cmd(sc, "-v", "run"), stdout=fo, stderr=fe, env=quiet_env())
        try:
            wait_for("the daemon's first pass", lambda: in_sync(sc), timeout=120, step=0.2)
            for i in range(6):
                sc.write(f"d{i % 4}/f{i}.txt", f"changed {i}")
            sc.remove("d3")
            wait_for("the changes", lambda: in_sync(sc), timeout=120, step=0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
    assert code == 0, err.read_text()[-3000:]
    secrets = secrets_of(srv)
    assert_no_secret("daemon stdout", out.read_bytes(), secrets)
    assert_no_secret("daemon stderr", err.read_bytes(), secrets)
    assert_no_secret("the state DB", state_bytes(sc), secrets)
    events = [json.loads(line) for line in err.read_text().splitlines() if line.startswith("{")]
    assert any(e.get("event") == "retrying" for e in events)  # the faults were real


def in_sync(sc: Scenario) -> bool:
    try:
        sc.assert_in_sync()
    except AssertionError:
        return False
    return True
