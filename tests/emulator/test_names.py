"""The name rules in isolation (the HTTP tests show them end to end)."""

from __future__ import annotations

import pytest

from syncd.emulator import names


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  <b>Tagged</b> name  ", "Tagged name"),
        ("a<b dir", "a"),
        ("c<d.txt", "c"),
        ("x < y", "x < y"),
        ("a > b", "a > b"),
        ('<a href="x>y">link</a>', "link"),
        ("trailing<", "trailing"),
        ("\t plain \n", "plain"),
    ],
)
def test_clean_param_is_php_trim_strip_tags(raw: str, clean: str) -> None:
    assert names.clean_param(raw) == clean


@pytest.mark.parametrize(
    ("name", "n", "numbered"),
    [
        ("hello.txt", 2, "hello (2).txt"),
        ("x.TXT", 2, "x (2).txt"),
        ("archive.tar.GZ", 3, "archive.tar (3).gz"),
        ("no_extension", 2, "no_extensio (2).no_extension"),
        ("dot.", 2, "dot (2)."),
    ],
)
def test_numbered(name: str, n: int, numbered: str) -> None:
    assert names.numbered(name, n) == numbered


def test_fold_ignores_case_and_accents() -> None:
    assert names.fold("Café.TXT") == names.fold("cafe.txt")
    assert names.fold("Straße") == names.fold("STRASSE")
    assert names.fold("a.txt") != names.fold("b.txt")


def test_to_db_and_helpers() -> None:
    assert names.to_db("a😀b") == "a????b"
    assert len(names.to_db("x" * 300)) == 255
    assert names.php_int(" 12abc") == 12 and names.php_int("abc") == 0 and names.php_int("") == 0
    assert names.keywords("hello (2).txt") == "hello,2,txt"
    assert names.keywords("hello-copy.txt") == "hello,copy,txt"
    assert names.url_name("it's a #1 100%;<b>x</b>.txt") == "it_s_a__1_100__x.txt"
    assert names.received_upload_name('C:\\dir\\"q".txt') == "%22q%22.txt"
    assert names.final_upload_name("it's\r\n.txt") == "its.txt"
