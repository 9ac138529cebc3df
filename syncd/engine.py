"""One pass over a pair: scan -> plan -> execute, recording every confirmed effect.

The pass streams: the scanner yields one directory at a time, the planner compares it
with that directory's records, folders are mirrored at once (parent before child, in
this thread), uploads go to a bounded pool of workers, and deletions are collected and
sent last, after the mass-delete guard (``max_delete_ratio``) has approved them.

A pass with nothing to do sends no request at all: the remote is touched lazily (pair
root, package limits, intents to recover) only when an action needs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from syncd.config import Config, PairConfig
from syncd.errors import AuthRefused, RemoteError, RemoteUnavailable, SyncdError, result_exit_code
from syncd.log import get_logger
from syncd.model import DirScan, FileRecord, FileState, Kind, target_key, target_value
from syncd.pass_scans import pass_scans
from syncd.paths import IgnoreRules
from syncd.plan import (
    DirFailed,
    DropFolder,
    DropRecord,
    MarkDeleted,
    MarkDirGone,
    Mkdir,
    NoteSkip,
    TrashFile,
    TrashFolder,
    Undelete,
    Upload,
    plan_dir,
)
from syncd.progress import NullReporter, Reporter
from syncd.remote_tree import RemoteTree
from syncd.state import StateStore, state_files, utc_now

if TYPE_CHECKING:  # for annotations only: no import at start
    from syncd.remote.base import Remote
    from syncd.uploader import Outcome, Uploader

log = get_logger("syncd.engine")


@dataclass
class PassResult:
    pair: str
    uploaded: int = 0
    bytes: int = 0
    unchanged: int = 0
    folders: int = 0
    trashed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)
    planned: list[tuple[str, str]] = field(default_factory=list)  # dry run: (action, path)
    error: str | None = None
    fatal: SyncdError | None = None

    @property
    def exit_code(self) -> int:
        return result_exit_code(self.fatal, failed=bool(self.failed or self.pending or self.error))


class Engine:
    """Runs passes for the pairs of one config against one remote and one state DB."""

    def __init__(
        self,
        config: Config,
        state: StateStore,
        remote: Remote,
        *,
        reporter: Reporter | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.state = state
        self.remote = remote
        self.reporter = reporter or NullReporter()
        self.stop = stop or threading.Event()
        self.clock = clock
        self._workers: int | None = None

    # -- public ------------------------------------------------------------------------
    def sync_pair(
        self,
        pair: PairConfig,
        *,
        dirs: Iterable[str] = (),
        trees: Iterable[str] | None = None,
        dry_run: bool = False,
        one_shot: bool = True,
    ) -> PassResult:
        """One pass. ``trees=None`` and no ``dirs``: the whole pair; otherwise only the
        given directories (non-recursive) and trees (recursive), as the daemon asks."""
        result = PassResult(pair.name)
        if not pair.local.is_dir():
            result.error = f"local root {pair.local} is missing or not a directory"
            log.error("pair unavailable", pair=pair.name, error=result.error)
            if not dry_run:
                self.state.end_pass(pair.name, ok=False, error=result.error)
            return result
        run = _PassRun(self, pair, result, dry_run=dry_run, one_shot=one_shot)
        try:
            scans = pass_scans(pair, run.rules, self.state, dirs=list(dirs), trees=trees,
                               follow_symlinks=self.config.sync.follow_symlinks)  # fmt: skip
            run.execute(scans)
        except (RemoteUnavailable, AuthRefused) as exc:
            result.fatal, result.error = exc, str(exc)
        except RemoteError as exc:
            result.error = str(exc)
        if not dry_run:
            self.state.end_pass(pair.name, ok=result.exit_code == 0, error=result.error)
        return result

    def workers(self) -> int:
        """``workers`` capped by the account's concurrent_uploads (0 = no cap)."""
        if self._workers is None:
            cap = self.remote.package().concurrent_uploads
            wanted = max(1, self.config.sync.workers)
            self._workers = min(wanted, cap) if cap > 0 else wanted
        return self._workers


class _PassRun:
    """The mutable state of one pass (kept out of Engine so passes never share it)."""

    def __init__(
        self,
        engine: Engine,
        pair: PairConfig,
        result: PassResult,
        *,
        dry_run: bool,
        one_shot: bool,
    ) -> None:
        self.engine, self.pair, self.result = engine, pair, result
        self.state, self.remote = engine.state, engine.remote
        self.dry_run, self.one_shot = dry_run, one_shot
        sync = engine.config.sync
        self.rules = IgnoreRules.load(pair.local, sync.ignore).with_excluded(
            state_files(sync.state_db)
        )
        self.tree = RemoteTree(pair, self.state, self.remote)
        self.deletes: list[TrashFile | TrashFolder] = []
        self.records_at_start: int | None = None  # counted before the first action runs
        self.pool: ThreadPoolExecutor | None = None
        self.slots: threading.Semaphore | None = None
        self.futures: list[Future[Outcome]] = []
        self.folder_ids: dict[str, str | None] = {}  # of the directory being planned
        self.abort: SyncdError | None = None
        self.lock = threading.Lock()

    @cached_property
    def uploader(self) -> Uploader:
        """Built (and its module imported) by the first upload or per-file failure, in
        this thread: a pass with nothing to do never needs it."""
        from syncd.uploader import Uploader

        engine = self.engine
        return Uploader(
            self.pair.name,
            self.pair.local,
            self.state,
            self.remote,
            max_upload_size=lambda: self.remote.package().max_upload_size,
            follow_symlinks=engine.config.sync.follow_symlinks,
            on_progress=engine.reporter.advance,
            clock=engine.clock,
            one_shot=self.one_shot,
        )

    def execute(self, scans: Iterable[DirScan]) -> None:
        pair = self.pair.name
        self._check_target()
        if not self.dry_run:
            self.state.begin_pass(pair)
            if self.state.intents(pair):
                from syncd.recovery import recover_intents

                recover_intents(self.state, self.remote, pair)
        try:
            for scan in scans:
                if self.engine.stop.is_set() or self.abort is not None:
                    break
                self._plan_and_run(scan)
        finally:
            self._drain()
        if self.abort is not None:
            raise self.abort
        if self.engine.stop.is_set():
            # Files not reached are neither uploaded nor failed: this was no full pass.
            self.result.error = self.result.error or "pass interrupted before it finished"
        else:
            self._run_deletes()
        self._collect_failures()

    # -- per directory -----------------------------------------------------------------
    def _plan_and_run(self, scan: DirScan) -> None:
        pair, now = self.pair.name, self.engine.clock()
        files = self.state.records_left(pair, scan)  # unchanged files left out: fast
        actions = plan_dir(
            scan,
            files,
            self.state.folders_in(pair, scan.path),
            on_delete=self.engine.config.sync.on_delete,
            now=now,
            honour_backoff=not self.one_shot,
        )
        if not actions:
            return
        if self.records_at_start is None:  # a full count is a table scan: not in a no-op pass
            counts = self.state.counts(pair)
            self.records_at_start = sum(counts[k] for k in ("synced", "pending", "failed"))
        folder_failure, permanent = self._dir_failure(scan.path) if scan.path else (None, False)
        self.folder_ids.clear()
        for action in actions:
            if self.dry_run:
                self._describe(action)
            elif isinstance(action, Upload):
                if folder_failure is not None:
                    self.uploader.fail(action.entry.path, action.record, folder_failure, permanent)
                else:
                    self._submit(action, scan.path)
            elif isinstance(action, Mkdir):
                rec = self.tree.mkdir(action.path, action.existing)
                if rec.state == "active":
                    self.result.folders += 1
            elif isinstance(action, TrashFile | TrashFolder):
                self.deletes.append(action)
            else:
                self._record(action, now)

    def _dir_failure(self, path: str) -> tuple[str | None, bool]:
        """Why files of ``path`` cannot be uploaded now, and whether that is for good (a
        refused folder: long backoff) or passes (not mirrored yet: retried soon)."""
        rec = self.state.folder(self.pair.name, path)
        if rec is None:
            return f"folder {path} is not mirrored yet", False
        if rec.state == "pending":
            return f"folder {path} is not mirrored yet: {rec.error}", False
        if rec.state == "failed":
            return f"folder {path} could not be mirrored: {rec.error}", True
        return None, False

    def _record(self, action: object, now: float) -> None:
        pair, state = self.pair.name, self.state
        if isinstance(action, NoteSkip):
            entry = action.entry
            rec = action.record or FileRecord(
                pair, entry.path, size=entry.size, mtime_ns=entry.mtime_ns, inode=entry.inode
            )
            rec.state = FileState.SKIPPED if entry.kind is Kind.SKIP else FileState.FAILED
            rec.error = entry.reason
            state.put_file(rec)
        elif isinstance(action, Undelete):
            state.update_file(pair, action.path, deleted_at=None)
        elif isinstance(action, MarkDeleted):
            state.update_file(pair, action.path, deleted_at=utc_now())
        elif isinstance(action, DropRecord):
            state.delete_file_record(pair, action.path)
        elif isinstance(action, DropFolder):
            state.forget_tree(pair, action.path)
        elif isinstance(action, MarkDirGone):
            state.mark_tree_gone(pair, action.folder.path, utc_now())
        elif isinstance(action, DirFailed):
            log.warning("directory unreadable", pair=pair, path=action.path, error=action.reason)
            self.result.failed.append((action.path or ".", action.reason))

    def _describe(self, action: object) -> None:
        label, path = type(action).__name__.lower(), ""
        if isinstance(action, Upload | NoteSkip):
            path = action.entry.path
            if isinstance(action, Upload):
                label = "replace" if action.record and action.record.file_id else "upload"
        elif isinstance(action, TrashFile):
            path = action.record.path
        elif isinstance(action, TrashFolder | MarkDirGone):
            path = action.folder.path
        elif isinstance(
            action, Mkdir | Undelete | DropRecord | DropFolder | MarkDeleted | DirFailed
        ):
            path = action.path
        self.result.planned.append((label, path))

    # -- uploads -----------------------------------------------------------------------
    def _submit(self, action: Upload, dir_path: str) -> None:
        if self.pool is None:
            workers = self.engine.workers()
            self.pool = ThreadPoolExecutor(workers, thread_name_prefix="syncd-upload")
            self.slots = threading.Semaphore(workers * 2)  # bounded queue: flat memory
        if dir_path not in self.folder_ids:  # one lookup per directory, not one per file
            self.folder_ids[dir_path] = self.tree.folder_id_of(dir_path)
        folder_id = self.folder_ids[dir_path]
        if folder_id is None:
            self.uploader.fail(action.entry.path, action.record, "folder is not mirrored", False)
            return
        assert self.slots is not None
        uploader = self.uploader  # built here, not by two workers at once
        self.slots.acquire()
        self.engine.reporter.queued(action.entry.size)
        if len(self.futures) >= 64:  # drop the settled ones: flat memory at 10^6 files
            self.futures = [f for f in self.futures if not f.done() or f.exception() is not None]
        self.futures.append(self.pool.submit(self._upload, uploader, action, folder_id))

    def _upload(self, uploader: Uploader, action: Upload, folder_id: str) -> Outcome:
        from syncd.uploader import Outcome

        assert self.slots is not None
        try:
            if self.abort is not None or self.engine.stop.is_set():
                return Outcome("pending", error="stopped")
            outcome = uploader.run(action, folder_id)
        except SyncdError as exc:
            # The uploader records every per-file problem itself; what escapes it (remote
            # unavailable, a token refused again, an unwritable state DB) ends the pass:
            # swallowed, it would leave the file neither uploaded nor recorded, exit 0.
            with self.lock:
                self.abort = self.abort or exc
            return Outcome("pending", error=str(exc))
        finally:
            self.slots.release()
        with self.lock:
            if outcome.status == "uploaded":
                self.result.uploaded += 1
                self.result.bytes += outcome.bytes
            elif outcome.status == "unchanged":
                self.result.unchanged += 1
        self.engine.reporter.done(action.entry.path, outcome.status)
        return outcome

    def _drain(self) -> None:
        if self.pool is None:
            return
        bug: BaseException | None = None
        for future in self.futures:
            exc = future.exception()  # wait; outcomes were counted by the workers
            bug = bug or exc  # only non-SyncdErrors get here: a bug must not pass silently
        self.pool.shutdown(wait=True)
        self.futures.clear()
        if bug is not None:
            raise bug

    # -- deletions ---------------------------------------------------------------------
    def _run_deletes(self) -> None:
        if not self.deletes or self.dry_run:
            return
        pair = self.pair.name
        doomed = sum(
            1 if isinstance(d, TrashFile) else self.state.count_under(pair, d.folder.path)
            for d in self.deletes
        )
        ratio = self.engine.config.sync.max_delete_ratio
        if self.records_at_start and doomed / self.records_at_start > ratio:
            self.result.error = (
                f"refusing to trash {doomed} of {self.records_at_start} files of pair {pair}:"
                f" more than max_delete_ratio = {ratio}; check the local tree, or raise"
                " [sync] max_delete_ratio for one run"
            )
            log.error("mass delete refused", pair=pair, error=self.result.error)
            return
        from syncd.uploader import trash_file

        for action in self.deletes:
            if isinstance(action, TrashFile):
                trash_file(self.state, self.remote, action.record)
            else:
                self.tree.trash(action.folder)
            self.result.trashed += 1

    def _collect_failures(self) -> None:
        for rec in self.state.iter_files(self.pair.name, state="failed", include_deleted=False):
            self.result.failed.append((rec.path, rec.error or "failed"))
        if self.one_shot:
            for rec in self.state.iter_files(
                self.pair.name, state="pending", include_deleted=False
            ):
                self.result.pending.append((rec.path, rec.error or "pending"))

    def _check_target(self) -> None:
        """A pair whose local root or remote target changed starts over (records dropped)."""
        pair = self.pair
        target, key = target_value(pair), target_key(pair)
        known = self.state.get_meta(key)
        if known == target or self.dry_run:
            return
        if known is not None:
            log.warning("pair target changed", pair=pair.name, error=f"{known} -> {target}")
            self.state.forget_tree(pair.name, "")
        self.state.set_meta(key, target)

