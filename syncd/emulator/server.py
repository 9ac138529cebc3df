"""``EmulatorServer``: the emulator running in a background thread of the caller.

Tests, ``syncd demo`` and the benchmarks all start it in-process on a free loopback port
and talk to it over real HTTP. ``stop()`` is prompt and leaves nothing behind: it closes
the listening socket, shuts down every open keep-alive connection (so no handler thread
lingers, no socket leaks a ResourceWarning) and closes the store's journal.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import traceback
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from syncd.emulator import views
from syncd.emulator.app import App
from syncd.emulator.handlers import Handler
from syncd.emulator.options import EmulatorOptions, Faults
from syncd.emulator.store import Store

_QUIET = (ConnectionError, TimeoutError, BrokenPipeError)


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # bursts of parallel clients (benchmarks) must not be refused

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._conns: set[socket.socket] = set()
        self._conn_threads: set[threading.Thread] = set()
        self._conn_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            daemon=True,
            name=f"emulator-conn-{client_address[1]}",
        )
        with self._conn_lock:
            self._conns.add(request)
            self._conn_threads.add(thread)
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._conns.discard(request)
                self._conn_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], _QUIET):
            self.app.report_error(traceback.format_exc())

    def close_connections(self, timeout: float = 5.0) -> None:
        with self._conn_lock:
            conns, threads = list(self._conns), list(self._conn_threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout)


class EmulatorServer:
    """A YetiShare-like site on loopback. ``start()`` returns self; also a context manager."""

    def __init__(self, options: EmulatorOptions | None = None, **overrides: Any) -> None:
        if options is None:
            if "data_dir" not in overrides:
                raise TypeError("EmulatorServer needs options or data_dir=")
            options = EmulatorOptions(**overrides)
        elif overrides:
            raise TypeError("pass either options or keyword overrides, not both")
        self.options = options
        prefix_word = options.prefix.strip("/").split("/")[0]
        self.store = Store(
            Path(options.data_dir),
            key1=options.key1,
            key2=options.key2,
            token_ttl=options.token_ttl,
            clock=options.clock,
            persist=options.persist,
            reserved_shorts=frozenset({prefix_word, "folder"}),
        )
        self.app = App(options, self.store)
        self._httpd: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> Self:
        if self._httpd is not None:
            return self
        httpd = EmulatorHTTPServer((self.options.host, self.options.port), self.app)
        self._httpd = httpd
        port = httpd.server_address[1]
        host = self.options.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "[::1]"
        elif ":" in host:
            host = f"[{host}]"
        self.app.base_url = f"http://{host}:{port}/"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="emulator-accept",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.close_connections()
            if self._thread is not None:
                self._thread.join(5.0)
        self.store.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests and the CLI look at -------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("emulator not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The site, e.g. ``http://127.0.0.1:PORT/``."""
        return self.app.base_url

    @property
    def api_url(self) -> str:
        """The API base, e.g. ``http://127.0.0.1:PORT/api/v2/``."""
        return self.app.base_url.rstrip("/") + self.options.prefix

    @property
    def key1(self) -> str:
        return self.options.key1

    @property
    def key2(self) -> str:
        return self.options.key2

    @property
    def account_id(self) -> str:
        return str(self.store.main_user_id)

    @property
    def faults(self) -> Faults:
        """Mutable while running: ``srv.faults.fail_rate = 0.3``."""
        return self.app.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.app.faults = value

    @property
    def requests(self) -> list[tuple[str, str]]:
        """A snapshot of (method, endpoint) per API request, e.g. ("POST", "file/upload");
        download GETs appear as ("GET", "download")."""
        return self.app.requests()

    def clear_requests(self) -> None:
        """Empty ``requests`` and restart ``peak_concurrent_uploads`` from now."""
        self.app.clear_requests()

    @property
    def peak_concurrent_uploads(self) -> int:
        """The most file/upload requests in progress at once (to check a client's cap)."""
        return self.app.peak_uploads

    @property
    def errors(self) -> list[str]:
        """Tracebacks of requests the emulator itself failed on (should stay empty)."""
        return list(self.app.errors)

    def tree(self) -> dict[str, list[dict[str, Any]]]:
        """Same JSON as ``GET /_emulator/tree``."""
        return views.tree(self.store)
