"""The event aggregator: path hints in, settled batches out. PURE: time is passed in.

Modelled on Syncthing's watch aggregator. Watch events are hints ("look at this path
again"), never truth, so the debouncer only decides *when* a path is worth rescanning and
*how* (one path, or a whole tree); the scanner re-stats and compares with the state DB.

Rules, per pending entry (one per path)::

    deadline = min(last_seen + debounce,      # quiet for `debounce` -> settled
                   first_seen + max_delay)    # never quiet -> still rescanned this often

- ``add(path, now)`` creates an entry or re-touches it (``last_seen = now``); the quiet
  timer restarts but ``first_seen`` is kept, so ``max_delay`` is a hard cap. An entry
  leaves with the ``due()`` call that emits it; a later ``add`` starts a new entry.
- Kinds: ``"change"`` (a file or directory to re-stat, non-recursively), ``"delete"``
  (probably gone; checked and ordered last), ``"dir"`` (a directory to rescan
  recursively, a *tree*). Re-adding a path: a tree stays a tree; otherwise the latest of
  change/delete wins (the scan decides anyway; the kind only orders the batch).
- A tree covers its descendants: a hint below a pending tree adds no entry, it re-touches
  the tree. Adding a tree absorbs the entries below it.
- Escalation: when more than ``escalate_children`` direct children of one directory
  (files, or subdirectories with something pending below them) are pending, they are
  replaced by a tree at that directory; when more than ``max_paths`` entries are pending
  in total, everything becomes the tree ``""`` (the whole pair). Merged entries keep the
  earliest ``first_seen``, so escalation never delays a path past its cap.
- Renames settle in one pass: a moved file arrives as a delete of the old path followed by
  a change of the new one. A due delete or tree waits for pending entries touched within
  ``debounce`` after it (the other end of the move) and leaves in the same batch, never
  later than its own cap. Cost: at most one extra ``debounce`` for such entries.

``next_deadline()`` is exactly the earliest time a ``due()`` call returns something, so a
caller waits with that deadline instead of polling; ``due(next_deadline())`` is never empty.

Paths are relative POSIX paths inside one pair ("" = the pair root); use one Debouncer
per pair. Complexity: ``add`` is O(depth) except when a tree absorbs entries (O(pending));
``due``/``next_deadline`` are O(pending log pending); pending is bounded by ``max_paths``.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Final, Literal, get_args

HintKind = Literal["change", "delete", "dir"]
HINT_KINDS: Final[frozenset[str]] = frozenset(get_args(HintKind))

DEFAULT_MAX_PATHS: Final = 1000  # Syncthing's maxFiles: past this a full scan is cheaper
DEFAULT_ESCALATE_CHILDREN: Final = 100  # Syncthing uses 128 per directory; same idea


@dataclass(frozen=True)
class Batch:
    """What a ``due()`` call hands to the scanner; every tuple is sorted.

    - ``trees``: directories to rescan recursively (``""`` = the whole pair). A tree may
      no longer exist (deleted or moved away): that is how its records learn they are gone.
    - ``paths``: files or directories to re-stat non-recursively (created or changed).
    - ``deletes``: paths that were probably removed; re-stat them last, after ``paths``,
      so the other end of a rename (in ``paths``) is known first.

    No path appears twice, and no path lies below a tree of the same batch.
    """

    trees: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.trees or self.paths or self.deletes)

    def __len__(self) -> int:
        return len(self.trees) + len(self.paths) + len(self.deletes)

    def ordered(self) -> list[tuple[str, HintKind]]:
        """Every entry with its kind, in processing order: trees, paths, deletes last."""
        return (
            [(p, "dir") for p in self.trees]
            + [(p, "change") for p in self.paths]
            + [(p, "delete") for p in self.deletes]
        )


EMPTY_BATCH: Final = Batch()


@dataclass(slots=True)
class _Entry:
    kind: HintKind
    first_seen: float
    last_seen: float


def _parent(path: str) -> str | None:
    """The directory holding ``path``; ``None`` for the pair root itself."""
    if path == "":
        return None
    cut = path.rfind("/")
    return path[:cut] if cut >= 0 else ""


def _ancestors(path: str) -> list[str]:
    """Proper ancestors of ``path``, nearest first, ending with the root ``""``."""
    out: list[str] = []
    parent = _parent(path)
    while parent is not None:
        out.append(parent)
        parent = _parent(parent)
    return out


def _is_below(path: str, directory: str) -> bool:
    """True if ``path`` lies strictly below ``directory``."""
    if directory == "":
        return path != ""
    return path.startswith(directory + "/")


class Debouncer:
    """Per-pair aggregator of path hints (see the module docstring for the rules)."""

    def __init__(
        self,
        debounce: float,
        max_delay: float,
        *,
        max_paths: int = DEFAULT_MAX_PATHS,
        escalate_children: int = DEFAULT_ESCALATE_CHILDREN,
    ) -> None:
        if not (debounce >= 0 and max_delay >= 0):  # also rejects NaN
            raise ValueError("debounce and max_delay must be >= 0")
        if max_paths < 1 or escalate_children < 1:
            raise ValueError("max_paths and escalate_children must be >= 1")
        self.debounce = float(debounce)
        self.max_delay = float(max_delay)
        self.max_paths = max_paths
        self.escalate_children = escalate_children
        self._entries: dict[str, _Entry] = {}
        # For every proper-ancestor-or-self ``x`` (x != "") of an entry: how many entries lie
        # at or below x; and for every directory, its children with something pending.
        self._below: dict[str, int] = {}
        self._kids: dict[str, set[str]] = {}

    # -- public API --------------------------------------------------------------------

    def add(self, path: str, now: float, *, kind: HintKind = "change") -> None:
        """Record a hint for ``path`` (relative POSIX, "" = root) seen at time ``now``."""
        if kind not in HINT_KINDS:
            raise ValueError(f"unknown hint kind {kind!r}")
        path = path.strip("/")
        for covering in (path, *_ancestors(path)):
            entry = self._entries.get(covering)
            if entry is not None and entry.kind == "dir":
                entry.last_seen = max(entry.last_seen, now)
                return
        existing = self._entries.get(path)
        if kind == "dir":
            first = now if existing is None else existing.first_seen
            self._make_tree(path, first, now)
        elif existing is not None:
            existing.kind = kind
            existing.last_seen = max(existing.last_seen, now)
        else:
            self._insert(path, _Entry(kind, now, now))
        self._escalate_above(path, now)
        if len(self._entries) > self.max_paths:
            self._make_tree("", now, now)

    def due(self, now: float) -> Batch:
        """Remove and return every entry whose release time is ``<= now``."""
        release = self._release_times()
        ready = [p for p, at in release.items() if at <= now]
        if not ready:
            return EMPTY_BATCH
        groups: dict[HintKind, list[str]] = {"dir": [], "change": [], "delete": []}
        for path in ready:
            groups[self._entries[path].kind].append(path)
            self._remove(path)
        return Batch(
            trees=tuple(sorted(groups["dir"])),
            paths=tuple(sorted(groups["change"])),
            deletes=tuple(sorted(groups["delete"])),
        )

    def next_deadline(self) -> float | None:
        """The earliest ``now`` at which ``due(now)`` returns a non-empty batch, or None."""
        release = self._release_times()
        return min(release.values()) if release else None

    def pending(self) -> int:
        """Number of pending entries (a tree counts as one)."""
        return len(self._entries)

    def clear(self) -> None:
        """Forget everything (e.g. a full reconcile pass is about to run anyway)."""
        self._entries.clear()
        self._below.clear()
        self._kids.clear()

    # -- internals ---------------------------------------------------------------------

    def _deadline(self, entry: _Entry) -> float:
        return min(entry.last_seen + self.debounce, entry.first_seen + self.max_delay)

    def _release_times(self) -> dict[str, float]:
        """When each entry leaves: its deadline, except that a delete or tree waits for the
        entries touched within ``debounce`` after it (a rename's other end), capped by its
        own ``first_seen + max_delay``.

        Entries are processed from the most recently touched down, so an entry's holders
        already have their final release time; equal ``last_seen`` ties use the plain
        deadline of the not-yet-processed mates.
        """
        if not self._entries:
            return {}
        order = sorted(self._entries.items(), key=lambda item: item[1].last_seen)
        seen = [entry.last_seen for _, entry in order]
        value = [self._deadline(entry) for _, entry in order]
        release: dict[str, float] = {}
        for i in range(len(order) - 1, -1, -1):
            path, entry = order[i]
            at = value[i]
            if entry.kind != "change":
                lo = bisect.bisect_left(seen, entry.last_seen)
                hi = bisect.bisect_right(seen, entry.last_seen + self.debounce)
                holders = value[lo:i] + value[i + 1 : hi]
                if holders:
                    cap = entry.first_seen + self.max_delay
                    at = min(cap, max(at, max(holders)))
            value[i] = at
            release[path] = at
        return release

    def _insert(self, path: str, entry: _Entry) -> None:
        self._entries[path] = entry
        node: str | None = path
        while node:  # stops at the root "" (or None)
            count = self._below.get(node, 0) + 1
            self._below[node] = count
            if count == 1:
                parent = _parent(node)
                assert parent is not None
                self._kids.setdefault(parent, set()).add(node)
            node = _parent(node)

    def _remove(self, path: str) -> _Entry:
        entry = self._entries.pop(path)
        node: str | None = path
        while node:
            count = self._below[node] - 1
            if count:
                self._below[node] = count
            else:
                del self._below[node]
                parent = _parent(node)
                assert parent is not None
                kids = self._kids[parent]
                kids.discard(node)
                if not kids:
                    del self._kids[parent]
            node = _parent(node)
        return entry

    def _make_tree(self, directory: str, first_seen: float, now: float) -> None:
        """Replace ``directory`` and every entry below it by one tree entry."""
        first = first_seen
        if directory in self._entries:
            first = min(first, self._remove(directory).first_seen)
        has_below = bool(self._entries) if directory == "" else directory in self._below
        if has_below:
            for path in [p for p in self._entries if _is_below(p, directory)]:
                first = min(first, self._remove(path).first_seen)
        self._insert(directory, _Entry("dir", first, now))

    def _escalate_above(self, path: str, now: float) -> None:
        """Turn the nearest over-full ancestor directory into a tree, repeatedly."""
        node = _parent(path)
        while node is not None:
            if len(self._kids.get(node, ())) > self.escalate_children:
                self._make_tree(node, math.inf, now)
            node = _parent(node)
