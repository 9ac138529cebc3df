"""Which names a server stores, and which listed names are variants of an upload."""

from __future__ import annotations

import pytest

from syncd.names import is_upload_variant, unstorable_reason, upload_stored_name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("photo 😀.jpg", "4-byte"),
        ("line\nbreak.txt", "control"),
        (" lead.txt", "blanks"),
        ("trail.txt ", "blanks"),
        ("a<b.txt", "'<'"),
        ("x" * 252 + ".txt", "255 bytes"),
    ],
)
def test_unstorable_names_say_why(name: str, fragment: str) -> None:
    reason = unstorable_reason(name)
    assert reason is not None and fragment in reason


@pytest.mark.parametrize(
    "name", ["plain.txt", "it's.txt", 'say "hi".txt', "a\\b.txt", ".bashrc", "a < b.txt",
             "ünï 文件.txt", "#%+&.txt", "-dash", "x" * 251 + ".txt"]
)
def test_storable_names(name: str) -> None:
    assert unstorable_reason(name) is None


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("it's.txt", "its.txt"),
        ('say "hi".txt', "say %22hi%22.txt"),
        ("a\\b.txt", "b.txt"),
        (".bashrc", "bashrc"),
        ("..two", ".two"),
        ("plain.txt", "plain.txt"),
    ],
)
def test_upload_stored_name_matches_observed_server(sent: str, stored: str) -> None:
    assert upload_stored_name(sent) == stored


@pytest.mark.parametrize(
    ("listed", "sent", "variant"),
    [
        ("hello.txt", "hello.txt", True),
        ("hello (2).txt", "hello.txt", True),
        ("hello (13).txt", "hello.txt", True),
        ("x (2).txt", "x.TXT", True),
        ("no_extensio (2).no_extension", "no_extension", True),
        ("its (2).txt", "it's.txt", True),
        ("hello (2).txt.bak", "hello.txt", False),
        ("hello2.txt", "hello.txt", False),
        ("other.txt", "hello.txt", False),
        ("Hello (2).txt", "hello.txt", False),
    ],
)
def test_upload_variants(listed: str, sent: str, variant: bool) -> None:
    assert is_upload_variant(listed, sent) is variant
