"""A small scenario language for sync tests: real files, real SQLite, real HTTP.

    sc = Scenario(tmp_path, emulator, remote_path="backup")
    sc.write("a/b.txt", b"hello")
    result = sc.sync()
    sc.assert_in_sync()

``sync()`` runs the engine in-process (the same code path as ``syncd sync``);
``cli(...)`` runs the real ``syncd`` console script in a subprocess for exit codes and
output. ``assert_in_sync()`` compares the local tree with the emulator's stored tree:
names, folders, sizes, MD5s, no duplicates, no `` (2)`` leftovers.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from syncd.config import Config, load_config
from syncd.emulator import EmulatorServer
from syncd.engine import Engine, PassResult
from syncd.remote.uploadapi.remote import UploadApiRemote
from syncd.retry import RetryPolicy
from syncd.state import StateStore

SYNCD = [sys.executable, "-m", "syncd"]


class Scenario:
    def __init__(
        self,
        tmp_path: Path,
        server: EmulatorServer,
        *,
        remote_path: str = "backup",
        local: Path | None = None,
        **sync_options: Any,
    ) -> None:
        self.tmp = tmp_path
        self.server = server
        self.local = local or tmp_path / "local"
        self.local.mkdir(parents=True, exist_ok=True)
        self.remote_path = remote_path
        self.state_db = tmp_path / "state" / "state.db"
        self.config_path = tmp_path / "config.toml"
        self.sync_options = {"workers": 4, "max_delete_ratio": 1.0, **sync_options}
        self.write_config()

    # -- setup -----------------------------------------------------------------------
    def write_config(self, **sync_options: Any) -> None:
        self.sync_options.update(sync_options)
        lines = [
            "[remote]",
            f'api_url = "{self.server.api_url}"',
            f'key1 = "{self.server.key1}"',
            f'key2 = "{self.server.key2}"',
            "timeout = 10",
            "",
            "[sync]",
            f'state_db = "{self.state_db}"',
        ]
        for key, value in self.sync_options.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines += ["", "[[pair]]", 'name = "main"', f'local = "{self.local}"',
                  f'remote_path = "{self.remote_path}"', ""]
        self.config_path.write_text("\n".join(lines))
        self.config_path.chmod(0o600)

    def config(self) -> Config:
        return load_config(self.config_path, env={})

    # -- local files -----------------------------------------------------------------
    def write(self, rel: str, data: bytes | str = b"x") -> Path:
        path = self.local / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def mkdir(self, rel: str) -> Path:
        path = self.local / rel
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remove(self, rel: str) -> None:
        path = self.local / rel
        if path.is_dir() and not path.is_symlink():
            import shutil

            shutil.rmtree(path)
        else:
            path.unlink()

    # -- running ---------------------------------------------------------------------
    def sync(self, *, dry_run: bool = False, one_shot: bool = True,
             policy: RetryPolicy | None = None) -> PassResult:
        """One pass of the only pair, in-process, with a fresh remote and state handle."""
        config = self.config()
        state = StateStore(config.sync.state_db)
        remote = UploadApiRemote(config.remote, workers=config.sync.workers,
                                 policy=policy or RetryPolicy.fast())
        try:
            return Engine(config, state, remote).sync_pair(config.pairs[0], dry_run=dry_run,
                                                           one_shot=one_shot)
        finally:
            remote.close()
            state.close()

    def cli(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The real console entry point in a subprocess (exit codes, stdout, stderr)."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        full_env.update(env or {})
        return subprocess.run(
            [*SYNCD, "--config", str(self.config_path), *args],
            capture_output=True, text=True, env=full_env, timeout=timeout, check=False,
        )

    def state(self) -> StateStore:
        return StateStore(self.state_db)

    # -- remote ----------------------------------------------------------------------
    def remote_files(self, *, active_only: bool = True) -> list[dict[str, Any]]:
        """Stored files under the pair's remote folder, with paths relative to it."""
        prefix = self.remote_path + "/" if self.remote_path else ""
        out = []
        for f in self.server.tree()["files"]:
            if active_only and f["status"] != "active":
                continue
            path = f["path"]
            if path is None or not path.startswith(prefix):
                continue
            out.append({**f, "rel": path[len(prefix):]})
        return out

    def remote_folders(self) -> list[str]:
        prefix = self.remote_path + "/" if self.remote_path else ""
        trashed = self._trashed_folder_ids()
        return [
            d["path"][len(prefix):] for d in self.server.tree()["folders"]
            if d["path"] and d["path"].startswith(prefix) and d["status"] == "active"
            and d["id"] not in trashed
        ]

    def _trashed_folder_ids(self) -> set[str]:
        return {d["id"] for d in self.server.tree()["folders"] if d["status"] != "active"}

    def requests(self, endpoint: str | None = None) -> list[tuple[str, str]]:
        reqs = self.server.requests
        return [r for r in reqs if endpoint is None or r[1] == endpoint]

    # -- assertions ------------------------------------------------------------------
    def local_files(self) -> dict[str, str]:
        """Uploadable local files (non-empty regular files) -> MD5."""
        out = {}
        for path in self.local.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_size > 0:
                out[path.relative_to(self.local).as_posix()] = hashlib.md5(
                    path.read_bytes()).hexdigest()
        return out

    def local_dirs(self) -> set[str]:
        return {p.relative_to(self.local).as_posix() for p in self.local.rglob("*")
                if p.is_dir() and not p.is_symlink()}

    def assert_in_sync(self, *, ignore: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        """The remote holds exactly one active copy of every local file, same name and
        MD5, every local directory as exactly one folder, and nothing else."""
        local = {k: v for k, v in self.local_files().items() if k not in ignore}
        remote = self.remote_files()
        counts = Counter(f["rel"] for f in remote)
        duplicates = {k: n for k, n in counts.items() if n > 1}
        assert not duplicates, f"duplicate remote copies: {duplicates}"
        remote_md5 = {f["rel"]: f["md5"] for f in remote}
        missing = sorted(set(local) - set(remote_md5))
        extra = sorted(set(remote_md5) - set(local))
        wrong = sorted(k for k in local if k in remote_md5 and remote_md5[k] != local[k])
        assert not (missing or extra or wrong), f"missing={missing} extra={extra} wrong={wrong}"
        folders = Counter(self.remote_folders())
        dup_folders = {k: n for k, n in folders.items() if n > 1}
        assert not dup_folders, f"duplicate remote folders: {dup_folders}"
        assert set(folders) == self.local_dirs(), (
            f"folders: missing={sorted(self.local_dirs() - set(folders))} "
            f"extra={sorted(set(folders) - self.local_dirs())}")
