"""``syncd demo``: the whole job against the bundled emulator, in a few seconds.

Everything is real: a sample tree on disk, the emulator serving HTTP on a free loopback
port, the normal config loader, state DB, engine and API client. Nothing outside a
temporary directory is touched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

SAMPLE = {
    "README.txt": b"syncd demo: these files are mirrored into the emulator.\n",
    "docs/guide.md": b"# Guide\n\nOne-way mirror, local is the truth.\n",
    "docs/it's quoted.txt": b"The server drops ' from uploaded names; syncd renames it back.\n",
    "photos/2024/beach.jpg": os.urandom(256 * 1024),
    "photos/2024/café.jpg": os.urandom(128 * 1024),
    "notes/todo.txt": b"- try syncd run\n",
    "notes/.placeholder": b"",
}


def _write_tree(root: Path) -> None:
    for rel, data in SAMPLE.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (root / "empty-dir").mkdir()


def _config_text(api_url: str, key1: str, key2: str, local: Path, state_db: Path) -> str:
    return (
        f'[remote]\napi_url = "{api_url}"\nkey1 = "{key1}"\nkey2 = "{key2}"\n\n'
        f'[sync]\nstate_db = "{state_db}"\n\n'
        f'[[pair]]\nname = "demo"\nlocal = "{local}"\nremote_path = "backups/demo"\n'
    )


def _show_remote(config_path: Path) -> None:
    from syncd.config import load_config
    from syncd.state import StateStore

    config = load_config(config_path, env={})
    state = StateStore(config.sync.state_db)
    try:
        for rec in state.iter_files("demo"):
            where = rec.url or "-"
            note = f"  [{rec.state}: {rec.error}]" if rec.error else ""
            click.echo(f"    {rec.path:28} {rec.size or 0:>8} B  {where}{note}")
    finally:
        state.close()


def run_demo() -> int:
    from syncd.commands import run_status, run_sync
    from syncd.config import load_config
    from syncd.emulator import EmulatorOptions, EmulatorServer

    with tempfile.TemporaryDirectory(prefix="syncd-demo-") as tmp:
        base = Path(tmp)
        local = base / "local"
        _write_tree(local)
        with EmulatorServer(EmulatorOptions(data_dir=base / "emulator", port=0)) as server:
            config_path = base / "config.toml"
            config_path.write_text(
                _config_text(server.api_url, server.key1, server.key2, local, base / "state.db")
            )
            config_path.chmod(0o600)
            click.echo(f"==> emulator listening at {server.api_url}")
            click.echo(f"==> sample tree in {local} ({len(SAMPLE)} files, 1 empty directory)")
            click.echo("==> syncd sync")
            code = run_sync(load_config(config_path, env={}), (), dry_run=False, as_json=False)
            click.echo("==> the manifest: local path, size, URL on the remote")
            _show_remote(config_path)
            click.echo("==> editing notes/todo.txt, then syncd sync again")
            (local / "notes/todo.txt").write_bytes(b"- try syncd run\n- read the README\n")
            again = run_sync(load_config(config_path, env={}), (), dry_run=False, as_json=False)
            code = max(code, again)
            copies = [
                f
                for f in server.tree()["files"]
                if f["name"] == "todo.txt" and f["status"] == "active"
            ]
            click.echo(
                f"==> remote copies of todo.txt: {len(copies)} (the old one is in the site's trash)"
            )
            click.echo("==> syncd status")
            run_status(load_config(config_path, env={}), as_json=False)
    click.echo(
        "==> done: every file above is on the emulator; the zero-byte file is skipped by rule"
    )
    return code
