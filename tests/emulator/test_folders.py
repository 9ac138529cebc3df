"""folder/* as on a live 4.x site (API-observed.md 3a-4e, 11a-11j, 17b)."""

from __future__ import annotations

from tests.emulator.conftest import Api

FOLDER_KEYS = [
    "id",
    "parentId",
    "folderName",
    "totalSize",
    "isPublic",
    "accessPassword",
    "date_added",
    "date_updated",
    "url_folder",
    "total_downloads",
    "child_folder_count",
    "file_count",
]
NO_FOLDER = "Could not find folder based on folder_id."


def test_create_answers_the_folder_object(api: Api) -> None:
    answer = api.ok("folder/create", folder_name="My New Folder")
    assert answer["response"] == "Folder successfully created."
    d = answer["data"]
    assert list(d) == FOLDER_KEYS
    assert d["id"] == "1" and d["parentId"] is None and d["totalSize"] == "0"
    assert d["isPublic"] == "0" and d["accessPassword"] is None and d["date_updated"] is None
    assert d["url_folder"] == f"{api.srv.base_url}folder/1/My_New_Folder"
    assert (d["total_downloads"], d["child_folder_count"], d["file_count"]) == (0, 0, 0)


def test_duplicate_names_are_allowed(api: Api) -> None:
    assert api.mkdir("Docs")["id"] != api.mkdir("Docs")["id"]
    assert [f["folderName"] for f in api.listing()["folders"]] == ["Docs", "Docs"]


def test_parameters_are_cleaned_and_checked(api: Api) -> None:
    assert api.mkdir("  <b>Tagged</b> name  ")["folderName"] == "Tagged name"
    assert api.mkdir("a<b dir")["folderName"] == "a"
    assert api.mkdir("x < y")["folderName"] == "x < y"
    assert (
        api.error("folder/create", folder_name=" <i></i> ")
        == "Please provide the folder_name param."
    )
    assert api.mkdir("P", parent_id="abc")["parentId"] is None
    assert api.mkdir("Q", parent_id="0")["parentId"] is None
    assert api.mkdir("R", is_public=2)["isPublic"] == "2"
    assert api.mkdir("S", is_public=7)["isPublic"] == "0"
    assert api.mkdir("T", access_password="passw")["accessPassword"] is None
    assert api.mkdir("U", access_password="d" * 32)["accessPassword"] == "d" * 32


def test_listing_uses_parent_folder_id_and_sorts_by_name(api: Api) -> None:
    docs = api.mkdir("Docs")["id"]
    api.mkdir("b", parent_id=docs)
    api.mkdir("A", parent_id=docs)
    api.mkdir("Root2")
    api.upload("z.txt", b"z", docs)
    api.upload("Y.txt", b"y", docs)
    listing = api.listing(docs)
    assert [f["folderName"] for f in listing["folders"]] == ["A", "b"]
    assert [f["filename"] for f in listing["files"]] == ["Y.txt", "z.txt"]
    assert list(listing["files"][0]) == [
        "id",
        "filename",
        "shortUrl",
        "fileType",
        "extension",
        "fileSize",
        "status",
        "downloads",
        "folderId",
        "keywords",
        "url_file",
    ]
    assert "accessPassword" not in listing["folders"][0]
    # parent_id is not a listing parameter: it lists the root
    root = api.ok("folder/listing", parent_id=docs)["data"]
    assert [f["folderName"] for f in root["folders"]] == ["Docs", "Root2"]
    info = api.ok("folder/info", folder_id=docs)["data"]
    assert (info["child_folder_count"], info["file_count"]) == (2, 2)


def test_empty_listing_is_two_empty_lists(api: Api) -> None:
    assert api.listing() == {"folders": [], "files": []}


def test_listing_an_unknown_or_foreign_folder_fails(api: Api) -> None:
    assert api.error("folder/listing", parent_folder_id=999) == NO_FOLDER


def test_info_needs_folder_id(api: Api) -> None:
    assert api.error("folder/info") == "Please provide the folder_id param."
    assert api.error("folder/info", folder_id=5) == NO_FOLDER


def test_delete_is_recursive_and_the_top_folder_stays_listed_in_root(api: Api) -> None:
    docs = api.mkdir("Docs")["id"]
    sub = api.mkdir("Sub", parent_id=docs)["id"]
    api.upload("a.txt", b"a", docs)
    inner = api.upload("b.txt", b"b", sub)
    answer = api.ok("folder/delete", folder_id=docs)
    assert set(answer) == {"response", "_status", "_datetime"}
    assert answer["response"] == "Folder successfully set as deleted."
    root = api.listing()["folders"]
    assert [(f["folderName"], f["file_count"]) for f in root] == [("Docs", 0)]
    assert root[0]["date_updated"] is not None
    assert [f["folderName"] for f in api.listing(docs)["folders"]] == ["Sub"]
    assert api.ok("file/info", file_id=inner["file_id"])["data"]["file_status"] == "trash"
    tree = api.srv.tree()
    assert {f["status"] for f in tree["folders"]} == {"trash"}
    assert {f["status"] for f in tree["files"]} == {"trash"}


def test_delete_of_a_subfolder_reparents_it_to_root(api: Api) -> None:
    docs = api.mkdir("Docs")["id"]
    sub = api.mkdir("Sub", parent_id=docs)["id"]
    api.ok("folder/delete", folder_id=sub)
    assert [f["folderName"] for f in api.listing()["folders"]] == ["Docs", "Sub"]


def test_delete_errors(api: Api) -> None:
    assert api.error("folder/delete") == "Please provide the folder_id param."
    assert api.error("folder/delete", folder_id=999999) == "Failed deleting the folder."


def test_edit(api: Api) -> None:
    a = api.mkdir("A")["id"]
    b = api.mkdir("B")["id"]
    answer = api.ok("folder/edit", folder_id=b, folder_name="B2", parent_id=a, is_public=1)
    assert answer["response"] == "Folder successfully updated."
    d = answer["data"]
    assert (d["folderName"], d["parentId"], d["isPublic"]) == ("B2", a, "1")
    d = api.ok("folder/edit", folder_id=b, parent_id="null", access_password="f" * 32)["data"]
    assert d["parentId"] is None and d["accessPassword"] == "f" * 32
    d = api.ok("folder/edit", folder_id=b, parent_id=999, access_password="null")["data"]
    assert d["parentId"] is None and d["accessPassword"] is None  # unknown parent: ignored


def test_move(api: Api) -> None:
    a = api.mkdir("A")["id"]
    b = api.mkdir("B")["id"]
    answer = api.ok("folder/move", folder_id=b, new_parent_folder_id=a)
    assert answer["response"] == "Folder successfully moved."
    assert answer["data"]["parentId"] == a
    assert (
        api.ok("folder/move", folder_id=b, new_parent_folder_id="null")["data"]["parentId"] is None
    )
    assert api.error("folder/move", folder_id=b) == "Please provide the new_parent_folder_id param."
    assert (
        api.error("folder/move", folder_id=b, new_parent_folder_id=b)
        == "Param folder_id can not match new_parent_folder_id."
    )
    assert (
        api.error("folder/move", folder_id=b, new_parent_folder_id=99)
        == "Could not find the destination folder id defined by new_parent_folder_id."
    )
    # no cycle check (observed 17b)
    api.ok("folder/move", folder_id=b, new_parent_folder_id=a)
    api.ok("folder/move", folder_id=a, new_parent_folder_id=b)
    assert api.listing()["folders"] == []


def test_folders_of_another_user_are_invisible(api: Api) -> None:
    mine = api.mkdir("Mine")["id"]
    api.srv.store.add_user("a" * 64, "b" * 64)
    with Api(api.srv) as other:
        data = other.ok_plain("authorize", key1="a" * 64, key2="b" * 64)["data"]
        other.auth = {"access_token": data["access_token"], "account_id": data["account_id"]}
        assert other.error("folder/info", folder_id=mine) == NO_FOLDER
        assert other.listing() == {"folders": [], "files": []}
        assert other.upload("x.txt", b"x", mine)  # lands in the other user's root
        assert [f["filename"] for f in other.listing()["files"]] == ["x.txt"]
    assert api.listing(mine)["files"] == []
