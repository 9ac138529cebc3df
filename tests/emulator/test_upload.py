"""file/upload answers and name mangling as on a live 4.x site (API-observed.md 5a-5i, D3-D10)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Api

UPLOAD_KEYS = [
    "name",
    "size",
    "type",
    "error",
    "url",
    "delete_url",
    "info_url",
    "delete_type",
    "delete_hash",
    "hash",
    "stats_url",
    "short_url",
    "file_id",
    "unique_hash",
    "url_html",
    "url_bbcode",
    "success_result_html",
]


def names_in(api: Api, folder_id: str | None = None) -> list[str]:
    return [f["filename"] for f in api.listing(folder_id)["files"]]


def test_new_content_answers_int_size_and_hash_false(api: Api) -> None:
    item = api.upload("hello.txt", b"hello world\n")
    assert list(item) == UPLOAD_KEYS
    assert item["name"] == "hello.txt" and item["size"] == 12 and item["hash"] is False
    assert item["type"] == "application/octet-stream" and item["error"] is None
    assert item["file_id"] == "1" and item["delete_type"] == "DELETE"
    site, short = api.srv.base_url, item["short_url"]
    assert item["url"] == f"{site}{short}/hello.txt"
    assert item["delete_url"] == f"{site}{short}~d?{item['delete_hash']}"
    assert item["info_url"] == f"{site}{short}~i?{item['delete_hash']}"
    assert item["stats_url"] == f"{site}{short}~s"
    assert len(item["delete_hash"]) == 32 and len(item["unique_hash"]) == 64
    assert item["url_html"].startswith("&lt;a href=&quot;" + item["url"])
    assert item["url_bbcode"] == f"[url]{item['url']}[/url]"


def test_known_content_answers_string_size_and_the_md5(api: Api) -> None:
    api.upload("a.txt", b"same bytes")
    item = api.upload("b.txt", b"same bytes")
    assert item["size"] == "10" and item["hash"] == hashlib.md5(b"same bytes").hexdigest()


def test_content_known_only_while_an_active_copy_exists(api: Api) -> None:
    first = api.upload("a.txt", b"same bytes")
    api.ok("file/delete", file_id=first["file_id"])
    assert api.upload("b.txt", b"same bytes")["hash"] is False


def test_content_is_known_across_users(emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory()
    srv.store.add_user("a" * 64, "b" * 64)
    with Api(srv) as mine, Api(srv) as theirs:
        mine.login().upload("a.txt", b"shared")
        theirs.auth = {}
        data = theirs.ok_plain("authorize", key1="a" * 64, key2="b" * 64)["data"]
        theirs.auth = {"access_token": data["access_token"], "account_id": data["account_id"]}
        assert theirs.upload("a.txt", b"shared")["size"] == "6"


def test_hash_always(emulator_factory: EmulatorFactory) -> None:
    with Api(emulator_factory(hash_always=True)) as api:
        item = api.login().upload("x.bin", b"abc")
        assert item["hash"] == hashlib.md5(b"abc").hexdigest() and item["size"] == 3


def test_zero_bytes_and_missing_part_are_refused(api: Api) -> None:
    r = api.http.post("file/upload", data=api.auth, files={"upload_file": ("e.txt", b"")})
    assert r.json()["response"] == "Filesize received was zero."
    assert api.error("file/upload") == "Did not receive uploaded file."
    r = api.http.post("file/upload", data=api.auth, files={"other": ("e.txt", b"x")})
    assert r.json()["response"] == "Did not receive uploaded file."
    assert api.srv.tree()["files"] == []


def test_over_max_upload_size_is_an_uploader_error(emulator_factory: EmulatorFactory) -> None:
    with Api(emulator_factory(max_upload_size=10)) as api:
        api.login()
        api.upload("ok.bin", b"x" * 10)
        r = api.http.post("file/upload", data=api.auth, files={"upload_file": ("big", b"x" * 11)})
        message = r.json()["response"]
        assert message.startswith("Error on: ") and message.endswith("maxFileSize")
        assert [f["name"] for f in api.srv.tree()["files"]] == ["ok.bin"]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("it's.txt", "its.txt"),
        ('say "hi".txt', "say %22hi%22.txt"),
        ("say %22hi%22.txt", "say %22hi%22.txt"),
        ("a\\b.txt", "b.txt"),
        ("dir/sub.txt", "sub.txt"),
        (".bashrc", "bashrc"),
        ("..two", ".two"),
        ("  lead.txt", "lead.txt"),
        ("trail.txt ", "trail.txt"),
        ("<i>x</i> Ünï 文件.txt", "i> Ünï 文件.txt"),  # upload names are not strip_tags'd
    ],
)
def test_upload_names_are_altered_like_a_real_site(api: Api, sent: str, stored: str) -> None:
    item = api.upload(sent, b"content of " + sent.encode())
    assert item["name"] == stored
    assert names_in(api) == [stored]


def test_backslash_escaped_quotes_in_a_hand_built_part(api: Api) -> None:
    answer = api.upload_raw(
        b'form-data; name="upload_file"; filename="it\'s \\"quoted\\".txt"', b"123456789"
    )
    assert answer["data"][0]["name"] == "its %22quoted%22.txt"


def test_same_name_gets_numbered_case_and_accent_insensitively(api: Api) -> None:
    folder = api.mkdir("Docs")["id"]
    got = [
        api.upload(n, n.encode() + b"!", folder)["name"]
        for n in ["hello.txt", "hello.txt", "HELLO.TXT", "café.txt", "cafe.txt"]
    ]
    assert got == ["hello.txt", "hello (2).txt", "HELLO (3).txt", "café.txt", "cafe (2).txt"]
    assert names_in(api, folder) == [
        "cafe (2).txt",
        "café.txt",
        "hello (2).txt",
        "HELLO (3).txt",
        "hello.txt",
    ]


def test_numbering_quirks(api: Api) -> None:
    for name in ["x.TXT", "no_extension", "dot."]:
        api.upload(name, b"1" + name.encode())
    got = [api.upload(n, b"2" + n.encode())["name"] for n in ["x.TXT", "no_extension", "dot."]]
    assert got == ["x (2).txt", "no_extensio (2).no_extension", "dot (2)."]


def test_collision_is_checked_before_quotes_are_removed(api: Api) -> None:
    assert api.upload("it's.txt", b"one")["name"] == "its.txt"
    assert api.upload("it's.txt", b"two")["name"] == "its.txt"  # D7: two active its.txt
    assert api.upload("its.txt", b"three")["name"] == "its (2).txt"
    assert names_in(api) == ["its (2).txt", "its.txt", "its.txt"]


def test_names_only_collide_with_active_files_in_the_same_folder(api: Api) -> None:
    folder = api.mkdir("F")["id"]
    first = api.upload("a.txt", b"1")
    assert api.upload("a.txt", b"2", folder)["name"] == "a.txt"
    api.ok("file/delete", file_id=first["file_id"])
    assert api.upload("a.txt", b"3")["name"] == "a.txt"


def test_astral_characters_and_long_names_are_mangled_when_stored(api: Api) -> None:
    item = api.upload("smile 😀.txt", b"emoji")
    assert item["name"] == "smile 😀.txt"  # the answer shows the name as sent
    long_name = "n" * 300 + ".txt"
    assert api.upload(long_name, b"long")["name"] == long_name
    assert sorted(names_in(api)) == sorted(["smile ????.txt", "n" * 255])


def test_folder_id_unknown_or_foreign_means_root(api: Api) -> None:
    api.upload("a.txt", b"a", folder_id="999")
    api.upload("b.txt", b"b", folder_id="0")
    api.upload("c.txt", b"c", folder_id="")
    assert names_in(api) == ["a.txt", "b.txt", "c.txt"]


def test_a_trashed_folder_still_accepts_uploads(api: Api) -> None:
    folder = api.mkdir("Docs")["id"]
    api.ok("folder/delete", folder_id=folder)
    api.upload("into-trash.txt", b"x", folder)
    assert names_in(api, folder) == ["into-trash.txt"]


def test_total_size_is_refreshed_only_by_uploads(api: Api) -> None:
    folder = api.mkdir("Docs")["id"]
    first = api.upload("a.txt", b"12345", folder)
    api.upload("b.txt", b"123", folder)
    assert api.ok("folder/info", folder_id=folder)["data"]["totalSize"] == "8"
    api.ok("file/delete", file_id=first["file_id"])
    assert api.ok("folder/info", folder_id=folder)["data"]["totalSize"] == "8"  # stale, as real


def test_chunked_request_bodies_are_accepted(api: Api) -> None:
    body = api.http.build_request(
        "POST", "file/upload", data=api.auth, files={"upload_file": ("c.bin", b"chunky" * 1000)}
    )
    raw = body.read()

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(raw), 1000):
            yield raw[i : i + 1000]

    r = api.http.post(
        "file/upload", content=pieces(), headers={"Content-Type": body.headers["Content-Type"]}
    )
    assert r.json()["data"][0]["size"] == 6000
    assert api.srv.tree()["files"][0]["md5"] == hashlib.md5(b"chunky" * 1000).hexdigest()


def test_upload_into_a_folder_cycle_fails_after_storing(api: Api) -> None:
    a = api.mkdir("A")["id"]
    b = api.mkdir("B", parent_id=a)["id"]
    api.ok("folder/move", folder_id=a, new_parent_folder_id=b)
    r = api.http.post(
        "file/upload",
        data={**api.auth, "folder_id": b},
        files={"upload_file": ("in-cycle.txt", b"x")},
    )
    assert r.json()["response"].startswith("Failed reading response from: ")
    assert [f["name"] for f in api.srv.tree()["files"]] == ["in-cycle.txt"]  # D9
