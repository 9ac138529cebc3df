"""`syncd adopt`: a lost state DB is rebuilt from the remote tree and the local files, so
the next sync re-uploads nothing unchanged and creates no duplicate folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from syncd.emulator import EmulatorServer
from syncd.remote.uploadapi.remote import UploadApiRemote
from tests.scenario import Scenario

WRITES = ("file/upload", "folder/create", "file/edit", "file/delete", "file/move", "folder/delete")


def lose_state_db(sc: Scenario) -> None:
    for path in sc.state_db.parent.glob(sc.state_db.name + "*"):
        path.unlink()


def writes_since(sc: Scenario, mark: int) -> list[tuple[str, str]]:
    return [r for r in sc.server.requests[mark:] if r[1] in WRITES]


def ls(sc: Scenario) -> dict[str, dict[str, object]]:
    run = sc.cli("ls", "--json")
    assert run.returncode == 0, run.stderr
    return {row["path"]: row for row in json.loads(run.stdout)}


def synced_tree(tmp_path: Path, emulator: EmulatorServer) -> Scenario:
    sc = Scenario(tmp_path, emulator)
    sc.write("top.txt", b"top")
    sc.write("docs/report final.pdf", os.urandom(30_000))
    sc.write("docs/ünï/notes.md", b"# notes")
    sc.write("photos/2024/beach.jpg", os.urandom(50_000))
    sc.write("empty.txt", b"")
    sc.mkdir("photos/empty album")
    assert sc.sync().exit_code == 0
    return sc


def test_adopt_then_sync_sends_no_upload_and_no_mkdir(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    sc = synced_tree(tmp_path, emulator)
    before = ls(sc)
    lose_state_db(sc)
    run = sc.cli("adopt", "--json")
    assert run.returncode == 0, run.stderr
    [report] = json.loads(run.stdout)["pairs"]
    assert report["adopted"] == 4 and report["folders"] == 5 and report["to_upload"] == 0
    assert report["remote_only"] == [] and report["duplicates"] == []
    mark = len(emulator.requests)
    result = sc.sync()
    assert result.exit_code == 0 and result.uploaded == 0
    assert writes_since(sc, mark) == []
    sc.assert_in_sync()
    after = ls(sc)
    assert set(after) == set(before)
    for path, row in after.items():
        if path == "empty.txt":
            assert row["state"] == "skipped"
            continue
        assert row["state"] == "synced" and row["verified"] == "size" and row["md5"] is None
        assert row["file_id"] == before[path]["file_id"]


def test_adopt_reports_what_it_cannot_match(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = synced_tree(tmp_path, emulator)
    lose_state_db(sc)
    sc.write("docs/report final.pdf", b"edited: another size")  # the remote copy is older
    sc.remove("top.txt")  # remote only now
    sc.write("new.txt", b"not uploaded yet")
    [report] = json.loads(sc.cli("adopt", "--json").stdout)["pairs"]
    assert report["to_replace"] == ["docs/report final.pdf"]
    assert report["remote_only"] == [{"path": "top.txt", "reason": "no local file"}]
    assert report["to_upload"] == 1
    mark = len(emulator.requests)
    assert sc.sync().exit_code == 0
    writes = writes_since(sc, mark)
    assert writes.count(("POST", "file/upload")) == 2  # new.txt, and the edited report
    assert ("POST", "folder/create") not in writes
    assert sc.local_files().keys() <= {f["rel"] for f in sc.remote_files()}
    reports = [f for f in sc.remote_files() if f["rel"] == "docs/report final.pdf"]
    assert len(reports) == 1  # the old copy was trashed, not left as a duplicate


def test_adopt_without_the_remote_folder_fails_and_creates_nothing(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    sc = Scenario(tmp_path, emulator, remote_path="never/synced")
    sc.write("a.txt", b"a")
    run = sc.cli("adopt")
    assert run.returncode == 1 and "'never' not found" in run.stdout
    assert ("POST", "folder/create") not in emulator.requests


def test_restore_checks_adopted_records_by_size(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = synced_tree(tmp_path, emulator)
    lose_state_db(sc)
    assert sc.cli("adopt").returncode == 0
    out = tmp_path / "out"
    run = sc.cli("restore", "--to", str(out), "--json")
    assert run.returncode == 0, run.stderr
    [result] = json.loads(run.stdout)["restores"]
    assert result["verified"] == {"md5": 0, "size": 4}
    assert (out / "docs/ünï/notes.md").read_bytes() == b"# notes"
    assert not (out / "empty.txt").exists()  # adopt records no skipped file; sync will


def test_deep_verify_gives_adopted_records_an_md5(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = synced_tree(tmp_path, emulator)
    lose_state_db(sc)
    assert sc.cli("adopt").returncode == 0
    assert sc.cli("verify", "--deep").returncode == 0
    for row in ls(sc).values():
        if row["state"] == "synced":
            assert row["verified"] == "md5" and row["md5"] is not None, row


def test_duplicate_remote_names_adopt_one_copy(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = synced_tree(tmp_path, emulator)
    lose_state_db(sc)
    with UploadApiRemote(sc.config().remote) as remote:
        [docs] = [f for f in remote.list_folder(
            next(f.folder_id for f in remote.list_folder(None).folders if f.name == "backup")
        ).folders if f.name == "docs"]  # fmt: skip
        extra = remote.create_folder("docs", docs.parent_id)  # a second "docs" beside it
    [report] = json.loads(sc.cli("adopt", "--json").stdout)["pairs"]
    assert report["duplicates"] == [
        {"path": "docs/", "reason": f"another folder of this name was adopted; "
         f"id {extra.folder_id} left alone"}
    ]  # fmt: skip
    mark = len(emulator.requests)
    assert sc.sync().exit_code == 0 and writes_since(sc, mark) == []


def test_sync_without_adopt_leaves_no_duplicate(tmp_path: Path, emulator: EmulatorServer) -> None:
    sc = Scenario(tmp_path, emulator)
    sc.write("top.txt", b"v1")
    sc.sync()
    lose_state_db(sc)
    sc.write("top.txt", b"version two")
    assert sc.sync().exit_code == 0
    sc.assert_in_sync()
