"""``syncd restore``: get the backup back, verified, never clobbering without ``--overwrite``.

Two sources of jobs feed one ``Restorer`` (``restore_files.py``):

* the state DB (normal case): the records of a pair, all or under ``PATH…``, deleted ones
  included (the "deleted by mistake" case); each is MD5-checked against the MD5 recorded
  at upload (size only for adopted records, which have none) and gets its recorded mtime.
  Recorded directories come back, empty ones too. Recorded zero-byte files (which the
  API cannot store) are recreated empty; other skipped files (ignored, symlinks, special
  files) were never uploaded and are listed as "not in the backup". Records that never
  reached the remote are "not restored: never uploaded".
* ``--from-remote REMOTE_PATH`` (disaster mode): the remote tree under that folder, walked
  with ``folder/listing``; sizes come from the listing. When the configured state DB
  exists it is used (and locked, like every restore) for what it knows: MD5s and mtimes
  of the files it recorded (matched by file id), and the folders syncd trashed; without
  it, nothing is locked and nothing is created.

Where files go: ``--to DIR`` (created if missing); with several pairs, ``DIR/<pair>``;
by default a new ``./<pair>-restore-<YYYYmmddTHHMMSS>``. Never into a pair's live local
root unless ``--to`` names it and ``--overwrite`` is given, and never below a live root
(the next sync would upload the restored copies as new files).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from syncd.commands import print_json, select_pairs, worst_exit
from syncd.config import Config, PairConfig
from syncd.errors import SyncdError
from syncd.lock import StateLock
from syncd.log import get_logger
from syncd.model import FileState
from syncd.paths import normalize_rel
from syncd.progress import LogReporter, Reporter, RichReporter
from syncd.remote.uploadapi.remote import UploadApiRemote
from syncd.restore_files import Job, Restorer, RestoreResult
from syncd.restore_remote import make_dest, restore_remote_folder
from syncd.retry import RetryPolicy
from syncd.scan import ZERO_BYTE
from syncd.state import StateStore

log = get_logger("syncd.restore")
SHOWN = 50  # problems listed in the text summary (all of them are in --json)


def run_restore(
    config: Config,
    pairs: tuple[str, ...],
    *,
    to_dir: Path | None,
    overwrite: bool,
    dry_run: bool,
    as_json: bool,
    from_remote: str | None,
    paths: tuple[str, ...],
    policy: RetryPolicy | None = None,
) -> int:
    """The ``restore`` command; returns the exit code (SPEC §6)."""
    prefixes = _prefixes(paths)
    interactive = sys.stderr.isatty() and not as_json and not dry_run
    reporter: Any = RichReporter("restore") if interactive else LogReporter()
    results: list[RestoreResult] = []
    with ExitStack() as stack:
        if interactive:
            stack.enter_context(reporter)
        if from_remote is not None:
            if to_dir is None:
                raise click.UsageError("--from-remote needs --to DIR")
            if pairs:
                raise click.UsageError("--from-remote restores a remote folder: drop --pair")
            dest = _destination(config, None, to_dir, overwrite=overwrite, several=False)
            state = _existing_state(config, stack)
            remote = stack.enter_context(_remote(config, policy))
            results.append(
                restore_remote_folder(
                    config, state, remote, from_remote, dest, prefixes,
                    overwrite=overwrite, dry_run=dry_run, reporter=reporter,
                )
            )  # fmt: skip
        else:
            selected = select_pairs(config, pairs)
            dests = [
                _destination(config, p, to_dir, overwrite=overwrite, several=len(selected) > 1)
                for p in selected
            ]
            db = config.sync.state_db
            if not db.exists():
                raise SyncdError(
                    f"no state DB at {db}: restore from the remote tree instead with "
                    "syncd restore --from-remote REMOTE_PATH --to DIR"
                )
            stack.enter_context(StateLock(db))
            state = stack.enter_context(StateStore(db))
            remote = stack.enter_context(_remote(config, policy))
            for pair, dest in zip(selected, dests, strict=True):
                result = restore_pair(
                    state, remote, pair, dest, prefixes, workers=config.sync.workers,
                    overwrite=overwrite, dry_run=dry_run, reporter=reporter,
                )  # fmt: skip
                results.append(result)
                if result.fatal is not None:
                    break
    for r in results:
        log.info(
            "restore finished", pair=r.pair or r.remote_path, files=r.restored, bytes=r.bytes,
            present=r.present, failed=len(r.not_restored), error=r.error,
        )  # fmt: skip
    code = worst_exit([r.exit_code for r in results])
    if as_json:
        print_json({"restores": [_result_json(r) for r in results], "exit_code": code})
    else:
        _print_summary(results)
    return code


# -- the state DB as the source ------------------------------------------------------------
def restore_pair(
    state: StateStore,
    remote: UploadApiRemote,
    pair: PairConfig,
    dest: Path,
    prefixes: Sequence[str] = (),
    *,
    workers: int = 4,
    overwrite: bool = False,
    dry_run: bool = False,
    reporter: Reporter | None = None,
) -> RestoreResult:
    """Restore the recorded files of ``pair`` (all, or under ``prefixes``) into ``dest``."""
    result = RestoreResult(pair.name, pair.remote_path, dest, dry_run=dry_run)
    if not dry_run:
        make_dest(dest)
    restorer = Restorer(
        remote, dest, result, overwrite=overwrite, dry_run=dry_run, workers=workers,
        reporter=reporter,
    )  # fmt: skip
    try:
        scopes: list[str | None] = [_as_recorded(state, pair.name, p) for p in prefixes] or [None]
        for prefix in scopes:
            found = False
            for folder in state.iter_folders(pair.name, prefix=prefix):
                if folder.path:
                    found = True
                    restorer.make_dir(folder.path)
            for rec in state.iter_files(pair.name, prefix=prefix):
                found = True
                if restorer.stopped:
                    result.notes.append("the remaining files were not attempted")
                    break
                if rec.state is FileState.SKIPPED:
                    if rec.error == ZERO_BYTE and not rec.size:
                        restorer.submit(Job(rec.path, None, 0, None, rec.mtime_ns))
                    else:
                        result.not_in_backup.append((rec.path, rec.error or "skipped"))
                elif rec.file_id is None:
                    why = rec.error or str(rec.state)
                    result.not_restored.append((rec.path, f"never uploaded ({why})"))
                else:
                    restorer.submit(Job(rec.path, rec.file_id, rec.size, rec.md5, rec.mtime_ns))
            if prefix is not None and not found:
                result.not_restored.append((prefix, "nothing recorded at this path"))
            if restorer.stopped:
                break
    except BaseException:
        restorer.cancel()  # Ctrl-C or a state DB error: stop, but wait for the workers
        raise
    finally:
        restorer.finish()
    if (
        not prefixes
        and state.folder(pair.name, "") is None
        and not result.planned
        and not (result.restored or result.present or result.not_restored or result.not_in_backup)
    ):
        result.notes.append("nothing recorded for this pair in the state DB (never synced?)")
    return result


# -- helpers -------------------------------------------------------------------------------
def _prefixes(paths: Sequence[str]) -> list[str]:
    """``PATH…`` as normalized prefixes, nested ones dropped; [] = everything."""
    out: list[str] = []
    try:
        normalized = sorted({normalize_rel(p) for p in paths})
    except ValueError as exc:
        raise click.UsageError(f"PATH: {exc}") from None
    if "" in normalized:
        return []
    for p in normalized:
        if not any(p == q or p.startswith(q + "/") for q in out):
            out.append(p)
    return out


def _as_recorded(state: StateStore, pair: str, prefix: str) -> str:
    """``prefix``, or without a leading ``<pair>/`` when only that names records (the
    text output of ``ls`` prints ``PAIR/PATH``: a path pasted from it works too)."""
    stripped = prefix.removeprefix(pair + "/")
    if stripped == prefix or _recorded(state, pair, prefix):
        return prefix
    return stripped if _recorded(state, pair, stripped) else prefix


def _recorded(state: StateStore, pair: str, prefix: str) -> bool:
    return any(True for _ in state.iter_files(pair, prefix=prefix)) or any(
        f.path for f in state.iter_folders(pair, prefix=prefix)
    )


def _destination(
    config: Config, pair: PairConfig | None, to_dir: Path | None, *, overwrite: bool, several: bool
) -> Path:
    """Where ``pair`` goes; refuses live roots (see the module docstring)."""
    if to_dir is None:
        assert pair is not None
        dest = Path.cwd() / f"{pair.name}-restore-{time.strftime('%Y%m%dT%H%M%S')}"
    else:
        dest = to_dir.expanduser().absolute()
        if several and pair is not None:
            dest = dest / pair.name
    real = os.path.realpath(dest)
    for live in config.pairs:
        root = os.path.realpath(live.local)
        if real == root:
            if to_dir is None or not overwrite:
                raise click.UsageError(
                    f"{dest} is the live local root of pair {live.name}: to restore into it, "
                    "name it with --to and add --overwrite"
                )
        elif real.startswith(root.rstrip("/") + "/"):
            raise click.UsageError(
                f"{dest} is inside the live local root of pair {live.name}: the next sync "
                "would upload the restored copies as new files; choose another --to"
            )
    return dest


def _existing_state(config: Config, stack: ExitStack) -> StateStore | None:
    """The configured state DB, locked, if it exists; None (and no lock) otherwise."""
    db = config.sync.state_db
    if not db.exists():
        return None
    stack.enter_context(StateLock(db))
    return stack.enter_context(StateStore(db))


@contextmanager
def _remote(config: Config, policy: RetryPolicy | None) -> Iterator[UploadApiRemote]:
    from syncd.log import add_secret

    remote = UploadApiRemote(
        config.remote, workers=config.sync.workers, policy=policy, on_secret=add_secret
    )
    try:
        yield remote
    finally:
        remote.close()


# -- output --------------------------------------------------------------------------------
def _result_json(r: RestoreResult) -> dict[str, Any]:
    return {
        "pair": r.pair,
        "remote_path": r.remote_path,
        "to": str(r.to),
        "dry_run": r.dry_run,
        "restored": r.restored,
        "already_present": r.present,
        "bytes": r.bytes,
        "folders": r.folders,
        "empty_files": r.empty,
        "verified": {"md5": r.verified_md5, "size": r.verified_size},
        "not_restored": [{"path": p, "reason": why} for p, why in r.not_restored],
        "not_in_backup": [{"path": p, "reason": why} for p, why in r.not_in_backup],
        "planned": [{"action": a, "path": p} for a, p in r.planned],
        "notes": r.notes,
        "error": r.error,
    }


def _print_summary(results: Sequence[RestoreResult]) -> None:
    def say(text: str) -> None:
        click.echo(text)

    for r in results:
        what = f"pair {r.pair}" if r.pair else f"remote folder {r.remote_path or '/'}"
        for note in r.notes:
            say(f"{what}: note: {note}")
        if r.error and not (r.restored or r.present or r.not_restored):
            say(f"{what}: error: {r.error}")
            continue
        if r.dry_run:
            for action, path in r.planned:
                say(f"{action} {path}")
            say(f"{what}: dry run, {len(r.planned)} action(s) into {r.to}; nothing downloaded")
        else:
            say(
                f"{what} -> {r.to}: {r.restored} restored ({r.bytes} bytes), "
                f"{r.present} already present, {r.folders} folders; checked by MD5: "
                f"{r.verified_md5}, by size only: {r.verified_size}"
                + (f"; {r.empty} empty files recreated" if r.empty else "")
            )
        if r.not_in_backup:
            say(
                f"{what}: {len(r.not_in_backup)} file(s) were skipped by rule when syncing "
                "(ignored, symlinks, special files) and are not in the backup"
            )
        for path, why in r.not_restored[:SHOWN]:
            say(f"  not restored: {path}: {why}")
        if len(r.not_restored) > SHOWN:
            say(f"  … and {len(r.not_restored) - SHOWN} more (see --json)")
        if r.error:
            say(f"{what}: error: {r.error}")
        if r.not_restored:
            say(f"{what}: {len(r.not_restored)} file(s) not restored")
