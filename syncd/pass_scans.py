"""Which directories one pass looks at: the whole tree, or what the daemon was told of.

A whole-pair pass walks the tree, with a second scanning process when the tree is big
and a core is free (``scan_split``); the daemon's passes scan the directories (alone)
and trees (recursively) its watcher reported, each from its nearest existing ancestor,
so a directory removed since the event is seen from its parent. Files synced and
unchanged are left out by the scanner itself (``DirScan.unchanged``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path

from syncd.config import PairConfig
from syncd.model import DirScan, parent_of
from syncd.paths import IgnoreRules
from syncd.scan import scan_dir, walk
from syncd.scan_split import SPLIT_MIN_FOLDERS, HelperJob, split_walk
from syncd.state import StateStore


def pass_scans(
    pair: PairConfig,
    rules: IgnoreRules,
    state: StateStore,
    *,
    follow_symlinks: bool,
    dirs: list[str],
    trees: Iterable[str] | None,
) -> Iterator[DirScan]:
    """The scans of one pass, parents before children. ``trees=None`` and no ``dirs``:
    the whole pair."""
    follow, known = follow_symlinks, partial(state.quiet_keys, pair.name)
    if trees is None and not dirs:
        yield from split_walk(pair.local, rules, follow_symlinks=follow, known=known,
                              helper=scan_helper(state, pair.name))  # fmt: skip
        return
    seen: set[str] = set()
    for rel in dirs:
        rel = _nearest_existing_dir(pair.local, rel)
        if rel not in seen:
            seen.add(rel)
            yield scan_dir(pair.local, rel, rules, follow_symlinks=follow, known=known)
    for rel in trees or ():
        rel = _nearest_existing_dir(pair.local, rel)
        yield from walk(pair.local, rules, start=rel, follow_symlinks=follow, known=known)


def scan_helper(state: StateStore, pair: str) -> HelperJob | None:
    """A second scanning process for a big tree (by its folder records), if there is a
    second core for it."""
    if (os.cpu_count() or 1) < 2 or state.folder_count(pair) < SPLIT_MIN_FOLDERS:
        return None
    return HelperJob(state.path, pair)


def _nearest_existing_dir(root: Path, rel: str) -> str:
    while rel and not (root / rel).is_dir():
        rel = parent_of(rel)
    return rel
