"""Optional Prometheus metrics for ``syncd run`` (``[sync] metrics_addr``, off by default).

``metrics_for(addr)`` returns a ``NullMetrics`` when ``addr`` is "" and a served
``Metrics`` otherwise; both have the same methods, so callers never test for "enabled".
``prometheus_client`` is imported only when metrics are on, so ``syncd sync`` and the
other one-shot commands do not pay for it at start-up.

Exported series (what an operator graphs and alerts on)::

    syncd_files_uploaded_total                       counter
    syncd_bytes_uploaded_total                       counter
    syncd_files_pending                              gauge   (all pairs)
    syncd_files_failed                               gauge   (all pairs)
    syncd_retries_total{cause}                       counter (timeout, connection, 429, 5xx…)
    syncd_request_seconds{endpoint}                  histogram (e.g. endpoint="file/upload")
    syncd_last_successful_pass_timestamp_seconds     gauge   (Unix time; alert on age)
    process_*                                        CPU, RSS, open fds (own registry only)

Alert example: ``time() - syncd_last_successful_pass_timestamp_seconds > 2 * 3600``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry

NAMESPACE = "syncd"
# Upload requests run from milliseconds (small file, loopback) to many minutes (big file,
# slow uplink); the default buckets stop at 10 s.
REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class MetricsSink(Protocol):
    """What the engine and daemon call; implemented by ``Metrics`` and ``NullMetrics``."""

    def file_uploaded(self, nbytes: int) -> None: ...
    def set_pending(self, count: int) -> None: ...
    def set_failed(self, count: int) -> None: ...
    def retry(self, cause: str) -> None: ...
    def observe_request(self, endpoint: str, seconds: float) -> None: ...
    def time_request(self, endpoint: str) -> contextlib.AbstractContextManager[None]: ...
    def pass_succeeded(self, when: float | None = None) -> None: ...
    def close(self) -> None: ...


class NullMetrics:
    """Metrics off: every call does nothing (and prometheus_client is never imported)."""

    def file_uploaded(self, nbytes: int) -> None:
        pass

    def set_pending(self, count: int) -> None:
        pass

    def set_failed(self, count: int) -> None:
        pass

    def retry(self, cause: str) -> None:
        pass

    def observe_request(self, endpoint: str, seconds: float) -> None:
        pass

    def time_request(self, endpoint: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def pass_succeeded(self, when: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass


def parse_addr(addr: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"``, ``"[::1]:9464"``, ``":9464"`` (all interfaces) -> (host, port)."""
    host, sep, port_text = addr.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"metrics address {addr!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port_text)


class Metrics:
    """The real thing, on its own registry (so several instances never collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        import prometheus_client as prom  # lazy: see the module docstring

        if registry is None:
            registry = prom.CollectorRegistry()
            prom.ProcessCollector(registry=registry)
        self.registry: CollectorRegistry = registry
        reg = self.registry
        self._files = prom.Counter(
            "files_uploaded", "Files uploaded and recorded.", namespace=NAMESPACE, registry=reg
        )
        self._bytes = prom.Counter(
            "bytes_uploaded", "Bytes of file content uploaded.", namespace=NAMESPACE, registry=reg
        )
        self._pending = prom.Gauge(
            "files_pending", "Files waiting to be uploaded.", namespace=NAMESPACE, registry=reg
        )
        self._failed = prom.Gauge(
            "files_failed", "Files in the failed state.", namespace=NAMESPACE, registry=reg
        )
        self._retries = prom.Counter(
            "retries", "Requests retried, by cause.", ["cause"], namespace=NAMESPACE, registry=reg
        )
        self._requests = prom.Histogram(
            "request_seconds",
            "API request latency, by endpoint.",
            ["endpoint"],
            namespace=NAMESPACE,
            registry=reg,
            buckets=REQUEST_BUCKETS,
        )
        self._last_pass = prom.Gauge(
            "last_successful_pass_timestamp_seconds",
            "Unix time at which the last pass ended in sync.",
            namespace=NAMESPACE,
            registry=reg,
        )
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def file_uploaded(self, nbytes: int) -> None:
        self._files.inc()
        self._bytes.inc(nbytes)

    def set_pending(self, count: int) -> None:
        self._pending.set(count)

    def set_failed(self, count: int) -> None:
        self._failed.set(count)

    def retry(self, cause: str) -> None:
        self._retries.labels(cause=cause).inc()

    def observe_request(self, endpoint: str, seconds: float) -> None:
        self._requests.labels(endpoint=endpoint).observe(seconds)

    @contextlib.contextmanager
    def time_request(self, endpoint: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.observe_request(endpoint, time.monotonic() - start)

    def pass_succeeded(self, when: float | None = None) -> None:
        self._last_pass.set(time.time() if when is None else when)

    def serve(self, addr: str) -> tuple[str, int]:
        """Start the HTTP exporter on a daemon thread; returns the bound (host, port)
        (port 0 picks a free one). Raises OSError if the address is taken."""
        from prometheus_client import start_http_server

        if self._server is not None:
            raise RuntimeError("metrics exporter already running")
        host, port = parse_addr(addr)
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        bound = self._server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        """Stop the exporter (if serving) and join its thread."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)


def metrics_for(addr: str) -> MetricsSink:
    """``NullMetrics`` for "" (off), else a ``Metrics`` already serving on ``addr``."""
    if not addr:
        return NullMetrics()
    metrics = Metrics()
    metrics.serve(addr)
    return metrics
