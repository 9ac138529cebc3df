"""Path normalisation and ignore rules (gitignore syntax, .syncdignore, syncd's own files)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.errors import ConfigError
from syncd.lock import state_files
from syncd.paths import IGNORE_FILE, IgnoreRules, normalize_rel, to_rel


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("", ""),
        (".", ""),
        ("./", ""),
        ("a", "a"),
        ("./a/b", "a/b"),
        ("a//b/", "a/b"),
        ("a/./b", "a/b"),
        ("a\\b", "a\\b"),  # a backslash is an ordinary character in a POSIX name
        (" a ", " a "),
    ],
)
def test_normalize_rel(raw: str, norm: str) -> None:
    assert normalize_rel(raw) == norm


@pytest.mark.parametrize("bad", ["/etc/passwd", "..", "a/../../b", "a/..", "a\x00b"])
def test_normalize_rel_rejects_escapes(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_rel(bad)


def test_to_rel(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert to_rel(root, root) == ""
    assert to_rel(root, root / "a" / "b") == "a/b"
    assert to_rel(str(root) + "/", root / "a") == "a"
    assert to_rel(root, tmp_path / "rootx" / "a") is None  # a sibling sharing the prefix
    assert to_rel(root, tmp_path) is None
    assert to_rel(root, root / ".." / "elsewhere") is None
    assert to_rel(Path("/"), Path("/etc/x")) == "etc/x"


def rules(tmp_path: Path, *patterns: str) -> IgnoreRules:
    return IgnoreRules.load(tmp_path, patterns)


def test_default_style_patterns(tmp_path: Path) -> None:
    r = rules(tmp_path, "*.swp", "*~", ".#*", "*.part", "*.tmp")
    assert r.ignored("a.swp", False)
    assert r.ignored("deep/dir/a.swp", False)
    assert r.ignored("notes.txt~", False)
    assert r.ignored("x/.#lock", False)
    assert r.ignored("cache.tmp", True)  # a name pattern matches directories too
    assert not r.ignored("a.swp.txt", False)
    assert not r.ignored("notes.txt", False)
    assert r.reason("a.tmp", False) == "ignored"
    assert r.reason("a.txt", False) is None


def test_directory_pattern_matches_directories_only(tmp_path: Path) -> None:
    r = rules(tmp_path, "build/")
    assert r.ignored("build", True)
    assert r.ignored("src/build", True)
    assert not r.ignored("build", False)  # a file named build is uploaded
    assert r.ignored("build/out.o", False, check_parents=True)


def test_anchored_and_path_patterns(tmp_path: Path) -> None:
    r = rules(tmp_path, "/top.txt", "docs/*.md", "**/cache/**")
    assert r.ignored("top.txt", False)
    assert not r.ignored("sub/top.txt", False)
    assert r.ignored("docs/a.md", False)
    assert not r.ignored("docs/sub/a.md", False)
    assert not r.ignored("other/docs/a.md", False)
    assert r.ignored("x/cache/y", False)


def test_negation_follows_gitignore_precedence(tmp_path: Path) -> None:
    r = rules(tmp_path, "*.log", "!keep.log")
    assert r.ignored("a.log", False)
    assert not r.ignored("keep.log", False)
    assert not r.ignored("sub/keep.log", False)
    r2 = rules(tmp_path, "!keep.log", "*.log")  # later lines win
    assert r2.ignored("keep.log", False)


def test_check_parents_for_hints(tmp_path: Path) -> None:
    r = rules(tmp_path, "node_modules/", "*.tmp")
    assert not r.ignored("node_modules/pkg/index.js", False)  # a walk never gets here
    assert r.ignored("node_modules/pkg/index.js", False, check_parents=True)
    assert r.ignored("a.tmp/inner/file", False, check_parents=True)
    assert not r.ignored("src/pkg/index.js", False, check_parents=True)


def test_syncdignore_is_read_and_itself_uploaded(tmp_path: Path) -> None:
    (tmp_path / IGNORE_FILE).write_text("\ufeff# comment\n\nsecrets/\n*.key\n!public.key\n")
    r = rules(tmp_path, "*.tmp")
    assert r.ignored("secrets", True)
    assert r.ignored("a/b.key", False)
    assert not r.ignored("public.key", False)
    assert r.ignored("x.tmp", False)
    assert not r.ignored(IGNORE_FILE, False)
    assert rules(tmp_path, IGNORE_FILE).ignored(IGNORE_FILE, False)


def test_no_patterns_ignores_nothing(tmp_path: Path) -> None:
    r = rules(tmp_path)
    assert not r.ignored("anything", False)
    assert not r.ignored("dir", True, check_parents=True)
    assert r.file_test()("anything", "anything") is False


def test_unreadable_syncdignore_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / IGNORE_FILE).mkdir()  # reading a directory fails even as root
    with pytest.raises(ConfigError, match=r"cannot read ignore file .*\.syncdignore"):
        rules(tmp_path)


def test_bad_pattern_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sync\.ignore"):
        rules(tmp_path, "!")


def test_state_files_inside_root_are_excluded(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "state.db"
    r = rules(tmp_path, "*.tmp").with_excluded([*state_files(db), Path("/elsewhere/x.db")])
    for name in ("state.db", "state.db-wal", "state.db-shm", "state.db-journal", "state.db.lock"):
        assert r.reason(f"sub/{name}", False) == "ignored (syncd state file)"
        assert r.file_test()(f"sub/{name}", name)
    assert not r.ignored("sub/state.db.bak", False)
    assert r.ignored("sub/x.tmp", False)
    assert r.excluded == frozenset(
        f"sub/state.db{s}" for s in ("", "-wal", "-shm", "-journal", ".lock")
    )


def test_state_files_found_through_a_symlinked_root(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    r = IgnoreRules.load(link, []).with_excluded([real / "state.db"])
    assert r.ignored("state.db", False)


@pytest.mark.parametrize(
    "patterns",
    [
        ("*.swp", "*~", ".#*", "*.part", "*.tmp"),
        ("build/", "/top", "docs/*.md"),
        ("*.log", "!keep.log", "tmp/"),
        ("*",),
    ],
)
def test_fast_paths_agree_with_pathspec(tmp_path: Path, patterns: tuple[str, ...]) -> None:
    """The combined-regex shortcuts give pathspec's answers for paths a walk reaches."""
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    r = rules(tmp_path, *patterns)
    test = r.file_test()
    names = ["a.swp", "x~", ".#x", "f.part", "g.tmp", "build", "top", "keep.log", "a.log",
             "z.md", "plain", "tmp", "a.swp.x"]  # fmt: skip
    for parent in ("", "docs", "src/deep"):
        for name in names:
            rel = f"{parent}/{name}" if parent else name
            for is_dir in (False, True):
                expected = spec.match_file(rel + "/" if is_dir else rel)
                assert r.ignored(rel, is_dir) == expected, (rel, is_dir)
            assert test(rel, name) == spec.match_file(rel), rel


_NAME_CHARS = st.sampled_from(list("ab.#~!* ?[]\\-_x"))


@settings(max_examples=300, deadline=None)
@given(
    patterns=st.lists(st.text(_NAME_CHARS, min_size=1, max_size=4), min_size=1, max_size=4),
    names=st.lists(st.text(_NAME_CHARS, min_size=1, max_size=6), min_size=1, max_size=8),
)
def test_file_test_agrees_with_pathspec_for_any_name_patterns(
    patterns: list[str], names: list[str]
) -> None:
    """Whatever shortcut file_test takes (plain suffix/prefix/name tests, the combined
    regex, pathspec), a file is ignored exactly when pathspec says so."""
    import pathspec

    try:
        with warnings.catch_warnings():  # "[[]": re's possible-nested-set FutureWarning
            warnings.simplefilter("ignore", FutureWarning)
            spec = pathspec.GitIgnoreSpec.from_lines(patterns)
        r = IgnoreRules.from_patterns(Path("/root"), patterns)
    except (ValueError, ConfigError):
        return  # a bad pattern is refused up front (test_bad_pattern_is_a_config_error)
    test = r.file_test()
    # Like a walk: never a path inside an ignored directory (the rules assume so).
    parents = [""] + ([] if spec.match_file("d/") else ["d/"])
    for name in names:
        if name in (".", "..") or "/" in name:
            continue
        for rel in (parent + name for parent in parents):
            assert test(rel, name) == spec.match_file(rel), (patterns, rel)


def test_pattern_python_calls_a_nested_set_compiles_without_a_warning() -> None:
    """``[[]`` is a legal gitignore pattern (a set holding "["); the regex pathspec makes
    of it draws re's FutureWarning, which must not reach the user's terminal (the suite
    turns warnings into errors, so a leak fails here)."""
    rules = IgnoreRules.from_patterns(Path("/root"), ["[[]", "x[[]*"])
    assert rules.ignored("[", False)
    assert rules.ignored("d/x[1", False)
    assert not rules.ignored("a", False)


def test_default_patterns_take_the_plain_string_path() -> None:
    from syncd.paths import _affixes

    assert _affixes(["*.swp", "*~", ".#*", "*.part", "*.tmp", "Thumbs.db"]) == (
        (".swp", "~", ".part", ".tmp"), (".#",), frozenset({"Thumbs.db"})
    )
    for not_plain in (["*.t?p"], ["!x"], ["#c"], ["a/b"], ["*"], [" x"], ["x "], ["\\#x"]):
        assert _affixes(not_plain) is None, not_plain
