"""``syncd adopt``: rebuild a lost state DB from the remote tree and the local files.

For each pair: resolve its remote root (``remote_folder_id`` or ``remote_path``, by
listing; nothing is ever created), then walk the remote tree and the local tree side by
side, one directory at a time (``remote_walk.walk`` + ``scan.scan_dir``, the very scanner
``sync`` uses, so the recorded stat is the one the next pass compares with):

    remote folder + local directory of the same path  -> folder record (no duplicate mkdir)
    remote file + local file, same path and size       -> record "synced", verified "size",
                                                          md5 None (no API returns it), the
                                                          local file's current stat
    remote file + local file of another size            -> record "pending" naming the remote
                                                          copy: the next sync uploads the
                                                          local file and trashes that copy
    remote file or folder with no local counterpart     -> left alone, reported
    same-name remote files in one folder                -> one adopted (the first by id of
                                                          the right size), others reported

Records that already exist are kept (they know more: an MD5). The pair root record and
the ``target:<pair>`` meta key are written exactly as ``Engine`` writes them, otherwise the
next pass would think the pair's target changed and drop every record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from syncd.commands import open_session, print_json, select_pairs, worst_exit
from syncd.config import Config, PairConfig
from syncd.errors import (
    ApiError,
    AuthRefused,
    RemoteUnavailable,
    SyncdError,
    WrongPath,
    result_exit_code,
)
from syncd.lock import state_files
from syncd.log import get_logger
from syncd.model import (
    FileRecord,
    FileState,
    FolderRecord,
    Kind,
    LocalEntry,
    join,
    target_key,
    target_value,
)
from syncd.paths import IgnoreRules
from syncd.remote.base import Remote, RemoteFile
from syncd.remote_walk import FolderNotFound, WalkedDir, resolve_folder, walk
from syncd.scan import scan_dir
from syncd.state import StateStore

log = get_logger("syncd.adopt")
SHOWN = 50


@dataclass
class AdoptReport:
    pair: str
    root_id: str | None = None
    files: int = 0  # adopted as synced (size-verified)
    bytes: int = 0
    folders: int = 0  # folder records written
    kept: int = 0  # records that already existed, left as they were
    to_replace: list[str] = field(default_factory=list)  # size differs: re-uploaded next sync
    to_upload: int = 0  # local files with no remote copy: uploaded next sync
    remote_only: list[tuple[str, str]] = field(default_factory=list)  # left alone
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # not adopted
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    fatal: SyncdError | None = None

    @property
    def exit_code(self) -> int:
        return result_exit_code(self.fatal, failed=bool(self.error))


def run_adopt(config: Config, pairs: tuple[str, ...], *, as_json: bool) -> int:
    """The ``adopt`` command; returns the exit code."""
    selected = select_pairs(config, pairs)
    reports: list[AdoptReport] = []
    with open_session(config) as session:
        for pair in selected:
            report = adopt_pair(config, session.state, session.remote, pair)
            reports.append(report)
            if report.fatal is not None:
                break
    code = worst_exit([r.exit_code for r in reports])
    if as_json:
        print_json({"pairs": [_report_json(r) for r in reports], "exit_code": code})
    else:
        _print_summary(reports)
    return code


def adopt_pair(config: Config, state: StateStore, remote: Remote, pair: PairConfig) -> AdoptReport:
    """Adopt one pair's remote tree; never sends a write request."""
    report = AdoptReport(pair.name)
    if not pair.local.is_dir():
        report.error = f"local root {pair.local} is missing or not a directory"
        return report
    try:
        root_id = _resolve_root(state, remote, pair, report)
        if root_id is None:
            return report
        report.root_id = root_id
        _adopt_tree(config, state, remote, pair, root_id, report)
    except (RemoteUnavailable, AuthRefused, WrongPath) as exc:
        report.fatal, report.error = exc, str(exc)
    except ApiError as exc:
        report.error = str(exc)
    log.info(
        "adopt finished", pair=pair.name, files=report.files, folders=report.folders,
        bytes=report.bytes, error=report.error,
    )  # fmt: skip
    return report


def _resolve_root(
    state: StateStore, remote: Remote, pair: PairConfig, report: AdoptReport
) -> str | None:
    key, target = target_key(pair), target_value(pair)
    known = state.get_meta(key)
    if known is not None and known != target:
        report.notes.append(f"records of the old target {known} dropped (as sync would)")
        state.forget_tree(pair.name, "")
    recorded = state.folder(pair.name, "") if known == target else None
    prefer = {recorded.folder_id} if recorded and recorded.folder_id is not None else set()
    where = f"remote_folder_id {pair.remote_folder_id}" if pair.remote_folder_id else (
        f"remote_path {pair.remote_path!r}"
    )  # fmt: skip
    try:
        if pair.remote_folder_id:
            resolved = resolve_folder(remote, f"id:{pair.remote_folder_id}")
        else:
            avoid = state.trashed_folder_ids(pair.name)
            resolved = resolve_folder(remote, pair.remote_path, avoid=avoid, prefer=prefer)
    except FolderNotFound as exc:
        report.error = f"{where}: {exc}; nothing to adopt (the next sync uploads everything)"
        return None
    report.notes += resolved.notes
    with state.transaction():
        state.set_meta(key, target)
        if recorded is None or recorded.folder_id != resolved.folder_id:
            state.put_folder(FolderRecord(pair.name, "", resolved.folder_id))
    return resolved.folder_id


def _adopt_tree(
    config: Config,
    state: StateStore,
    remote: Remote,
    pair: PairConfig,
    root_id: str,
    report: AdoptReport,
) -> None:
    sync = config.sync
    rules = IgnoreRules.load(pair.local, sync.ignore).with_excluded(state_files(sync.state_db))
    matched_dirs: set[str] = set()
    avoid = state.trashed_folder_ids(pair.name)
    for d in walk(remote, root_id, avoid=avoid, descend=matched_dirs.__contains__):
        if d.cycle:
            report.notes.append(f"remote folder {d.folder_id} seen twice: skipped")
            continue
        scan = scan_dir(pair.local, d.path, rules, follow_symlinks=sync.follow_symlinks)
        if scan.error is not None:
            report.error = f"{d.path or '.'}: {scan.error}"
            continue
        local = {e.name: e for e in scan.entries}
        with state.transaction():
            _adopt_folders(state, pair.name, d, local, matched_dirs, report)
            _adopt_files(state, pair.name, d, local, report)


def _adopt_folders(
    state: StateStore,
    pair: str,
    d: WalkedDir,
    local: dict[str, LocalEntry],
    matched: set[str],
    report: AdoptReport,
) -> None:
    records = {f.path: f for f in state.folders_in(pair, d.path)}
    for folder in d.folders:
        path = join(d.path, folder.name)
        entry = local.get(folder.name)
        if entry is None or entry.kind is not Kind.DIR:
            report.remote_only.append((path + "/", "no local directory"))
            continue
        matched.add(path)
        rec = records.get(path)
        if rec is not None and rec.state == "active" and rec.folder_id == folder.folder_id:
            continue
        if rec is not None and rec.state == "active":
            report.kept += 1  # sync's own record wins
            matched.discard(path)
            continue
        state.put_folder(FolderRecord(pair, path, folder.folder_id))
        report.folders += 1
    for dup in d.duplicate_folders:
        report.duplicates.append(
            (join(d.path, dup.name) + "/", f"another folder of this name was adopted; "
             f"id {dup.folder_id} left alone")
        )  # fmt: skip


def _adopt_files(
    state: StateStore, pair: str, d: WalkedDir, local: dict[str, LocalEntry], report: AdoptReport
) -> None:
    records = {r.name: r for r in state.files_in(pair, d.path)}
    for name, copies in d.files.items():
        path = join(d.path, name)
        entry = local.get(name)
        if name in records:
            report.kept += 1
            continue
        if entry is None:
            report.remote_only.append((path, "no local file"))
            continue
        if entry.kind is not Kind.FILE:
            why = entry.reason or f"local {entry.kind.value}"
            report.remote_only.append((path, f"local entry not uploadable ({why})"))
            continue
        same = [c for c in copies if c.size == entry.size]
        chosen: RemoteFile = same[0] if same else copies[0]
        rec = FileRecord(
            pair,
            path,
            file_id=chosen.file_id,
            folder_id=d.folder_id,
            remote_name=chosen.name,
            url=chosen.url,
            short_url=chosen.short_url,
        )
        if same:
            rec.size, rec.mtime_ns, rec.inode = entry.size, entry.mtime_ns, entry.inode
            rec.state, rec.verified = FileState.SYNCED, "size"
            report.files += 1
            report.bytes += entry.size
        else:  # the remote copy is an older version: size of the copy, so restore checks it
            rec.size, rec.state = chosen.size, FileState.PENDING
            rec.error = f"adopt: local size {entry.size} != remote size {chosen.size}"
            report.to_replace.append(path)
        state.put_file(rec)
        for other in copies:
            if other is not chosen:
                report.duplicates.append(
                    (path, f"duplicate remote copy id {other.file_id} ({other.size} bytes) "
                     "left alone")
                )  # fmt: skip
    for name, entry in local.items():
        if entry.kind is Kind.FILE and name not in d.files and name not in records:
            report.to_upload += 1


# -- output --------------------------------------------------------------------------------
def _report_json(r: AdoptReport) -> dict[str, Any]:
    return {
        "name": r.pair,
        "root_folder_id": r.root_id,
        "adopted": r.files,
        "bytes": r.bytes,
        "folders": r.folders,
        "kept": r.kept,
        "to_replace": r.to_replace,
        "to_upload": r.to_upload,
        "remote_only": [{"path": p, "reason": why} for p, why in r.remote_only],
        "duplicates": [{"path": p, "reason": why} for p, why in r.duplicates],
        "notes": r.notes,
        "error": r.error,
    }


def _print_summary(reports: list[AdoptReport]) -> None:
    for r in reports:
        for note in r.notes:
            click.echo(f"pair {r.pair}: note: {note}")
        if r.error:
            click.echo(f"pair {r.pair}: error: {r.error}")
        if r.root_id is None:
            continue
        click.echo(
            f"pair {r.pair}: adopted {r.files} files ({r.bytes} bytes, size-verified) and "
            f"{r.folders} folders; {r.kept} existing records kept; next sync: "
            f"{r.to_upload} new uploads, {len(r.to_replace)} replaced (size differs)"
        )
        for path, why in [*r.remote_only, *r.duplicates][:SHOWN]:
            click.echo(f"  left alone on the remote: {path}: {why}")
        more = len(r.remote_only) + len(r.duplicates) - SHOWN
        if more > 0:
            click.echo(f"  … and {more} more (see --json)")
