"""Bad answers from the site: garbage JSON, HTML, empty and huge bodies, missing fields,
ids of the wrong type - once (the run must still end exactly in sync: what the site did
despite the bad answer is looked up, never duplicated) and for good (a clear error
naming the endpoint, the right exit code, the other files synced).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.emulator import EmulatorServer
from syncd.retry import RetryPolicy
from tests.reliability.tamper import (
    Rule,
    Spoil,
    TamperProxy,
    empty_body,
    garbage_json,
    html_page,
    huge_body,
    missing_fields,
    wrong_types,
)
from tests.scenario import Scenario

SPOILS: dict[str, Spoil] = {
    "garbage JSON": garbage_json,
    "HTML page": html_page,
    "empty body": empty_body,
    "huge body": huge_body,
    "missing fields": missing_fields,
    "ids of the wrong type": wrong_types,
}
FAST = RetryPolicy.fast()


@pytest.fixture
def proxy(emulator: EmulatorServer) -> Iterator[TamperProxy]:
    p = TamperProxy(emulator.api_url).start()
    yield p
    p.stop()


def through(sc: Scenario, proxy: TamperProxy) -> Scenario:
    """Point the scenario's config at the proxy instead of the emulator."""
    text = sc.config_path.read_text().replace(sc.server.api_url, proxy.api_url)
    sc.config_path.write_text(text)
    return sc


def small_tree(sc: Scenario) -> None:
    for i in range(6):
        sc.write(f"dir {i % 2}/file {i}.txt", f"content {i}")
    sc.write("it's.txt", b"altered name")


@pytest.mark.parametrize("spoil", list(SPOILS), ids=list(SPOILS))
@pytest.mark.parametrize(
    "endpoint", ["file/upload", "folder/create", "folder/listing", "file/edit"]
)
def test_one_bad_answer_after_the_site_acted_is_survived_without_duplicates(
    tmp_path: Path, emulator: EmulatorServer, proxy: TamperProxy, endpoint: str, spoil: str
) -> None:
    sc = through(Scenario(tmp_path, emulator), proxy)
    small_tree(sc)
    rule = proxy.add(Rule(endpoint, SPOILS[spoil]))
    result = sc.sync(policy=FAST)
    assert rule.spoiled == 1
    assert result.exit_code == 0, (result.error, result.failed, result.pending)
    sc.assert_in_sync()


@pytest.mark.parametrize("spoil", ["garbage JSON", "HTML page", "ids of the wrong type"])
def test_upload_answers_spoiled_for_good_fail_that_file_and_leave_no_copy(
    tmp_path: Path, emulator: EmulatorServer, proxy: TamperProxy, spoil: str
) -> None:
    sc = through(Scenario(tmp_path, emulator), proxy)
    small_tree(sc)
    sc.write("victim.bin", b"v" * 1000)
    # Every answer to an upload of the victim is spoiled; the other files' are not.
    proxy.add(Rule("file/upload", SPOILS[spoil], times=10**6, needle=b'filename="victim.bin"'))
    result = sc.sync(policy=FAST)
    assert result.exit_code == 1
    assert [p for p, _ in result.pending + result.failed] == ["victim.bin"]
    sc.assert_in_sync(ignore={"victim.bin"})  # and no copy of the victim left behind


def test_listing_spoiled_for_good_exits_75_naming_the_endpoint(
    tmp_path: Path, emulator: EmulatorServer, proxy: TamperProxy
) -> None:
    sc = through(Scenario(tmp_path, emulator), proxy)
    small_tree(sc)
    proxy.add(Rule("folder/listing", garbage_json, times=10**6))
    done = sc.cli("sync")
    assert done.returncode == 75, done.stderr
    lines = [ln for ln in done.stdout.splitlines() if "folder/listing" in ln]
    assert lines and "giving up" in lines[0] and "not a JSON answer" in lines[0], done.stdout


@pytest.mark.parametrize("then", ["kept", "deleted"])
def test_folder_create_answers_lost_four_times_leave_that_folder_pending_for_one_pass(
    tmp_path: Path, emulator: EmulatorServer, proxy: TamperProxy, then: str
) -> None:
    """Three answers lost before the site acted, the fourth after: the directory is
    not mirrored this pass (pending, a passing reason: the others go on, exit 1), and
    the folder the last attempt made is adopted by the next pass - or trashed, if the
    directory is gone by then."""
    sc = through(Scenario(tmp_path, emulator, on_delete="trash"), proxy)
    small_tree(sc)
    mine = b"folder_name=dir+0"
    proxy.add(Rule("folder/create", html_page, times=3, forward=False, needle=mine))
    proxy.add(Rule("folder/create", html_page, times=1, forward=True, needle=mine))
    first = sc.sync(policy=FAST)
    assert first.exit_code == 1
    assert first.failed == []
    assert {p for p, _ in first.pending} == {
        "dir 0/file 0.txt",
        "dir 0/file 2.txt",
        "dir 0/file 4.txt",
    }, first.pending
    assert all("folder dir 0 is not mirrored yet" in why for _, why in first.pending)
    if then == "deleted":
        sc.remove("dir 0")
    assert sc.sync(policy=FAST).exit_code == 0
    sc.assert_in_sync()  # no duplicate "dir 0", and no orphan one either
