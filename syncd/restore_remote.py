"""``restore --from-remote``: the remote tree under one folder as the source of jobs.

The folder is resolved and walked with ``folder/listing`` only (``remote_walk``); sizes
come from the listing. When the configured state DB exists it contributes what it knows:
the MD5 and mtime of every file it recorded (matched by path below a folder it recorded,
and by file id), and the folders syncd trashed (listings still show those).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from syncd.config import Config
from syncd.errors import SyncdError
from syncd.model import FileRecord, join
from syncd.progress import Reporter
from syncd.remote.base import Remote
from syncd.remote_walk import FolderNotFound, resolve_folder, safe_name, walk
from syncd.restore_files import FATAL, Job, Restorer, RestoreResult
from syncd.state import StateStore


def restore_remote_folder(
    config: Config,
    state: StateStore | None,
    remote: Remote,
    remote_path: str,
    dest: Path,
    prefixes: Sequence[str] = (),
    *,
    overwrite: bool = False,
    dry_run: bool = False,
    reporter: Reporter | None = None,
) -> RestoreResult:
    """Restore every active file under the remote folder ``remote_path`` into ``dest``."""
    result = RestoreResult(None, remote_path, dest, dry_run=dry_run)
    known = _KnownFolders(state, config)
    restorer = Restorer(
        remote, dest, result, overwrite=overwrite, dry_run=dry_run,
        workers=config.sync.workers, reporter=reporter,
    )  # fmt: skip
    matched: set[str] = set()
    try:
        try:
            root = resolve_folder(remote, remote_path, avoid=known.trashed, prefer=known.ids)
        except FolderNotFound as exc:
            result.error = str(exc)
            return result
        result.notes += root.notes
        if not dry_run:
            make_dest(dest)
        anchor = known.ids.get(root.folder_id)

        def descend(path: str) -> bool:
            return wanted(path, prefixes, is_dir=True)

        for d in walk(remote, root.folder_id, avoid=known.trashed, descend=descend):
            if d.cycle:
                result.notes.append(f"folder {d.folder_id} at {d.path!r} seen twice: skipped")
                continue
            if d.path and wanted(d.path, prefixes):
                restorer.make_dir(d.path)
                matched.update(p for p in prefixes if wanted(d.path, [p]))
            for folder in d.folders:
                if not safe_name(folder.name):
                    result.not_restored.append((join(d.path, folder.name), "unsafe folder name"))
            for dup in d.duplicate_folders:
                path = join(d.path, dup.name)
                if wanted(path, prefixes, is_dir=True):
                    result.not_restored.append(
                        (path + "/", f"another remote folder of this name was used; this one "
                         f"(id {dup.folder_id}) was not restored: --from-remote id:{dup.folder_id}")
                    )  # fmt: skip
            for name, copies in d.files.items():
                path = join(d.path, name)
                if not wanted(path, prefixes):
                    continue
                matched.update(p for p in prefixes if wanted(path, [p]))
                rec = known.record(anchor, path, {c.file_id for c in copies})
                chosen = next((c for c in copies if rec and c.file_id == rec.file_id), copies[0])
                md5 = rec.md5 if rec is not None and rec.size == chosen.size else None
                mtime = rec.mtime_ns if rec is not None else None
                restorer.submit(Job(path, chosen.file_id, chosen.size, md5, mtime))
                for other in copies:
                    if other is not chosen:
                        result.not_restored.append(
                            (path, f"duplicate remote file id {other.file_id}: id "
                             f"{chosen.file_id} was restored at this path")
                        )  # fmt: skip
            if restorer.stopped:
                break
    except FATAL as exc:
        result.fatal = exc
    except BaseException:
        restorer.cancel()  # Ctrl-C or a state DB error: stop, but wait for the workers
        raise
    finally:
        restorer.finish()
    for prefix in prefixes:
        if prefix not in matched and not result.fatal:
            result.not_restored.append((prefix, "no remote file at this path"))
    return result


class _KnownFolders:
    """What an existing state DB knows about remote folders: the ids it recorded (by
    pair and path) and the ones syncd trashed (listings still show those)."""

    def __init__(self, state: StateStore | None, config: Config) -> None:
        self.state = state
        self.ids: dict[str, tuple[str, str]] = {}
        self.trashed: set[str] = set()
        if state is None:
            return
        for pair in sorted({*state.pair_names(), *(p.name for p in config.pairs)}):
            self.trashed |= state.trashed_folder_ids(pair)
            for folder in state.iter_folders(pair):
                if folder.folder_id is not None and folder.state != "failed":
                    self.ids.setdefault(folder.folder_id, (pair, folder.path))

    def record(
        self, anchor: tuple[str, str] | None, path: str, file_ids: set[str]
    ) -> FileRecord | None:
        """The state record of the file at ``path`` (relative to the walked folder) if it
        names one of ``file_ids``; None otherwise."""
        if self.state is None or anchor is None:
            return None
        pair, base = anchor
        rec = self.state.file(pair, join(base, path))
        return rec if rec is not None and rec.file_id in file_ids else None


def wanted(path: str, prefixes: Sequence[str], *, is_dir: bool = False) -> bool:
    """Is ``path`` under one of ``prefixes`` (or, for a directory, on the way to one)?"""
    if not prefixes:
        return True
    for p in prefixes:
        if path == p or path.startswith(p + "/"):
            return True
        if is_dir and p.startswith(path + "/"):  # on the way to a wanted path
            return True
    return False


def make_dest(dest: Path) -> None:
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SyncdError(f"cannot create {dest}: {exc.strerror or exc}") from exc
    if not dest.is_dir():
        raise SyncdError(f"{dest} is not a directory")
