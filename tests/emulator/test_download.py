"""file/download and the download URLs it hands out (API-observed.md 9a-9b, 14b-14d, D4)."""

from __future__ import annotations

import re

import httpx

from tests.emulator.conftest import Api

CONTENT = b"0123456789abcdefghij"


def download_url(api: Api, file_id: str) -> str:
    answer = api.ok("file/download", file_id=file_id)
    data = answer["data"]
    assert list(data) == ["file_id", "filename", "download_url"]
    url: str = data["download_url"]
    return url


def test_download_url_shape_and_bytes(api: Api) -> None:
    up = api.upload("hello world.txt", CONTENT)
    url = download_url(api, up["file_id"])
    m = re.fullmatch(
        re.escape(api.srv.base_url) + r"(\w+)/hello_world\.txt\?download_token="
        r"([0-9a-f]{64})",
        url,
    )
    assert m and m.group(1) == up["short_url"]
    for _ in range(2):  # the token can be reused
        r = httpx.get(url)
        assert r.status_code == 200 and r.content == CONTENT
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.headers["content-length"] == str(len(CONTENT))
        assert r.headers["content-range"] == f"bytes 0-{len(CONTENT) - 1}/{len(CONTENT)}"
        assert r.headers["content-disposition"] == 'attachment; filename="hello world.txt"'
    info = api.ok("file/info", file_id=up["file_id"])["data"]
    assert info["downloads"] == "2" and info["lastAccessed"] is not None
    assert api.srv.requests.count(("GET", "download")) == 2


def test_url_name_is_mangled_but_not_encoded(api: Api) -> None:
    up = api.upload("a'b;c#d%e Ünï.txt", CONTENT)
    url = download_url(api, up["file_id"])
    assert f"/{up['short_url']}/ab_c_d_e_Ünï.txt?download_token=" in url
    assert httpx.get(url).content == CONTENT  # httpx encodes what the server did not


def test_the_name_part_does_not_matter(api: Api) -> None:
    up = api.upload("x.bin", CONTENT)
    token = download_url(api, up["file_id"]).split("download_token=")[1]
    base = api.srv.base_url + up["short_url"]
    assert httpx.get(f"{base}?download_token={token}").content == CONTENT
    assert httpx.get(f"{base}/other%20name?download_token={token}").content == CONTENT


def test_refusals(api: Api) -> None:
    a = api.upload("a.bin", CONTENT)
    b = api.upload("b.bin", CONTENT + b"!")
    token_a = download_url(api, a["file_id"]).split("download_token=")[1]
    base = api.srv.base_url
    with httpx.Client() as http:
        bad = http.get(f"{base}{a['short_url']}?download_token={'0' * 64}")
        assert bad.status_code == 302 and bad.headers["location"].startswith("/error.html?e=")
        page = http.get(base.rstrip("/") + bad.headers["location"])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        foreign = http.get(f"{base}{b['short_url']}?download_token={token_a}")
        assert foreign.status_code == 302
        assert http.get(f"{base}{a['short_url']}").status_code == 500  # no token at all
        missing = http.get(f"{base}zzzzzz?download_token={token_a}")
        assert missing.status_code == 404 and missing.content == b""
        api.ok("file/delete", file_id=a["file_id"])
        assert http.get(f"{base}{a['short_url']}?download_token={token_a}").status_code == 302


def test_ranges_copy_the_real_quirks(api: Api) -> None:
    url = download_url(api, api.upload("r.bin", CONTENT)["file_id"])
    with httpx.Client() as http:
        r = http.get(url, headers={"Range": "bytes=3-5"})
        assert r.status_code == 206 and r.content == b"345"
        assert r.headers["content-range"] == f"bytes 3-5/{len(CONTENT)}"
        r = http.get(url, headers={"Range": "bytes=3-"})
        assert r.status_code == 206 and r.content == CONTENT[3:]
        r = http.get(url, headers={"Range": "bytes=0-5"})
        assert r.status_code == 200 and r.content == CONTENT
        assert r.headers["content-range"] == f"bytes 0-5/{len(CONTENT)}"
        r = http.get(url, headers={"Range": "bytes=-5"})
        assert r.status_code == 200 and r.content == CONTENT
        r = http.get(url, headers={"Range": "bytes=100-"})
        assert r.status_code == 206 and r.content == b""
        r = http.head(url)
        assert r.status_code == 200 and r.headers["content-length"] == str(len(CONTENT))


def test_download_errors(api: Api) -> None:
    assert api.error("file/download") == "Please provide the file_id param."
    assert api.error("file/download", file_id=42) == "Could not find file based on file_id."
