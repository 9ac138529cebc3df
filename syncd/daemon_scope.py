"""What ``syncd run`` rescans: for a settled batch of hints, for failed files now due.

The engine rescans ``dirs`` non-recursively and walks ``trees``; a directory it is given
that no longer exists becomes its nearest existing ancestor, so the mapping here must
never hand it a deleted directory as a tree (that would walk the ancestor: the whole
pair, for a top-level directory).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from syncd.debounce import Batch
from syncd.model import parent_of
from syncd.state import StateStore


def scope_of(
    root: Path, batch: Batch, mirrored: Callable[[str], bool], extra_dirs: set[str]
) -> tuple[list[str], list[str]]:
    """The ``(dirs, trees)`` to rescan for a settled batch, parents first.

    - a file hint (change or delete) rescans its directory; a directory hint (a tree)
      walks it if it exists, else rescans its parent, which finds its folder gone (a
      deleted or renamed-away directory must not make the engine walk its ancestor);
    - a directory that is not mirrored yet (new, renamed here) needs its parent planned
      first (that is where its ``Mkdir`` comes from), and so on up to a mirrored one;
    - ``extra_dirs`` (those of failed files due for a retry) are rescanned as well.
    """
    dirs, trees = set(extra_dirs), set()
    for tree in batch.trees:
        if tree == "" or (root / tree).is_dir():
            trees.add(tree)
            if tree and not mirrored(tree):
                dirs.add(parent_of(tree))
        else:
            dirs.add(parent_of(tree))
    for path in (*batch.paths, *batch.deletes):
        if path and (root / path).is_dir():
            trees.add(path)  # a directory where a file was: nothing is known of its contents
            dirs.add(parent_of(path))
        else:
            dirs.add(parent_of(path))
    for start in list(dirs):
        dirs.discard(start)
        while start and not (root / start).is_dir():  # gone too: its parent finds it gone
            start = parent_of(start)
        dirs.add(start)
        while start and not mirrored(start):
            start = parent_of(start)
            dirs.add(start)
    dirs = {d for d in dirs if not any(_within(d, t) for t in trees)}
    return sorted(dirs), sorted(trees)


def _within(path: str, tree: str) -> bool:
    return tree == "" or path == tree or path.startswith(tree + "/")


class Waiting(NamedTuple):
    """A pair's files that are not synced yet (deleted ones left out)."""

    earliest: float | None  # the earliest next_try (None: no file waits for a retry)
    due: set[str]  # directories of the files whose next_try has come
    pending: int
    failed: int


def retries_of(state: StateStore, pair: str, now: float) -> Waiting:
    """Scan ``pair``'s failed and pending records (an index range, not the whole pair):
    when the next retry is due, what is due at ``now`` (the uploader's clock), counts."""
    earliest: float | None = None
    due: set[str] = set()
    counts = {"pending": 0, "failed": 0}
    for kind in counts:
        for rec in state.iter_files(pair, state=kind, include_deleted=False):
            counts[kind] += 1
            if rec.next_try is None:
                continue  # failed by rule (a bad name): nothing to retry until it changes
            earliest = rec.next_try if earliest is None else min(earliest, rec.next_try)
            if rec.next_try <= now:
                due.add(parent_of(rec.path))
    return Waiting(earliest, due, counts["pending"], counts["failed"])
