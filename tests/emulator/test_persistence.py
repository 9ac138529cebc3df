"""``--data DIR``: the account survives a restart of the emulator."""

from __future__ import annotations

from pathlib import Path

from syncd.emulator import EmulatorOptions, EmulatorServer
from tests.emulator.conftest import Api


def test_restart_keeps_folders_files_and_tokens(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with EmulatorServer(EmulatorOptions(data_dir=data)) as srv, Api(srv) as api:
        api.login()
        docs = api.mkdir("Docs")["id"]
        first = api.upload("a.txt", b"alpha", docs)
        api.upload("b.txt", b"beta", docs)
        api.ok("file/delete", file_id=first["file_id"])
        auth, tree = api.auth, srv.tree()
    with EmulatorServer(EmulatorOptions(data_dir=data)) as srv, Api(srv) as api:
        api.auth = auth  # the token survived
        assert srv.tree() == tree
        assert [f["filename"] for f in api.listing(docs)["files"]] == ["b.txt"]
        assert api.upload("c.txt", b"gamma", docs)["file_id"] == "3"  # ids keep counting
        assert api.upload("b.txt", b"beta!", docs)["name"] == "b (2).txt"  # indexes rebuilt
        url = api.ok("file/download", file_id="2")["data"]["download_url"]
        assert api.http.get(url).content == b"beta"
        assert srv.errors == []


def test_a_torn_journal_line_is_ignored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with EmulatorServer(EmulatorOptions(data_dir=data)) as srv, Api(srv) as api:
        api.login().mkdir("Docs")
    with (data / "store.jsonl").open("a") as fh:
        fh.write('{"t": "folder", "r": {"id": 9')  # a crash in the middle of a write
    with EmulatorServer(EmulatorOptions(data_dir=data)) as srv:
        assert [f["name"] for f in srv.tree()["folders"]] == ["Docs"]


def test_persist_false_starts_empty_every_time(tmp_path: Path) -> None:
    options = EmulatorOptions(data_dir=tmp_path, persist=False)
    with EmulatorServer(options) as srv, Api(srv) as api:
        api.login().mkdir("Docs")
    with EmulatorServer(options) as srv:
        assert srv.tree() == {"folders": [], "files": []}
