"""file/info, edit, move, delete, copy as on a live 4.x site (API-observed.md 6a-10d, 11m)."""

from __future__ import annotations

from tests.emulator.conftest import Api

INFO_KEYS = [
    "id",
    "filename",
    "shortUrl",
    "fileType",
    "extension",
    "fileSize",
    "uploadedIP",
    "uploadedDate",
    "file_status",
    "downloads",
    "lastAccessed",
    "folderId",
    "keywords",
    "isPublic",
    "uploadSource",
    "url_file",
    "url_file_info",
    "url_file_stats",
    "url_file_delete",
]
NO_FILE = "Could not find file based on file_id."


def test_info(api: Api) -> None:
    folder = api.mkdir("Docs")["id"]
    up = api.upload("hello (2).txt", b"hello world\n", folder)
    d = api.ok("file/info", file_id=up["file_id"])["data"]
    assert list(d) == INFO_KEYS
    assert d["filename"] == "hello (2).txt" and d["fileSize"] == "12" and d["extension"] == "txt"
    assert d["file_status"] == "active" and d["folderId"] == folder and d["downloads"] == "0"
    assert d["keywords"] == "hello,2,txt" and d["uploadedIP"] == "127.0.0.1"
    assert d["url_file"] == f"{api.srv.base_url}{up['short_url']}"
    assert d["url_file_delete"] == f"{d['url_file']}~d?{up['delete_hash']}"
    assert api.error("file/info") == "Please provide the file_id param."
    assert api.error("file/info", file_id=999999) == NO_FILE


def test_edit_renames_without_uniqueness_and_moves(api: Api) -> None:
    folder = api.mkdir("Sub")["id"]
    a = api.upload("a.txt", b"a")["file_id"]
    api.upload("b.txt", b"b")
    answer = api.ok("file/edit", file_id=a, filename="renamed.md")
    assert answer["response"] == "File successfully updated."
    assert (answer["data"]["filename"], answer["data"]["extension"]) == ("renamed.md", "md")
    assert api.ok("file/edit", file_id=a, filename="b.txt")["data"]["filename"] == "b.txt"
    assert api.ok("file/edit", file_id=a, filename=" c<d.txt ")["data"]["filename"] == "c"
    assert api.ok("file/edit", file_id=a, folder_id=folder)["data"]["folderId"] == folder
    assert api.ok("file/edit", file_id=a, folder_id=12345)["data"]["folderId"] == folder
    assert api.ok("file/edit", file_id=a, folder_id="null")["data"]["folderId"] is None


def test_delete_is_soft_and_repeatable(api: Api) -> None:
    folder = api.mkdir("Sub")["id"]
    f = api.upload("a.txt", b"a", folder)["file_id"]
    for _ in range(2):
        answer = api.ok("file/delete", file_id=f)
        assert answer["response"] == "File successfully set as deleted."
        assert answer["data"]["file_status"] == "trash" and answer["data"]["folderId"] is None
    assert api.ok("file/info", file_id=f)["data"]["file_status"] == "trash"
    assert api.listing(folder)["files"] == [] and api.listing()["files"] == []


def test_move(api: Api) -> None:
    folder = api.mkdir("Sub")["id"]
    f = api.upload("a.txt", b"a")["file_id"]
    answer = api.ok("file/move", file_id=f, new_parent_folder_id=folder)
    assert answer["response"] == "File successfully moved."
    assert answer["data"]["folderId"] == folder
    assert [x["filename"] for x in api.listing(folder)["files"]] == ["a.txt"]
    assert api.error("file/move", file_id=f) == "Please provide the new_parent_folder_id param."
    assert (
        api.error("file/move", file_id=f, new_parent_folder_id=999999)
        == "Could not find the destination folder id defined by new_parent_folder_id."
    )
    assert api.error("file/move", file_id=999, new_parent_folder_id=folder) == NO_FILE


def test_move_to_root_hides_the_file_as_observed(api: Api) -> None:
    folder = api.mkdir("Sub")["id"]
    f = api.upload("a.txt", b"a", folder)["file_id"]
    answer = api.ok("file/move", file_id=f, new_parent_folder_id="null")
    assert answer["data"]["folderId"] == "0"
    assert api.listing()["files"] == [] and api.listing(folder)["files"] == []
    assert api.ok("file/info", file_id=f)["data"]["file_status"] == "active"


def test_copy_fails_as_observed(api: Api) -> None:
    f = api.upload("a.txt", b"a")["file_id"]
    assert api.error("file/copy", file_id=f, copy_to_folder_id="null") == NO_FILE
    assert api.error("file/copy", file_id=f) == "Please provide the copy_to_folder_id param."


def test_files_of_another_user_cannot_be_touched(api: Api) -> None:
    f = api.upload("a.txt", b"a")["file_id"]
    api.srv.store.add_user("a" * 64, "b" * 64)
    with Api(api.srv) as other:
        data = other.ok_plain("authorize", key1="a" * 64, key2="b" * 64)["data"]
        other.auth = {"access_token": data["access_token"], "account_id": data["account_id"]}
        for endpoint in ("file/info", "file/delete", "file/download", "file/edit"):
            assert other.error(endpoint, file_id=f) == NO_FILE
