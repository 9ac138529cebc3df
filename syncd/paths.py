"""Relative-path normalisation and ignore rules (pure, apart from reading ``.syncdignore``).

Paths inside a pair are relative POSIX strings ("" is the root, no "." / ".." parts, no
leading or trailing "/"; see ``model.py``). Ignore rules use gitignore syntax (pathspec):
the config ``ignore`` list first, then ``<local>/.syncdignore`` (only the one at the root;
its patterns are relative to the root, later lines win as in git). ``.syncdignore`` itself
is *not* ignored: it is part of the user's tree and comes back with ``restore``; add
``.syncdignore`` to a pattern list to keep it local.

Files syncd writes itself (the state DB and its ``-wal``/``-shm``/``-journal``/``.lock``
companions) must never be uploaded when they live inside a local root:
``IgnoreRules.with_excluded`` adds them as exact paths.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from syncd.errors import ConfigError

if TYPE_CHECKING:  # imported only for rules that need it (~20 ms at start)
    import pathspec

IGNORE_FILE = ".syncdignore"
REASON_IGNORED = "ignored"
REASON_OWN_FILE = "ignored (syncd state file)"

# pathspec names the "matched as a directory" group in every pattern; the same name may
# not appear twice in one regex, so the combined prefilter turns named groups anonymous.
_NAMED_GROUP = re.compile(r"\(\?P<[^>]+>")
_ANY_PARENTS = "^(?:.+/)?"  # how pathspec starts the regex of a pattern without "/"
# Lines a plain string test decides for a file name: "*.tmp" (suffix), ".#*" (prefix),
# "Thumbs.db" (whole name) - no other wildcard, escape, slash, negation or comment.
_PLAIN = r"[^*?\[\]\\/!# ][^*?\[\]\\/]*"
_AFFIX = re.compile(rf"\*(?P<suffix>[^*?\[\]\\/]+)|(?P<prefix>{_PLAIN})\*|(?P<name>{_PLAIN})")


def normalize_rel(path: str) -> str:
    """``path`` as a relative POSIX path: "./a//b/" -> "a/b", "." -> "".

    Raises ValueError for absolute paths, ".." parts and NUL bytes: such a path could
    name something outside the pair root (SPEC §1 goal 2).
    """
    if "\x00" in path:
        raise ValueError(f"path contains a NUL byte: {path!r}")
    if path.startswith("/"):
        raise ValueError(f"path must be relative to the pair root: {path!r}")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"path must not contain '..': {path!r}")
    return "/".join(parts)


def to_rel(root: Path | str, abs_path: Path | str) -> str | None:
    """``abs_path`` relative to ``root`` (POSIX), "" for the root itself, None if outside.

    Purely lexical (no symlink resolution): a symlink inside the root is a path inside
    the root even when it points elsewhere, which is what the scanner and watcher need.
    """
    r = os.path.abspath(root)
    p = os.path.abspath(abs_path)
    if p == r:
        return ""
    prefix = r if r.endswith("/") else r + "/"
    if not p.startswith(prefix):
        return None
    return p[len(prefix) :]


@dataclass(frozen=True)
class IgnoreRules:
    """Which paths under one local root are not uploaded.

    ``reason(rel, is_dir)`` / ``ignored(rel, is_dir)`` judge one path *assuming none of
    its parent directories is ignored* - true during a walk, which never descends into
    an ignored directory. For any other path (a watcher hint) pass ``check_parents=True``.
    """

    root: Path
    patterns: tuple[str, ...] = ()
    excluded: frozenset[str] = frozenset()
    _matcher: _Matcher | _PlainMatcher | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, local_root: Path, patterns: Sequence[str]) -> IgnoreRules:
        """Rules from the config ``ignore`` list plus ``<local_root>/.syncdignore``.

        An ignore file that exists but cannot be read is a ConfigError, not "no rules":
        silently uploading what the user meant to exclude could leak a secret.
        """
        lines = list(patterns)
        _check(lines, "the config key sync.ignore")
        ignore_file = local_root / IGNORE_FILE
        try:
            text = ignore_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise ConfigError(f"cannot read ignore file {ignore_file}: {exc.strerror}") from exc
        file_lines = text.lstrip("\ufeff").splitlines()
        _check(file_lines, str(ignore_file))
        return cls.from_patterns(local_root, lines + file_lines)

    @classmethod
    def from_patterns(cls, local_root: Path, lines: Iterable[str]) -> IgnoreRules:
        """Rules from gitignore lines only (no ``.syncdignore`` lookup)."""
        all_lines = tuple(lines)
        affixes = _affixes(all_lines)
        matcher: _Matcher | _PlainMatcher | None
        if affixes is not None:  # plain lines (the default list): no pathspec needed
            matcher = _PlainMatcher(*affixes) if any(affixes) else None
        else:
            spec = _compile(list(all_lines), "ignore patterns")
            active = any(p.include is not None for p in spec.patterns)
            with _regex_future_quiet():
                matcher = _Matcher(all_lines, spec) if active else None
        return cls(Path(local_root), all_lines, frozenset(), matcher)

    def with_excluded(self, abs_paths: Iterable[Path | str]) -> IgnoreRules:
        """These rules plus exact files to leave out (those outside the root are dropped).

        Each path is tried as given and with its directory resolved, so a state DB reached
        through a symlinked directory is still recognised.
        """
        extra: set[str] = set()
        real_root = os.path.realpath(self.root)
        for p in abs_paths:
            lexical = to_rel(self.root, p)
            if lexical:
                extra.add(lexical)
            head, tail = os.path.split(os.path.abspath(p))
            resolved = to_rel(real_root, os.path.join(os.path.realpath(head), tail))
            if resolved:
                extra.add(resolved)
        return replace(self, excluded=self.excluded | extra)

    def reason(self, rel: str, is_dir: bool, *, check_parents: bool = False) -> str | None:
        """Why ``rel`` is not uploaded ("ignored", or a syncd state file), None if it is."""
        if rel in self.excluded:
            return REASON_OWN_FILE
        m = self._matcher
        if m is None or not rel:
            return None
        if check_parents:
            parts = rel.split("/")
            for i in range(1, len(parts)):
                if m.hit("/".join(parts[:i]), parts[i - 1], True):
                    return REASON_IGNORED
        return REASON_IGNORED if m.hit(rel, rel.rpartition("/")[2], is_dir) else None

    def ignored(self, rel: str, is_dir: bool, *, check_parents: bool = False) -> bool:
        """True if ``rel`` (a directory when ``is_dir``) is not to be uploaded."""
        return self.reason(rel, is_dir, check_parents=check_parents) is not None

    def file_test(self) -> Callable[[str, str], bool]:
        """``test(rel, name)``: is the regular file ``rel`` (last part ``name``) ignored?

        The scanner's hot-path form of ``ignored(rel, False)``, with the same answers: the
        cheapest check these rules allow (usually one set lookup and one regex on the name).
        """
        m = self._matcher
        excluded = self.excluded
        if m is None:
            return lambda rel, name: rel in excluded
        if isinstance(m, _PlainMatcher):  # e.g. the default list: str methods, ~2x the regex
            suffixes, prefixes, names = m.suffixes, m.prefixes, m.names
            # Most names end and start with a character no pattern does: one set lookup
            # each rules them out (~180 instead of ~390 ns for the default list).
            lasts = frozenset(s[-1] for s in suffixes)
            firsts = frozenset(p[0] for p in prefixes)
            return lambda rel, name: (
                (name[-1] in lasts and name.endswith(suffixes))
                or (name[0] in firsts and name.startswith(prefixes))
                or name in names
                or (rel in excluded if excluded else False)  # usually empty: skip the hash
            )
        if m.exact and m.path_rx is None and m.name_rx is not None:
            name_match = m.name_rx.match
            return lambda rel, name: rel in excluded or name_match(name) is not None
        return lambda rel, name: self.reason(rel, False) is not None


_Affixes = tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]


def _affixes(lines: Sequence[str]) -> _Affixes | None:
    """(suffixes, prefixes, names) when every pattern line is one of the plain forms of
    ``_AFFIX`` (blank lines aside), else None."""
    suffixes: list[str] = []
    prefixes: list[str] = []
    names: set[str] = set()
    for line in lines:
        text = line.strip()
        if not text:
            continue
        m = _AFFIX.fullmatch(text)
        if m is None or text != line.rstrip("\n"):  # surrounding spaces: let pathspec judge
            return None
        if m["suffix"]:
            suffixes.append(m["suffix"])
        elif m["prefix"]:
            prefixes.append(m["prefix"])
        else:
            names.add(m["name"])
    return tuple(suffixes), tuple(prefixes), frozenset(names)


@dataclass(frozen=True, slots=True)
class _PlainMatcher:
    """Lines that are all ``*suffix``, ``prefix*`` or a whole name: such a line matches a
    path exactly when it matches its last part, file or directory alike (gitignore)."""

    suffixes: tuple[str, ...]
    prefixes: tuple[str, ...]
    names: frozenset[str]

    def hit(self, rel: str, name: str, is_dir: bool) -> bool:
        return name.endswith(self.suffixes) or name.startswith(self.prefixes) or name in self.names


class _Matcher:
    """The patterns compiled for speed; pathspec stays the judge whenever it could differ.

    Without negations, "ignored" is just "some pattern matches", and a pattern without a
    "/" (``*.tmp``, ``build/``) can only match through the last path part or an ancestor
    - ancestors are known not to be ignored - so it is tested against the name alone,
    which avoids regex backtracking over every "/" of a long path. Most paths match no
    pattern; one combined regex per kind costs ~0.3 us instead of pathspec's ~2 us loop.
    With negations the precedence rules matter: a combined prefilter on the full path,
    then pathspec itself.
    """

    def __init__(self, lines: Sequence[str], spec: pathspec.GitIgnoreSpec) -> None:
        import pathspec

        self.spec = spec
        active = [p for p in spec.patterns if p.include is not None and p.regex]
        self.exact = all(p.include for p in active)
        by_name: list[str] = []
        by_path: list[str] = []
        every: list[str] = []
        for line in lines:
            one = [p for p in pathspec.GitIgnoreSpec.from_lines([line]).patterns if p.regex]
            if not one or one[0].regex is None:
                continue
            regex = one[0].regex.pattern
            every.append(regex)
            if "/" in line.strip().rstrip("/"):
                by_path.append(regex)
            else:  # names hold no "/": drop the "any parent dirs" prefix
                by_name.append(regex.removeprefix(_ANY_PARENTS))
        self.name_rx = _combine(by_name)
        self.path_rx = _combine(by_path)
        self.full_rx = _combine(every)

    def hit(self, rel: str, name: str, is_dir: bool) -> bool:
        if self.exact:
            if self.name_rx is not None and self.name_rx.match(name + "/" if is_dir else name):
                return True
            return self.path_rx is not None and (
                self.path_rx.match(rel + "/" if is_dir else rel) is not None
            )
        key = rel + "/" if is_dir else rel
        assert self.full_rx is not None
        return self.full_rx.match(key) is not None and self.spec.match_file(key)


def _combine(regexes: list[str]) -> re.Pattern[str] | None:
    # pathspec names a "matched as a directory" group in every regex; a name may appear
    # only once per regex, so the combined one makes the groups anonymous.
    if not regexes:
        return None
    return re.compile("|".join(f"(?:{_NAMED_GROUP.sub('(?:', r)})" for r in regexes))


def _check(lines: list[str], source: str) -> None:
    """Refuse a bad pattern, naming where it came from (plain lines are always valid)."""
    if _affixes(lines) is None:
        _compile(lines, source)


def _compile(lines: list[str], source: str) -> pathspec.GitIgnoreSpec:
    import pathspec

    try:
        with _regex_future_quiet():
            return pathspec.GitIgnoreSpec.from_lines(lines)
    except ValueError as exc:  # GitWildMatchPatternError is a ValueError
        raise ConfigError(f"bad ignore pattern in {source}: {exc}") from exc


@contextmanager
def _regex_future_quiet() -> Iterator[None]:
    """Compile without re's FutureWarning: pathspec turns legal patterns such as ``[[]``
    into a regex Python flags as a "possible nested set". Today's meaning is pathspec's,
    which the tests hold syncd to; on the user's terminal the warning is only noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield
