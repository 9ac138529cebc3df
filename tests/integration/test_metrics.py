"""Prometheus metrics: scraped over real HTTP; off means no import at all."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import pytest

from syncd.metrics import Metrics, NullMetrics, metrics_for, parse_addr


def scrape(host: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        body: bytes = response.read()
    return body.decode()


def test_metrics_are_scraped_over_http() -> None:
    metrics = Metrics()
    host, port = metrics.serve("127.0.0.1:0")
    try:
        metrics.file_uploaded(1000)
        metrics.file_uploaded(24)
        metrics.set_pending(7)
        metrics.set_failed(2)
        metrics.retry("timeout")
        metrics.retry("timeout")
        metrics.retry("429")
        metrics.observe_request("file/upload", 0.3)
        with metrics.time_request("folder/listing"):
            pass
        metrics.pass_succeeded(1_700_000_000.0)
        text = scrape(host, port)
    finally:
        metrics.close()
    for line in [
        "syncd_files_uploaded_total 2.0",
        "syncd_bytes_uploaded_total 1024.0",
        "syncd_files_pending 7.0",
        "syncd_files_failed 2.0",
        'syncd_retries_total{cause="timeout"} 2.0',
        'syncd_retries_total{cause="429"} 1.0',
        'syncd_request_seconds_count{endpoint="file/upload"} 1.0',
        'syncd_request_seconds_bucket{endpoint="file/upload",le="0.5"} 1.0',
        'syncd_request_seconds_count{endpoint="folder/listing"} 1.0',
        "syncd_last_successful_pass_timestamp_seconds 1.7e+09",
    ]:
        assert line in text.splitlines(), line
    assert "process_resident_memory_bytes" in text


def test_metrics_for_empty_address_is_a_no_op_and_serving_works() -> None:
    null = metrics_for("")
    assert isinstance(null, NullMetrics)
    null.file_uploaded(1)
    with null.time_request("file/upload"):
        pass
    null.close()
    served = metrics_for("127.0.0.1:0")
    try:
        assert isinstance(served, Metrics)
    finally:
        served.close()


def test_prometheus_client_is_not_imported_when_metrics_are_off() -> None:
    code = (
        "import sys, syncd.metrics as m; m.metrics_for('').retry('x'); "
        "sys.exit('prometheus_client' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_address_parsing() -> None:
    assert parse_addr("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_addr("[::1]:9464") == ("::1", 9464)
    assert parse_addr(":9464") == ("0.0.0.0", 9464)
    for bad in ("9464", "host:", "host:port", "h:70000"):
        with pytest.raises(ValueError):
            parse_addr(bad)
