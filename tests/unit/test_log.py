"""Logging: one JSON object per line with the fixed keys, and no secret ever printed."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from syncd import log as log_mod
from syncd.log import add_secret, configure_logging, get_logger, redact


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back after each test."""
    root = logging.getLogger()
    level = root.level
    yield
    if log_mod._handler is not None:
        root.removeHandler(log_mod._handler)
        log_mod._handler = None
    root.setLevel(level)
    for name in log_mod.NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    structlog.reset_defaults()


@pytest.fixture
def secret() -> str:
    value = f"s3cret-{uuid.uuid4().hex}"  # unique: the registry is process-wide
    add_secret(value)
    return value


def capture(fmt: str | None = "json", verbosity: int = 0) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(verbosity=verbosity, fmt=fmt, stream=stream)
    return stream


def events(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_one_object_per_line_with_fixed_keys() -> None:
    out = capture()
    log = get_logger("syncd.test")
    log.info("uploaded", pair="photos", path="a/b.jpg", file_id="17", bytes=1234, attempt=1)
    log.warning("upload failed", pair="photos", path="c.jpg", error="HTTP 502", attempt=2)
    first, second = events(out)
    assert first["event"] == "uploaded" and first["level"] == "info"
    assert {k: first[k] for k in ("pair", "path", "file_id", "bytes", "attempt")} == {
        "pair": "photos",
        "path": "a/b.jpg",
        "file_id": "17",
        "bytes": 1234,
        "attempt": 1,
    }
    assert (second["level"], second["error"]) == ("warning", "HTTP 502")
    assert list(first)[:3] == ["timestamp", "level", "event"]
    stamp = datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
    assert first["timestamp"].endswith("Z") and stamp.utcoffset() is not None


def test_traceback_stays_on_one_json_line() -> None:
    out = capture()
    try:
        raise ValueError("boom")
    except ValueError:
        get_logger("syncd.test").exception("pass failed", pair="p")
    (event,) = events(out)
    assert "Traceback" in event["exception"] and "ValueError: boom" in event["exception"]


def test_registered_secret_is_redacted_everywhere(secret: str) -> None:
    out = capture()
    log = get_logger("syncd.test")
    log.info("plain", path=f"x/{secret}/y")
    log.info("nested", detail={"a": [1, {"b": f"pre {secret} post"}]}, items=(secret,))
    log.info(f"in the message {secret}")
    log.warning("exception value", error=RuntimeError(f"bad {secret}"))
    try:
        raise RuntimeError(f"while sending {secret}")
    except RuntimeError:
        log.exception("traceback")
    text = out.getvalue()
    assert secret not in text
    plain, nested, message, error, traceback = events(out)
    assert plain["path"] == "x/***/y"
    assert nested["detail"] == {"a": [1, {"b": "pre *** post"}]} and nested["items"] == ["***"]
    assert message["event"] == "in the message ***"
    assert error["error"] == "bad ***"
    assert "RuntimeError: while sending ***" in traceback["exception"]


def test_secret_in_a_local_variable_of_a_traceback_is_not_printed(secret: str) -> None:
    """Console mode must not use rich's tracebacks, which print local variables."""
    out = capture(fmt="console")

    def send(token: str) -> None:
        raise ConnectionError("reset")

    try:
        send(secret)
    except ConnectionError:
        get_logger("syncd.test").exception("request failed")
    assert "ConnectionError: reset" in out.getvalue() and secret not in out.getvalue()


def test_stdlib_loggers_are_redacted_too(secret: str) -> None:
    out = capture()
    logging.getLogger("httpx").warning("POST https://h/api?token=%s failed", secret)
    logging.getLogger("some.lib").error("oops %s", secret)
    httpx_event, lib_event = events(out)
    assert httpx_event["event"] == "POST https://h/api?token=*** failed"
    assert (httpx_event["logger"], httpx_event["level"]) == ("httpx", "warning")
    assert lib_event["event"] == "oops ***"


def test_url_encoded_form_is_redacted() -> None:
    add_secret("pass word/é&x")
    assert redact("u?access_password=pass%20word%2F%C3%A9%26x") == "u?access_password=***"
    assert redact("pass word/é&x") == "***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /f?access_token=" + "A" * 128 + "&x=1", "GET /f?access_token=***&x=1"),
        ("form key1=abc&key2=def", "form key1=***&key2=***"),
        (
            """{'key1': 'abcdef', "access_token": "tok"}""",
            """{'key1': '***', "access_token": "***"}""",
        ),
        ("token " + "A" * 128, "token " + "A" * 128),  # a bare run is not known to be a token
        (
            "[remote] key1: must be 64 characters (got 32)",
            "[remote] key1: must be 64 characters (got 32)",
        ),
    ],
)
def test_credential_shapes_are_redacted_without_registration(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_values_under_credential_names_are_hidden() -> None:
    out = capture()
    get_logger("syncd.test").info(
        "authorize", fields={"key1": "abc", "key2": 12345}, access_token="zzz"
    )
    (event,) = events(out)
    assert event["fields"] == {"key1": "***", "key2": "***"} and event["access_token"] == "***"


def test_short_secrets_are_ignored() -> None:
    add_secret("")
    add_secret("abc12")
    assert redact("abc12 and more") == "abc12 and more"


def test_add_secret_is_thread_safe() -> None:
    values = [f"thread-secret-{i}-{uuid.uuid4().hex}" for i in range(200)]
    threads = [threading.Thread(target=add_secret, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert redact(" ".join(values)) == " ".join(["***"] * len(values))


def test_console_renderer_when_asked() -> None:
    out = capture(fmt="console")
    get_logger("syncd.test").info("uploaded", pair="photos", bytes=3)
    line = out.getvalue()
    assert line.count("\n") == 1 and not line.startswith("{")
    assert "uploaded" in line and "pair=photos" in line and "bytes=3" in line
    assert "\x1b[" not in line  # no colours when the stream is not a terminal


def test_default_format_is_json_when_not_a_tty() -> None:
    out = capture(fmt=None)
    get_logger("syncd.test").info("scan done")
    assert events(out)[0]["event"] == "scan done"


def test_journal_stream_means_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A TTY gets the console format, unless systemd says that stream is the journal."""

    class FakeTty(io.StringIO):
        def __init__(self, fd: int) -> None:
            super().__init__()
            self.fd = fd

        def isatty(self) -> bool:
            return True

        def fileno(self) -> int:
            return self.fd

    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    with open(tmp_path / "journal", "w") as f:
        st = os.fstat(f.fileno())
        stream = FakeTty(f.fileno())
        configure_logging(stream=stream)
        get_logger("syncd.test").info("on a tty")
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        configure_logging(stream=stream)
        get_logger("syncd.test").info("in the journal")
    first, second = stream.getvalue().splitlines()
    assert not first.startswith("{") and json.loads(second)["event"] == "in the journal"


@pytest.mark.parametrize(
    ("verbosity", "shown"),
    [
        (-1, {"warning"}),
        (0, {"info", "warning"}),
        (1, {"debug", "info", "warning"}),
    ],
)
def test_verbosity_levels(verbosity: int, shown: set[str]) -> None:
    out = capture(verbosity=verbosity)
    log = get_logger("syncd.test")
    log.debug("d")
    log.info("i")
    log.warning("w")
    assert {e["level"] for e in events(out)} == shown


@pytest.mark.parametrize(("verbosity", "shown"), [(0, False), (1, False), (2, True)])
def test_chatty_libraries_only_from_double_verbose(verbosity: int, shown: bool) -> None:
    out = capture(verbosity=verbosity)
    logging.getLogger("httpx").info("HTTP Request: POST ...")
    logging.getLogger("watchdog.observers").debug("event")
    logging.getLogger("httpx").warning("always")
    assert [e["event"] for e in events(out)] == (
        ["HTTP Request: POST ...", "event", "always"] if shown else ["always"]
    )


def test_reconfiguring_replaces_the_handler() -> None:
    first = capture()
    second = capture()
    get_logger("syncd.test").info("once")
    assert first.getvalue() == "" and len(events(second)) == 1


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="console, json"):
        configure_logging(fmt="xml")
