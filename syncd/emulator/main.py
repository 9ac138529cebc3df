"""``syncd emulator``: run the emulator in the foreground until SIGINT/SIGTERM.

The command prints a config snippet that points syncd at it, so trying syncd needs no
hosting account: start the emulator in one terminal, paste the snippet, run syncd.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from syncd.emulator.options import EmulatorOptions, Faults
from syncd.emulator.server import EmulatorServer

_LOOPBACK = ("127.", "localhost", "::1", "[::1]")


def banner(srv: EmulatorServer, *, persistent: bool) -> str:
    """What the CLI prints at start: where it listens, its faults, and a config snippet."""
    opts = srv.options
    defaults = Faults()
    faults = (
        ", ".join(f"{k}={v}" for k, v in vars(srv.faults).items() if v != getattr(defaults, k))
        or "none"
    )
    host = srv.base_url.split("//", 1)[1]
    loopback = host.startswith(_LOOPBACK)
    data = (
        f"{opts.data_dir} (kept across restarts)" if persistent else "temporary (deleted on exit)"
    )
    allow = (
        "# allow_http = true  # not needed: plain http is accepted for loopback"
        if loopback
        else "allow_http = true  # plain http to a non-loopback host"
    )
    return "\n".join(
        [
            f'syncd emulator: a YetiShare 4.x "file upload API v2" site at {srv.base_url}',
            f"  data:   {data}",
            f"  faults: {faults}; errors in the {opts.error_style!r} style; "
            f"token idle expiry {opts.token_ttl:g}s",
            f"  account: package {opts.package_label!r}, max upload {opts.max_upload_size} bytes, "
            f"concurrent_uploads {opts.concurrent_uploads}, hash always: "
            f"{'yes' if opts.hash_always else 'no'}",
            f"  stored tree as JSON: {srv.base_url}_emulator/tree",
            "",
            "Paste into your syncd config (e.g. ~/.config/syncd/config.toml):",
            "",
            "[remote]",
            f'api_url = "{srv.api_url}"',
            f'key1 = "{srv.key1}"',
            f'key2 = "{srv.key2}"',
            allow,
            "",
            "Serving; stop with Ctrl+C.",
        ]
    )


def run_emulator(
    host: str,
    port: int,
    data_dir: Path | None = None,
    *,
    out: TextIO | None = None,
    **overrides: Any,
) -> None:
    """Serve until SIGINT/SIGTERM, then stop cleanly (return normally).

    ``overrides`` are ``EmulatorOptions`` fields (the CLI's fault options); ``None``
    values mean "default". Without ``data_dir`` the data lives in a temporary directory.
    Must run in the main thread (it waits for signals).
    """
    out = out or sys.stdout
    settings = {k: v for k, v in overrides.items() if v is not None}
    with _stop_on_signals() as stop, tempfile.TemporaryDirectory(prefix="syncd-emulator-") as tmp:
        root = Path(data_dir) if data_dir is not None else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        options = EmulatorOptions(data_dir=root, host=host, port=port, **settings)
        with EmulatorServer(options) as srv:
            print(banner(srv, persistent=data_dir is not None), file=out, flush=True)
            while not stop.wait(0.5):  # a timeout keeps the main thread responsive to signals
                pass
    print("emulator stopped", file=out, flush=True)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM, installed before anything is announced."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("run_emulator() waits for signals: call it from the main thread")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
