"""Logging: structlog, one event per line on stderr, every secret redacted (SPEC §4).

structlog events and stdlib records (httpx, watchdog, …) all end in ONE handler whose
``ProcessorFormatter`` renders exceptions to text first and then redacts, so a secret
cannot escape through a value, an exception message, a traceback or a library's log line.
stdout stays free for command output and ``--json``.

Usage: ``log = get_logger(__name__)`` then ``log.info("uploaded", pair=..., path=...,
file_id=..., bytes=...)`` — a fixed lowercase message plus keys, never an f-string.

structlog itself is imported on the first line logged, not at start: it brings asyncio
and ssl along (~40 ms and ~10 MB of every start), and a pass with nothing to do logs
nothing. ``get_logger`` hands out stand-ins that load it when first used.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO, cast
from urllib.parse import quote

if TYPE_CHECKING:
    import structlog
    from structlog.typing import EventDict, Processor, WrappedLogger


def _import_structlog_without_rich() -> None:
    """Import structlog while ``rich`` looks absent, unless either is already loaded.

    structlog imports rich and pygments at import time, only to offer its rich exception
    formatter, which syncd never uses (``plain_traceback`` below: rich would print local
    variables - keys - unredacted). That is ~60 ms and ~4 MB of every start, a fifth of
    a no-op ``syncd sync``. rich stays importable for the progress bar and the summary.
    """
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` fail
    try:
        with warnings.catch_warnings():  # structlog warns when it falls back to better-exceptions
            warnings.simplefilter("ignore", DeprecationWarning)
            import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]


REDACTED = "***"
MIN_SECRET_LENGTH = 6  # shorter values would blank out ordinary words all over the logs
FORMATS = ("console", "json")
# Chatty libraries: their INFO lines (one per HTTP request, one per inotify event) only
# appear from -vv on; their warnings always do, redacted like everything else.
NOISY_LOGGERS = ("httpx", "httpcore", "hpack", "watchdog", "urllib3", "asyncio")
_LEAD_KEYS = ("timestamp", "level", "logger", "event")

# Belt and braces for credentials nobody registered: query strings / form bodies
# (access_token=…, key1=…) and JSON or repr'd dicts ("key1": "…").
SECRET_KEYS = frozenset({"access_token", "access_password", "folder_password", "key1", "key2"})
_NAMES = "|".join(sorted(SECRET_KEYS))
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"\b({_NAMES})=[^\s&'\",;)}}\]]+"), rf"\1={REDACTED}"),
    (re.compile(rf"""(["'](?:{_NAMES})["']\s*:\s*["'])[^"']+"""), rf"\1{REDACTED}"),
    (re.compile(r"\b(access_token\W{1,4})[0-9A-Za-z]{128}\b"), rf"\1{REDACTED}"),
)

_lock = threading.Lock()
_secrets: set[str] = set()
# (suspect, secret): ``suspect`` finds any registered secret or credential name - when it
# finds nothing, neither ``secret`` nor a rule can match and redaction is one search (a
# JSON log line holds a dozen strings: this is most of the cost of logging an upload).
# Rebuilt together under _lock, read without it.
_patterns: tuple[re.Pattern[str], re.Pattern[str] | None] = (re.compile(_NAMES), None)
_handler: logging.Handler | None = None
_structlog_lock = threading.Lock()
_structlog_ready = False  # structlog imported and configured by this module


def add_secret(value: str) -> None:
    """Register a value that must never be printed (keys, tokens, folder passwords).

    Its URL-encoded form is registered too, since tokens and passwords travel in URLs.
    Values shorter than MIN_SECRET_LENGTH are ignored. Thread-safe.
    """
    global _patterns
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        new = {value, quote(value, safe="")} - _secrets
        if not new:
            return
        _secrets.update(new)
        # Longest first, so a secret containing another is replaced whole.
        literals = "|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True))
        _patterns = (re.compile(f"{literals}|{_NAMES}"), re.compile(literals))


def redact(text: str) -> str:
    """``text`` with every registered secret and credential-looking value replaced."""
    suspect, pattern = _patterns
    if suspect.search(text) is None:  # every rule needs a credential name to match
        return text
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for rule, replacement in _RULES:
        text = rule.sub(replacement, text)
    return text


def _scrub(value: Any) -> Any:
    """Redact recursively; non-JSON objects (exceptions, Paths, bytes) become text first."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return _scrub_dict(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    try:
        text = str(value)
    except Exception:  # a broken __str__ must not take the log line (or the process) with it
        text = ""
    return redact(text or type(value).__name__)


def _scrub_dict(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    """A value under a credential's name is hidden whatever it is (e.g. a form dict)."""
    return {
        (redact(k) if isinstance(k, str) else k): REDACTED if k in SECRET_KEYS else _scrub(v)
        for k, v in mapping.items()
    }


def redact_secrets(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: must run after ``format_exc_info`` so tracebacks are text."""
    scrubbed = _scrub_dict(event_dict)
    lead = {k: scrubbed.pop(k) for k in _LEAD_KEYS if k in scrubbed}
    return lead | scrubbed  # timestamp, level, event first: easier to read in a journal


def level_for(verbosity: int) -> int:
    """-1 (quiet) → WARNING, 0 → INFO, 1+ → DEBUG."""
    if verbosity < 0:
        return logging.WARNING
    return logging.INFO if verbosity == 0 else logging.DEBUG


def configure_logging(
    *, verbosity: int = 0, fmt: str | None = None, stream: TextIO | None = None
) -> None:
    """Send structlog and stdlib logging, redacted, to ``stream`` (default: stderr).

    ``fmt`` None picks "console" on a TTY and "json" otherwise, and "json" whenever
    stderr is the journal (``$JOURNAL_STREAM`` names its device:inode). ``$INVOCATION_ID``
    alone is not trusted: terminals started as systemd user services pass it to every
    shell. Safe to call again (the CLI does, once options are parsed).
    """
    global _handler
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    real = stream if stream is not None else sys.stderr
    tty = _isatty(real)
    if fmt is None:
        fmt = "console" if tty and not _is_journal(real) else "json"
    colors = fmt == "console" and tty and "NO_COLOR" not in os.environ
    handler: logging.Handler = logging.StreamHandler(stream if stream is not None else _Stderr())
    handler.setFormatter(_DeferredFormatter(fmt, colors))
    root = logging.getLogger()
    with _lock:
        if _handler is not None:
            root.removeHandler(_handler)
        root.addHandler(handler)
        _handler = handler
    root.setLevel(level_for(verbosity))
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbosity >= 2 else logging.WARNING)
    if _structlog_ready:  # already loaded: (re)configure now, as before the first line
        _configure_structlog()


class _DeferredFormatter(logging.Formatter):
    """structlog's ProcessorFormatter, built (and structlog imported) on the first record."""

    def __init__(self, fmt: str, colors: bool) -> None:
        super().__init__()
        self._fmt_name, self._colors = fmt, colors
        self._real: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._real is None:
            self._real = _processor_formatter(self._fmt_name, self._colors)
        return self._real.format(record)


def _processor_formatter(fmt: str, colors: bool) -> logging.Formatter:
    structlog = _load_structlog()
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        # plain_traceback, not rich: rich would print local variables (keys!) unredacted.
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
    formatter: logging.Formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )
    return formatter


def _load_structlog() -> Any:
    """The structlog module, imported without rich (see ``_import_structlog_without_rich``)."""
    _import_structlog_without_rich()
    import structlog

    return structlog


def _configure_structlog() -> None:
    structlog = _load_structlog()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # reconfiguring (CLI options, tests) must take effect
    )


def _ensure_structlog() -> Any:
    """Load and configure structlog for the first line logged. Until ``configure_logging``
    runs, defaults apply (stderr, redacted) rather than structlog's own (stdout,
    unredacted) - unless something else configured structlog (a test's capture_logs)."""
    global _structlog_ready
    if not _structlog_ready:
        with _structlog_lock:
            structlog = _load_structlog()
            if not _structlog_ready and (_handler is not None or not structlog.is_configured()):
                if _handler is None:
                    configure_logging()
                _configure_structlog()
                _structlog_ready = True
            return structlog
    return sys.modules["structlog"]


def preload() -> None:
    """Load structlog now: a long-running process (``syncd run``) pays the import at start,
    not in the middle of its first quiet minute."""
    _ensure_structlog()


class _LazyLogger:
    """Stands in for ``structlog.stdlib.get_logger(name)`` until it is first used."""

    __slots__ = ("_name", "_real")

    def __init__(self, name: str) -> None:
        self._name = name
        self._real: Any = None

    def __getattr__(self, attr: str) -> Any:
        if attr == "debug" and not logging.getLogger(self._name).isEnabledFor(logging.DEBUG):
            return _dropped  # below the level: neither structlog's import nor its chain
        real = self._real
        if real is None:
            real = self._real = _ensure_structlog().stdlib.get_logger(self._name)
        return getattr(real, attr)


def _dropped(*args: Any, **kwargs: Any) -> None:
    return None


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger for module ``name``. Cheap: nothing is loaded until it logs."""
    return cast("structlog.stdlib.BoundLogger", _LazyLogger(name))


class _Stderr:
    """Writes to whatever ``sys.stderr`` is at the time (pytest and click swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _is_journal(stream: TextIO) -> bool:
    """True when ``stream`` is the journal socket systemd announced in $JOURNAL_STREAM."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return bool(expected) and expected == f"{st.st_dev}:{st.st_ino}"
