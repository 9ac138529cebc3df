"""What the one-shot commands do: open the state and the remote, run, print, exit code.

``cli.py`` parses options and calls one function here; these functions hold the small
amount of glue (session lifetime, pair selection, output) shared by the commands.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import click

from syncd.config import Config, PairConfig
from syncd.errors import ConfigError
from syncd.lock import StateLock
from syncd.state import StateStore

if TYPE_CHECKING:
    from syncd.remote.uploadapi.remote import UploadApiRemote


@dataclass
class Session:
    config: Config
    state: StateStore
    remote: UploadApiRemote


class LazyRemote:
    """Stands in for an ``UploadApiRemote`` that is built on first use.

    A pass with nothing to do sends no request (SPEC §4); with this it does not even
    import the HTTP stack (httpx, ssl, the retry policy) or load the CA bundle: about a
    third of the start-up time of a no-op ``syncd sync``."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._remote: UploadApiRemote | None = None

    def built(self) -> UploadApiRemote:
        if self._remote is None:
            from syncd.log import add_secret
            from syncd.remote.uploadapi.remote import UploadApiRemote

            self._remote = UploadApiRemote(
                self._config.remote,
                workers=self._config.sync.workers,
                bwlimit=self._config.sync.bwlimit,
                on_secret=add_secret,
            )
        return self._remote

    def __getattr__(self, name: str) -> Any:
        return getattr(self.built(), name)

    def close(self) -> None:
        if self._remote is not None:
            self._remote.close()


@contextmanager
def open_session(config: Config, *, lock: bool = True) -> Iterator[Session]:
    """State lock + state DB + a lazily-authorizing remote; the token is disabled at exit."""
    db = config.sync.state_db
    state_lock = StateLock(db) if lock else None
    if state_lock is not None:
        state_lock.acquire()
    try:
        state = StateStore(db)
        try:
            remote = LazyRemote(config)
            try:
                yield Session(config, state, cast("UploadApiRemote", remote))
            finally:
                remote.close()
        finally:
            state.close()
    finally:
        if state_lock is not None:
            state_lock.release()


def select_pairs(config: Config, names: Sequence[str]) -> list[PairConfig]:
    if not names:
        return list(config.pairs)
    known = {p.name for p in config.pairs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.UsageError(
            f"unknown pair {unknown[0]!r} (configured: {', '.join(sorted(known))})"
        )
    return [p for p in config.pairs if p.name in names]


def print_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def worst_exit(codes: Sequence[int]) -> int:
    """77 and 75 (the run could not proceed) outrank 1 (some files failed)."""
    for code in (77, 78, 75, 1):
        if code in codes:
            return code
    return 0


# -- check ---------------------------------------------------------------------------------
def run_check(config: Config) -> None:
    problems: list[str] = []
    for pair in config.pairs:
        if not pair.local.is_dir():
            problems.append(f"[[pair]] {pair.name} local: {pair.local} is not a directory")
        elif not os.access(pair.local, os.R_OK | os.X_OK):
            problems.append(f"[[pair]] {pair.name} local: {pair.local} is not readable")
        else:
            click.echo(f"pair {pair.name}: {pair.local} readable")
    with open_session(config, lock=False) as session:
        session.state.set_meta("checked", "1")
        click.echo(f"state DB {config.sync.state_db}: writable")
        package = session.remote.package()
        limit = package.max_upload_size or "unlimited"
        uploads = package.concurrent_uploads or "not set"
        click.echo(
            f"account package: {package.label} (max upload size {limit}, "
            f"concurrent uploads {uploads})"
        )
    for problem in problems:
        click.echo(f"syncd: problem: {problem}", err=True)
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) found in {config.path}")
    click.echo("ok")


# -- sync ----------------------------------------------------------------------------------
def run_sync(config: Config, names: Sequence[str], *, dry_run: bool, as_json: bool) -> int:
    from syncd.engine import Engine, PassResult
    from syncd.progress import LogReporter, RichReporter

    pairs = select_pairs(config, names)
    results: list[PassResult] = []
    interactive = sys.stderr.isatty() and not as_json and not dry_run
    reporter: Any = RichReporter() if interactive else LogReporter()
    with open_session(config) as session:
        engine = Engine(config, session.state, session.remote, reporter=reporter)
        if interactive:
            reporter.__enter__()
        try:
            for pair in pairs:
                result = engine.sync_pair(pair, dry_run=dry_run)
                results.append(result)
                if result.fatal is not None:
                    break
        finally:
            if interactive:
                reporter.__exit__(None, None, None)
    code = worst_exit([r.exit_code for r in results])
    if as_json:
        print_json({"pairs": [_result_json(r) for r in results], "exit_code": code})
    else:
        _print_summary(results, dry_run=dry_run)
    return code


def _result_json(result: Any) -> dict[str, Any]:
    return {
        "name": result.pair,
        "uploaded": result.uploaded,
        "bytes": result.bytes,
        "unchanged": result.unchanged,
        "folders": result.folders,
        "trashed": result.trashed,
        "failed": [{"path": p, "error": e} for p, e in result.failed],
        "pending": [{"path": p, "error": e} for p, e in result.pending],
        "planned": [{"action": a, "path": p} for a, p in result.planned],
        "error": result.error,
    }


_SUMMARY_COLUMNS = ("pair", "uploaded", "bytes", "unchanged", "folders", "trashed", "failed",
                    "pending")  # fmt: skip


def _summary_rows(results: Sequence[Any]) -> list[tuple[str, ...]]:
    return [
        (r.pair, str(r.uploaded), str(r.bytes), str(r.unchanged), str(r.folders),
         str(r.trashed), str(len(r.failed)), str(len(r.pending)))
        for r in results
    ]  # fmt: skip


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``): a file named ``a<LF>b`` must
    not split its one line of output in two, nor forge a second line."""
    return _CONTROL.sub(lambda m: repr(m[0])[1:-1], text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _problem_lines(results: Sequence[Any]) -> list[str]:
    lines: list[str] = []
    for r in results:
        lines += [
            f"  {r.pair}/{printable(path)}: {printable(error)}"
            for path, error in [*r.failed, *r.pending][:50]
        ]
        if r.error:
            lines.append(f"  {r.pair}: {printable(r.error)}")
    return lines


def _print_plain_summary(results: Sequence[Any], *, dry_run: bool) -> None:
    """The summary as plain aligned text: for logs, mail from cron, pipes. It spares a
    non-interactive ``syncd sync`` the import of rich (~50 ms of a no-op pass)."""
    lines: list[str] = []
    if dry_run:
        for result in results:
            lines += [f"{result.pair}: {action} {printable(p)}" for action, p in result.planned]
            if not result.planned:
                lines.append(f"{result.pair}: nothing to do")
    else:
        rows = [_SUMMARY_COLUMNS, *_summary_rows(results)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_SUMMARY_COLUMNS))]
        lines.append("syncd sync")
        for pair, *counts in rows:
            cells = [pair.ljust(widths[0])]
            cells += [c.rjust(w) for c, w in zip(counts, widths[1:], strict=True)]
            lines.append("  ".join(cells).rstrip())
        lines += _problem_lines(results)
    sys.stdout.write("".join(f"{line}\n" for line in lines))


def _print_summary(results: Sequence[Any], *, dry_run: bool) -> None:
    if not sys.stdout.isatty():
        _print_plain_summary(results, dry_run=dry_run)
        return
    from rich.console import Console
    from rich.table import Table

    # soft_wrap: a problem stays on one line (off a TTY rich would wrap it at 80 columns).
    console = Console(soft_wrap=True)
    if dry_run:
        for result in results:
            for action, path in result.planned:
                console.print(
                    f"{result.pair}: {action} {printable(path)}", markup=False, highlight=False
                )
            if not result.planned:
                console.print(f"{result.pair}: nothing to do", markup=False)
        return
    table = Table(title="syncd sync")
    for column in _SUMMARY_COLUMNS:
        table.add_column(column, justify="left" if column == "pair" else "right")
    for row in _summary_rows(results):
        table.add_row(*row)
    console.print(table)
    for line in _problem_lines(results):
        console.print(line, markup=False, highlight=False)


# -- status / ls ---------------------------------------------------------------------------
def run_status(config: Config, *, as_json: bool) -> None:
    from syncd.lock import read_holder

    pid = read_holder(config.sync.state_db)
    state = StateStore(config.sync.state_db)
    try:
        pairs: list[dict[str, Any]] = []
        for pair in config.pairs:
            counts = state.counts(pair.name)
            info = state.pair_info(pair.name) or {}
            pairs.append(
                {
                    "name": pair.name,
                    "local": str(pair.local),
                    "remote_path": pair.remote_path,
                    "files": {
                        k: counts.get(k, 0) for k in ("synced", "pending", "failed", "skipped")
                    },
                    "bytes_synced": counts.get("bytes_synced", 0),
                    "last_pass": info.get("last_pass"),
                    "last_error": info.get("last_error"),
                }
            )
        queue = state.get_meta("daemon:queue")
    finally:
        state.close()
    document = {"daemon": {"running": pid is not None, "pid": pid}, "pairs": pairs}
    if as_json:
        print_json(document)
        return
    daemon = f"running (pid {pid or '?'}, queue {queue or 0})" if pid is not None else "not running"
    click.echo(f"daemon: {daemon}")
    for p in pairs:
        f: dict[str, int] = p["files"]
        click.echo(
            f"{p['name']}: {f['synced']} synced, {f['pending']} pending, {f['failed']} "
            f"failed, {f['skipped']} skipped; {p['bytes_synced']} bytes; last pass "
            f"{p['last_pass'] or 'never'}"
            + (f"; last error: {p['last_error']}" if p["last_error"] else "")
        )


def run_ls(config: Config, names: Sequence[str], *, failed: bool, as_json: bool) -> None:
    rows: list[dict[str, Any]] = []
    state = StateStore(config.sync.state_db)
    try:
        for pair in select_pairs(config, names):
            for rec in state.iter_files(pair.name, state="failed" if failed else None):
                rows.append(
                    {
                        "pair": rec.pair,
                        "path": rec.path,
                        "size": rec.size,
                        "md5": rec.md5,
                        "file_id": rec.file_id,
                        "folder_id": rec.folder_id or None,
                        "url": rec.url,
                        "state": str(rec.state),
                        "error": rec.error,
                        "verified": rec.verified,
                        "deleted": rec.deleted_at is not None,
                    }
                )
    finally:
        state.close()
    if as_json:
        print_json(rows)
        return
    for row in rows:
        extra = f"  ({printable(row['error'])})" if row["error"] else ""
        gone = " [deleted locally]" if row["deleted"] else ""
        click.echo(
            f"{row['state']:8} {row['pair']}/{printable(row['path'])} -> {row['file_id'] or '-'} "
            f"{row['url'] or ''}{gone}{extra}"
        )


# -- verify / logout ------------------------------------------------------------------------
def run_verify(
    config: Config, names: Sequence[str], *, repair: bool, deep: bool, as_json: bool
) -> int:
    from syncd.verify import verify_pair

    problems: list[dict[str, str]] = []
    checked = 0
    with open_session(config) as session:
        for pair in select_pairs(config, names):
            report = verify_pair(session.state, session.remote, pair, deep=deep, repair=repair)
            checked += report.checked
            problems += [
                {"pair": pair.name, "path": p, "problem": why} for p, why in report.problems
            ]
    if as_json:
        print_json({"checked": checked, "problems": problems, "repaired": repair})
    else:
        for item in problems:
            click.echo(f"{item['pair']}/{item['path']}: {item['problem']}")
        tail = " (queued for re-upload: run syncd sync)" if repair and problems else ""
        click.echo(f"verified {checked} files: {len(problems)} problem(s){tail}")
    return 1 if problems else 0


def run_logout(config: Config) -> None:
    with open_session(config, lock=False) as session:
        session.remote.authorize()
    click.echo("access token disabled")
