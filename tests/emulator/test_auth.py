"""Tokens and error envelopes behave like a live 4.x site (API-observed.md 0a-2b, 13, 15, 16)."""

from __future__ import annotations

import re
import time

import httpx

from syncd.emulator import EmulatorServer
from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Api

BAD_PAIR = "Could not validate access_token and account_id, please reauthenticate or try again."


def test_authorize_issues_a_128_char_token_and_a_string_account_id(anon: Api) -> None:
    answer = anon.ok_plain("authorize", key1=anon.srv.key1, key2=anon.srv.key2)
    assert set(answer) == {"data", "_status", "_datetime"}
    assert re.fullmatch(r"[0-9a-zA-Z]{128}", answer["data"]["access_token"])
    assert answer["data"]["account_id"] == anon.srv.account_id == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", answer["_datetime"])


def test_authorize_rejects_short_and_wrong_keys(anon: Api) -> None:
    assert (
        anon.error("authorize", key1="0123456789abcdef" * 2, key2=anon.srv.key2)
        == "Please provide key1. It must be 64 characters in length."
    )
    assert (
        anon.error("authorize", key1=anon.srv.key1)
        == "Please provide key2. It must be 64 characters in length."
    )
    assert anon.error("authorize", key1="x" * 64, key2="y" * 64).startswith(
        "Could not authenticate user. The key pair may be invalid"
    )


def test_authorize_works_with_a_get_query_but_ignores_json_bodies(anon: Api) -> None:
    keys = {"key1": anon.srv.key1, "key2": anon.srv.key2}
    assert anon.http.get("authorize", params=keys).json()["_status"] == "success"
    r = anon.http.post("authorize", json=keys)
    assert r.json()["response"] == "Please provide key1. It must be 64 characters in length."


def test_reauthorizing_kills_the_previous_token(api: Api) -> None:
    old = dict(api.auth)
    api.ok("folder/listing")
    Api(api.srv).login().close()
    api.auth = old
    assert api.error("folder/listing") == BAD_PAIR


def test_disable_access_token(api: Api) -> None:
    answer = api.ok("disable_access_token")
    assert answer["response"] == "Token removed or no longer available."
    assert api.error("folder/listing") == BAD_PAIR


def test_missing_or_mismatched_credentials(api: Api) -> None:
    token = api.auth["access_token"]
    api.auth = {"account_id": "1"}
    assert api.error("folder/listing") == "Please provide the access_token param."
    api.auth = {"access_token": token}
    assert api.error("folder/listing") == "Please provide the account_id param."
    api.auth = {"access_token": token, "account_id": "2"}
    assert api.error("file/info", file_id=1) == BAD_PAIR
    api.auth = {"access_token": "x" * 128, "account_id": "1"}
    assert api.error("folder/listing") == BAD_PAIR


def test_account_endpoints_accept_any_valid_token(api: Api) -> None:
    api.srv.store.add_user("a" * 64, "b" * 64, "other")
    api.auth["account_id"] = "2"  # another user's id: account/* does not care
    info = api.ok("account/info")["data"]
    assert info["id"] == "2" and info["username"] == "other"
    assert api.ok("account/info", account_id=999)["data"] is False
    package = api.ok("account/package")["data"]
    assert package["label"] == "Registered User"
    assert package["max_upload_size"] == "5368709120" and package["concurrent_uploads"] == "0"
    assert all(isinstance(v, str) for v in package.values())
    api.auth["access_token"] = "nope"
    assert (
        api.error("account/info")
        == "Could not validate access_token, please reauthenticate or try again."
    )


def test_a_used_token_expires_after_the_idle_ttl(emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory(token_ttl=0.3)
    with Api(srv) as api:
        api.login()
        api.ok("folder/listing")
        time.sleep(0.2)
        api.ok("folder/listing")  # each use refreshes the idle clock
        time.sleep(0.45)
        assert api.error("folder/listing") == BAD_PAIR


def test_a_never_used_token_does_not_expire(emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory(token_ttl=0.1)
    with Api(srv) as api:
        api.login()
        time.sleep(0.3)
        api.ok("folder/listing")


def test_expire_tokens_helper(api: Api) -> None:
    api.srv.store.expire_tokens()
    assert api.error("folder/listing") == BAD_PAIR


def test_injected_clock_drives_expiry(emulator_factory: EmulatorFactory) -> None:
    now = [1000.0]
    srv = emulator_factory(clock=lambda: now[0])
    with Api(srv) as api:
        api.login()
        api.ok("folder/listing")
        now[0] += 3599
        api.ok("folder/listing")
        now[0] += 3601
        assert api.error("folder/listing") == BAD_PAIR


def test_5x_error_style(emulator_factory: EmulatorFactory) -> None:
    srv: EmulatorServer = emulator_factory(error_style="_status")
    with httpx.Client(base_url=srv.api_url) as http:
        answer = http.post("folder/listing", data={"account_id": "1"}).json()
    assert list(answer) == ["response", "_status", "_datetime"]
    assert answer["_status"] == "error"
    assert answer["response"] == "Please provide the access_token param."


def test_4x_error_style_is_the_default(anon: Api) -> None:
    answer = anon.raw("folder/listing").json()
    assert list(answer) == ["status", "response", "_datetime"]
    assert answer["status"] == "error"


def test_api_headers_copy_the_real_site(anon: Api) -> None:
    r = anon.raw("authorize", key1=anon.srv.key1, key2=anon.srv.key2)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["access-control-allow-orgin"] == "*"  # sic
    assert r.headers["set-cookie"].startswith("filehosting=")
    assert "\\/" in r.text or "/" not in r.text  # PHP escapes slashes
