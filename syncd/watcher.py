"""watchdog adapter: file-system events -> path hints ``(pair, rel_path, kind)``. Nothing else.

Events are hints, never truth (no stat, no DB here): the daemon feeds them to its
``Debouncer`` and the scanner judges. Translation (kinds as in ``syncd.debounce``):

    file created / modified / attrib / closed-after-write   -> (path, "change")
    file deleted                                            -> (path, "delete")
    file moved a -> b                                       -> (a, "delete"), (b, "change")
    directory created / deleted                             -> (path, "dir")
    directory moved a -> b                                  -> (a, "dir"), (b, "dir")
    inotify queue overflow                                  -> ("", "dir") for every pair
    a directory that could not be watched (limit reached)   -> (its path, "dir")

Directory "modified"/"attrib" events (side effects of changes to their children, which are
reported on their own) and open/close-without-write events (our own uploads reading files)
are not subscribed to. Synthetic events watchdog makes up for the contents of a moved or
created directory are dropped: the directory's "dir" hint covers them. Paths are relative
POSIX strings ("" = the pair root); a path outside the root comes out as ``../…`` and a
non-UTF-8 name keeps its surrogate escapes: the scanner rejects or reports them.

Watch limits (verified in watchdog 7.1.0's ``observers/inotify*.py``):

- ``inotify_init`` failing with EMFILE (``fs.inotify.max_user_instances``) raises
  ``OSError(EMFILE, "inotify instance limit reached")`` from the observer's constructor.
- ``inotify_add_watch`` failing with ENOSPC (``fs.inotify.max_user_watches``) raises
  ``OSError(ENOSPC, "inotify watch limit reached")`` from ``InotifyFD.add_callback``.
  watchdog lets it reach ``schedule()`` only for the watched root itself; for a
  subdirectory (while scheduling, when a new directory appears, or while re-watching after
  an overflow) it swallows the error and that subtree silently goes unwatched.
- An ``IN_Q_OVERFLOW`` makes watchdog log a warning, drop its pending move events and
  re-add its watches; no event reaches the handlers.

- A new directory whose subdirectory was already watched by the recursive walk gets that
  watch added again when the subdirectory's own IN_CREATE arrives; watchdog then issues a
  RuntimeWarning ("Callback … already exists") from its reader thread, which kills the
  thread wherever warnings are errors (our test suite).

So on Linux we give watchdog our own ``InotifyFD`` subclass (the emitter accepts one):
``add_callback`` reports every failure to us before re-raising, re-adding the same
callback is a quiet no-op, and ``handle_event`` reports overflows. A pair whose watches
ran out is logged once with the fix, then falls back to periodic rescans
(``fallback_pairs()``) instead of silently missing changes. ``max_watches`` simulates a
small ``max_user_watches`` for tests: the fd refuses watches the kernel would have to
create beyond it, with the very same ENOSPC error.

Threads: ``on_hint`` is called from watchdog's threads (and from ``start()``); it must be
thread-safe and quick, e.g. ``queue.put_nowait`` or ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import errno
import os
import posixpath
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from watchdog.events import (
    EVENT_TYPE_ATTRIB,
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver

from syncd.debounce import HintKind
from syncd.log import get_logger

log = get_logger("syncd.watcher")

HintSink = Callable[[str, str, HintKind], None]
IgnoreRule = Callable[[str, str], bool]

WATCH_LIMIT_FIX: Final = (
    "raise the limit: sysctl fs.inotify.max_user_watches=524288; keep it across reboots: "
    "echo fs.inotify.max_user_watches=524288 > /etc/sysctl.d/90-syncd-inotify.conf"
)
INSTANCE_LIMIT_FIX: Final = (
    "raise the limit: sysctl fs.inotify.max_user_instances=1024; keep it across reboots: "
    "echo fs.inotify.max_user_instances=1024 > /etc/sysctl.d/90-syncd-inotify.conf"
)
_LIMIT_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EMFILE})

# Subscribing only to these keeps IN_OPEN/IN_ACCESS/IN_CLOSE_NOWRITE (our own reads while
# hashing and uploading) out of the kernel queue: no feedback loop, less wake-ups.
_EVENT_FILTER: Final[list[type[FileSystemEvent]]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]
_FILE_CHANGES: Final = frozenset(
    {EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_ATTRIB, EVENT_TYPE_CLOSED}
)
_STOP_TIMEOUT: Final = 10.0  # seconds per thread join; watchdog's own waits are 1 s


def relative(path: str | bytes, root: str) -> str:
    """``path`` relative to ``root`` as a POSIX string ("" for the root itself)."""
    text = os.fsdecode(path)
    if text == root:
        return ""
    prefix = root if root.endswith("/") else root + "/"
    if text.startswith(prefix):
        return text[len(prefix) :].rstrip("/")
    return posixpath.relpath(text, root)  # outside the root: "../x"; the scanner refuses it


def translate(event: FileSystemEvent, root: str) -> list[tuple[str, HintKind]]:
    """The hints one watchdog event stands for (see the module docstring)."""
    if event.is_synthetic:
        return []  # made up for the contents of a moved/created directory: its hint covers it
    kind = event.event_type
    if kind == EVENT_TYPE_MOVED:
        old_end: HintKind = "dir" if event.is_directory else "delete"
        new_end: HintKind = "dir" if event.is_directory else "change"
        ends = [(event.src_path, old_end), (event.dest_path, new_end)]
        return [(relative(path, root), hint) for path, hint in ends if path]
    rel = relative(event.src_path, root)
    if event.is_directory:
        if kind in (EVENT_TYPE_CREATED, EVENT_TYPE_DELETED):
            return [(rel, "dir")]
        return []
    if kind == EVENT_TYPE_DELETED:
        return [(rel, "delete")]
    if kind in _FILE_CHANGES:
        return [(rel, "change")]
    return []


class _PairHandler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher, pair: str) -> None:
        self._watcher = watcher
        self._pair = pair

    def dispatch(self, event: FileSystemEvent) -> None:
        self._watcher._on_event(self._pair, event)


class Watcher:
    """Watches each pair's local root and reports path hints.

    ``roots``: pair name -> local root. ``on_hint(pair, rel_path, kind)`` receives hints;
    ``ignore(pair, rel_path)`` returning True drops a hint (the root "" is never dropped).
    ``max_watches`` caps inotify watches (all pairs together) to simulate a low
    ``fs.inotify.max_user_watches``; None = the kernel's limit.
    """

    def __init__(
        self,
        roots: Mapping[str, Path],
        on_hint: HintSink,
        *,
        ignore: IgnoreRule | None = None,
        max_watches: int | None = None,
    ) -> None:
        # Watch the real directory: watchdog adds IN_DONT_FOLLOW, so a root that is a
        # symlink would otherwise watch the link, not the tree.
        self._roots = {pair: os.path.realpath(os.fspath(root)) for pair, root in roots.items()}
        self._on_hint = on_hint
        self._ignore = ignore
        self._max_watches = max_watches
        self._lock = threading.Lock()
        self._fallback: set[str] = set()
        self._warned: set[int] = set()  # errnos already explained to the operator
        self._observer: BaseObserver | None = None
        self._state = "new"  # new -> starting -> running -> stopped

    # -- public API --------------------------------------------------------------------

    def start(self) -> None:
        """Set the watches. A pair that cannot be watched goes to ``fallback_pairs()``."""
        if self._state != "new":
            raise RuntimeError("a Watcher starts once")
        self._state = "starting"
        try:
            observer = self._make_observer()
        except OSError as exc:
            if exc.errno not in _LIMIT_ERRNOS:
                raise
            for pair in self._roots:
                self._fall_back(pair, exc)
            self._state = "running"
            return
        observer.start()
        self._observer = observer
        for pair, root in self._roots.items():
            self._schedule(observer, pair, root)
        self._state = "running"

    def stop(self) -> None:
        """Remove every watch and join watchdog's threads. Idempotent."""
        if self._state == "stopped":
            return
        self._state = "stopped"
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(_STOP_TIMEOUT)

    def fallback_pairs(self) -> set[str]:
        """Pairs that are not (fully) watched and must be rescanned periodically."""
        if self._state in ("running", "starting") and not self._threads_alive():
            return set(self._roots)  # watchdog's threads died: nothing is watched
        with self._lock:
            return set(self._fallback)

    @property
    def healthy(self) -> bool:
        """True while the watchdog threads run (some pairs may still be in fallback)."""
        return self._state == "running" and self._threads_alive()

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------

    def _make_observer(self) -> BaseObserver:
        if _HAVE_INOTIFY_FD:
            return _InotifyObserver(_ReportingInotifyFD(self, self._max_watches))
        from watchdog.observers import Observer

        return Observer()

    def _schedule(self, observer: BaseObserver, pair: str, root: str) -> None:
        try:
            watch = observer.schedule(
                _PairHandler(self, pair), root, recursive=True, event_filter=_EVENT_FILTER
            )
        except OSError as exc:
            # The root itself could not be watched: a limit, or the root is missing or
            # unreadable (the scanner reports that one properly).
            self._fall_back(pair, exc)
            return
        with self._lock:
            partial = pair in self._fallback
        if partial:
            # Part of the tree went unwatched while scheduling: free the watches we did
            # get for the other pairs; this one is rescanned periodically anyway.
            observer.unschedule(watch)

    def _threads_alive(self) -> bool:
        observer = self._observer
        if observer is None:
            return False
        if not observer.is_alive():
            return False
        fd = getattr(observer, "inotify_fd", None)
        return fd is None or bool(fd.is_alive())

    def _pair_of(self, abs_path: str) -> str | None:
        """The pair whose root holds ``abs_path`` (the deepest one if roots nest)."""
        holders = [
            (len(root), pair)
            for pair, root in self._roots.items()
            if abs_path == root or abs_path.startswith(root.rstrip("/") + "/")
        ]
        return max(holders)[1] if holders else None

    def _emit(self, pair: str, rel: str, kind: HintKind) -> None:
        if rel and self._ignore is not None and self._ignore(pair, rel):
            return
        self._on_hint(pair, rel, kind)

    def _on_event(self, pair: str, event: FileSystemEvent) -> None:
        root = self._roots[pair]
        try:
            for rel, kind in translate(event, root):
                self._emit(pair, rel, kind)
            if event.event_type == EVENT_TYPE_DELETED and event.src_path in (root, root + "/"):
                # watchdog stops the emitter when the watched root itself goes away
                self._fall_back(pair, FileNotFoundError(errno.ENOENT, "watched root removed"))
        except Exception:
            # A failing hint sink must not kill watchdog's dispatcher thread; rescans cover.
            log.exception("watch hint failed", pair=pair)
            self._fall_back(pair, None)

    def _on_watch_error(self, path: bytes, exc: OSError) -> None:
        """Called by the fd when adding a watch failed (before watchdog sees the error)."""
        if exc.errno not in _LIMIT_ERRNOS:
            return  # e.g. a directory vanished while being watched: nothing lost
        abs_path = os.fsdecode(path)
        pair = self._pair_of(abs_path)
        if pair is None:
            return
        self._fall_back(pair, exc)
        if self._state == "running":  # at start the daemon's full pass covers it
            try:
                self._emit(pair, relative(abs_path, self._roots[pair]), "dir")
            except Exception:  # never let it replace the OSError watchdog expects
                log.exception("watch hint failed", pair=pair)

    def _on_overflow(self) -> None:
        """The kernel dropped events: every pair needs a full rescan."""
        log.warning("inotify queue overflowed", action="full rescan of every pair")
        for pair in self._roots:
            try:
                self._on_hint(pair, "", "dir")
            except Exception:
                log.exception("watch hint failed", pair=pair)

    def _fall_back(self, pair: str, exc: OSError | None) -> None:
        code = exc.errno if exc is not None else None
        with self._lock:
            if pair in self._fallback:
                return
            self._fallback.add(pair)
            explain = code in _LIMIT_ERRNOS and code not in self._warned
            if code is not None and explain:
                self._warned.add(code)
        error = str(exc) if exc is not None else "watcher failed"
        if explain:
            fix = WATCH_LIMIT_FIX if code == errno.ENOSPC else INSTANCE_LIMIT_FIX
            log.warning(
                "inotify limit reached, falling back to periodic rescans",
                pair=pair,
                error=error,
                fix=fix,
            )
        else:
            log.info("pair falls back to periodic rescans", pair=pair, error=error)


_HAVE_INOTIFY_FD = False
if sys.platform.startswith("linux"):
    try:
        from watchdog.observers.inotify import InotifyEmitter
        from watchdog.observers.inotify_c import (
            CallbackId,
            InotifyEvent,
            InotifyFD,
            Mask,
            WatchCallback,
            WatchDescriptor,
            inotify_rm_watch,
        )
    except ImportError:  # pragma: no cover - a watchdog without InotifyFD: plain Observer
        pass
    else:
        _HAVE_INOTIFY_FD = True

        class _ReportingInotifyFD(InotifyFD):
            """watchdog's inotify instance, telling us about failed watches and overflows."""

            def __init__(self, watcher: Watcher, max_watches: int | None) -> None:
                super().__init__()  # OSError(EMFILE) when out of inotify instances
                self._syncd_watcher = watcher
                self._syncd_max_watches = max_watches

            def add_callback(
                self, path: bytes, mask: Mask, callback: WatchCallback, id_: CallbackId
            ) -> WatchDescriptor:
                try:
                    return super().add_callback(path, mask, callback, id_)
                except OSError as exc:  # reported outside the fd's lock, then watchdog's turn
                    self._syncd_watcher._on_watch_error(path, exc)
                    raise

            def _add_callback(
                self, path: bytes, mask: Mask, callback: WatchCallback, id_: CallbackId
            ) -> WatchDescriptor:
                # watchdog's version, with two changes. (1) When a new directory's subdir
                # was already watched by the recursive walk, its own IN_CREATE re-adds the
                # same callback and watchdog warns "already exists": a RuntimeWarning that
                # kills this thread under `-W error`. Re-adding the same callback is a no-op.
                # (2) The simulated watch limit, applied only to watches the kernel had to
                # create (re-adding a watched inode costs nothing, as with the real limit).
                before = len(self._watch_for_wd)
                watch = self._get_or_create_watch(path, mask)
                limit = self._syncd_max_watches
                if limit is not None and len(self._watch_for_wd) > max(before, limit):
                    del self._watch_for_wd[watch.wd]
                    inotify_rm_watch(self._inotify_fd, watch.wd)
                    raise OSError(errno.ENOSPC, "inotify watch limit reached")
                if watch.callbacks.get(id_) is not callback:
                    watch.callbacks[id_] = callback
                return watch.wd

            def handle_event(self, event: InotifyEvent) -> None:
                super().handle_event(event)  # on overflow: watchdog re-adds its watches first
                if event.is_queue_overflow:
                    self._syncd_watcher._on_overflow()

        class _InotifyObserver(BaseObserver):
            """``InotifyObserver`` with our fd (watchdog's hard-codes a plain ``InotifyFD``)."""

            def __init__(self, inotify_fd: _ReportingInotifyFD) -> None:
                self.inotify_fd = inotify_fd
                super().__init__(InotifyEmitter, inotify_fd=inotify_fd)

            def on_thread_start(self) -> None:
                self.inotify_fd.start()
                super().on_thread_start()

            def on_thread_stop(self) -> None:
                super().on_thread_stop()  # stops and joins the emitters
                self.inotify_fd.stop()
                if self.inotify_fd.is_alive():
                    self.inotify_fd.join(_STOP_TIMEOUT)
