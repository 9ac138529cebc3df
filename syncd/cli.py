"""The ``syncd`` command line: each command is a short adapter over one library call.

Errors end a command with one line on stderr (``syncd: error: …``) and the exit code of
SPEC §6; nothing else prints tracebacks. Heavy modules are imported inside commands so
``syncd sync`` on an unchanged tree starts fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from syncd import __version__
from syncd.errors import SyncdError, exit_code_for

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    def __init__(self, config_path: str | None, verbose: int, quiet: bool, log_format: str | None):
        self.config_path = config_path
        self.verbosity = -1 if quiet else verbose
        self.log_format = log_format

    def setup_logging(self) -> None:
        from syncd.log import configure_logging

        configure_logging(verbosity=self.verbosity, fmt=self.log_format)

    def load(self, *, require_keys: bool = True) -> Any:
        """The config; ``require_keys=False`` for offline commands (status, ls), whose keys
        may only reach the service through systemd credentials."""
        from syncd.config import load_config, resolve_config_path
        from syncd.log import add_secret

        config = load_config(resolve_config_path(self.config_path), require_keys=require_keys)
        for secret in config.secrets():
            add_secret(secret)
        for warning in config.warnings:
            click.echo(f"syncd: warning: {warning}", err=True)
        return config


def handle_errors(fn: F) -> F:
    """Turn syncd's typed errors into one line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SyncdError as exc:
            click.echo(f"syncd: error: {exc}", err=True)
            sys.exit(exit_code_for(exc))
        except KeyboardInterrupt:
            click.echo("syncd: interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


class _Group(click.Group):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "emulator":
            _add_fault_options()
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (else $SYNCD_CONFIG, "
    "else ~/.config/syncd/config.toml, else /etc/syncd/config.toml).",
)
@click.option("-v", "--verbose", count=True, help="More log detail (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default=None,
    help="Log format (default: console on a TTY, JSON lines otherwise).",
)
@click.version_option(__version__, prog_name="syncd")
@click.pass_context
def main(
    ctx: click.Context, config_path: str | None, verbose: int, quiet: bool, log_format: str | None
) -> None:
    """Keep local directory trees mirrored, one way, into a file-hosting account.

    \b
    Example:
      syncd init && $EDITOR ~/.config/syncd/config.toml
      syncd check && syncd sync
    """
    ctx.obj = Context(config_path, verbose, quiet, log_format)
    ctx.obj.setup_logging()


@main.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
@handle_errors
def init(obj: Context, path: Path | None, force: bool) -> None:
    """Write a commented starter config (mode 0600).

    Example: syncd init /etc/syncd/config.toml
    """
    from syncd.config import resolve_config_path, write_starter_config

    target = path or resolve_config_path(obj.config_path)
    write_starter_config(target, force=force)
    click.echo(f"wrote {target}: fill in [remote] and a [[pair]], then run: syncd check")


@main.command()
@click.pass_obj
@handle_errors
def check(obj: Context) -> None:
    """Validate the config, authorize, and check every pair's local root and the state DB.

    Example: syncd --config /etc/syncd/config.toml check
    """
    from syncd.commands import run_check

    run_check(obj.load())


@main.command()
@click.option("--pair", "pairs", multiple=True, metavar="NAME", help="Only this pair (repeatable).")
@click.option(
    "--dry-run", is_flag=True, help="Print the plan; change nothing, send no write request."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_obj
@handle_errors
def sync(obj: Context, pairs: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """One pass: scan, upload what changed, print a summary, exit 0/1/75/77/78.

    Example: syncd sync --pair photos --dry-run
    """
    from syncd.commands import run_sync

    sys.exit(run_sync(obj.load(), pairs, dry_run=dry_run, as_json=as_json))


@main.command()
@click.pass_obj
@handle_errors
def run(obj: Context) -> None:
    """The daemon: a full pass at start, then live watching; stops cleanly on SIGTERM.

    Example: syncd --log-format json run
    """
    from syncd.daemon import run_daemon

    sys.exit(run_daemon(obj.load(), config_loader=obj.load))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_obj
@handle_errors
def status(obj: Context, as_json: bool) -> None:
    """Per pair: files synced / pending / failed / skipped, last pass, daemon (no network).

    Example: syncd status --json
    """
    from syncd.commands import run_status

    run_status(obj.load(require_keys=False), as_json=as_json)


@main.command(name="ls")
@click.option("--pair", "pairs", multiple=True, metavar="NAME", help="Only this pair (repeatable).")
@click.option("--failed", is_flag=True, help="Only failed files.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_obj
@handle_errors
def ls_command(obj: Context, pairs: tuple[str, ...], failed: bool, as_json: bool) -> None:
    """The manifest: local path -> remote file id, url, size, md5, state, error.

    Example: syncd ls --failed
    """
    from syncd.commands import run_ls

    run_ls(obj.load(require_keys=False), pairs, failed=failed, as_json=as_json)


@main.command()
@click.option("--pair", "pairs", multiple=True, metavar="NAME", help="Only this pair (repeatable).")
@click.option("--repair", is_flag=True, help="Queue missing or bad files for re-upload.")
@click.option("--deep", is_flag=True, help="Also download every file and check its MD5.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_obj
@handle_errors
def verify(obj: Context, pairs: tuple[str, ...], repair: bool, deep: bool, as_json: bool) -> None:
    """Ask the remote that every recorded file still exists with the recorded size.

    Example: syncd verify --deep --repair && syncd sync
    """
    from syncd.commands import run_verify

    sys.exit(run_verify(obj.load(), pairs, repair=repair, deep=deep, as_json=as_json))


@main.command()
@click.option("--pair", "pairs", multiple=True, metavar="NAME", help="Only this pair (repeatable).")
@click.option("--to", "to_dir", type=click.Path(path_type=Path), default=None,
              help="Restore into DIR (created if missing; default: ./<pair>-restore-<time>).")
@click.option("--overwrite", is_flag=True, help="Replace existing files whose content differs.")
@click.option("--dry-run", is_flag=True, help="List what would be restored; download nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--from-remote", "from_remote", metavar="REMOTE_PATH", default=None,
              help="Disaster mode: walk this remote folder; needs no state DB.")
@click.argument("paths", nargs=-1)
@click.pass_obj
@handle_errors
def restore(obj: Context, pairs: tuple[str, ...], to_dir: Path | None, overwrite: bool,
            dry_run: bool, as_json: bool, from_remote: str | None, paths: tuple[str, ...]) -> None:
    """Download recorded files back, MD5-checked, never overwriting without --overwrite.

    \b
    Examples:
      syncd restore --pair photos --to /tmp/back 2024/beach.jpg
      syncd restore --from-remote backups/photos --to /srv/photos-restored
    """
    from syncd.restore import run_restore

    sys.exit(run_restore(obj.load(), pairs, to_dir=to_dir, overwrite=overwrite, dry_run=dry_run,
                         as_json=as_json, from_remote=from_remote, paths=paths))


@main.command()
@click.option("--pair", "pairs", multiple=True, metavar="NAME", help="Only this pair (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_obj
@handle_errors
def adopt(obj: Context, pairs: tuple[str, ...], as_json: bool) -> None:
    """Rebuild a lost state DB from the remote tree and the local files (path + size).

    Example: syncd adopt && syncd sync   # re-uploads nothing unchanged
    """
    from syncd.adopt import run_adopt

    sys.exit(run_adopt(obj.load(), pairs, as_json=as_json))


@main.command()
@click.pass_obj
@handle_errors
def logout(obj: Context) -> None:
    """Disable the account's access token on the server.

    Example: syncd logout
    """
    from syncd.commands import run_logout

    run_logout(obj.load())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8089, show_default=True, type=int, help="0 = any free port.")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Keep stored files here (default: a temporary directory).",
)
@handle_errors
def emulator(host: str, port: int, data_dir: Path | None, **faults: Any) -> None:
    """Run the bundled API emulator and print the config snippet that points at it.

    Example: syncd emulator --port 8089 --fail-rate 0.1 --latency 0.03
    """
    from syncd.emulator.main import run_emulator

    run_emulator(host=host, port=port, data_dir=data_dir, **faults)


_fault_options_added = False


def _add_fault_options() -> None:
    """Give ``syncd emulator`` the emulator's fault options, once, when it is looked up.

    They live in the emulator package, whose import (an HTTP server and a store: ~80 ms)
    every other command would otherwise pay at start. A broken emulator must not break
    the CLI."""
    global _fault_options_added
    if _fault_options_added:
        return
    _fault_options_added = True
    try:
        from syncd.emulator.cli_options import add_fault_options
    except ImportError:  # pragma: no cover
        return
    add_fault_options(emulator)  # click appends the options to the command's params


@main.command()
@click.pass_obj
@handle_errors
def demo(obj: Context) -> None:
    """The whole job against a bundled emulator on a free loopback port; no account needed.

    Example: syncd demo
    """
    from syncd.demo import run_demo
    from syncd.log import configure_logging

    if obj.verbosity == 0:  # the tour prints its own story; per-file log lines are noise
        configure_logging(verbosity=-1, fmt=obj.log_format)
    sys.exit(run_demo())
