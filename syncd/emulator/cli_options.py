"""The emulator's fault and account options as click options, for ``syncd emulator``.

``@add_fault_options`` adds them to a click command; the command passes ``**kwargs``
straight to ``run_emulator``. Defaults are ``None`` (= the ``EmulatorOptions`` default)
so that the help text stays the single place that states them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(i?B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class ByteSize(click.ParamType[int]):
    """A byte count: ``5368709120``, ``100M``, ``5G`` (binary multiples)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        m = _SIZE.fullmatch(str(value).strip())
        if not m:
            self.fail(f"{value!r} is not a size like 5368709120, 100M or 5G", param, ctx)
        return int(m.group(1)) * _UNITS[m.group(2).upper()]


_RATE = click.FloatRange(0.0, 1.0)
_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("--fail-rate",),
        {
            "type": _RATE,
            "help": "Share of requests answered 500/502/503 "
            "with an HTML page, without acting. [default: 0]",
        },
    ),
    (
        ("--latency",),
        {"type": click.FloatRange(0.0), "help": "Seconds added to every request. [default: 0]"},
    ),
    (
        ("--reset-rate",),
        {
            "type": _RATE,
            "help": "Share of requests whose connection is "
            "dropped without an answer (uploads: mid-body). [default: 0]",
        },
    ),
    (
        ("--rate-limit",),
        {"type": _RATE, "help": "Share of requests answered 429 with Retry-After. [default: 0]"},
    ),
    (
        ("--retry-after",),
        {
            "type": click.FloatRange(0.0),
            "help": "Seconds sent in Retry-After (fractions allowed). [default: 1]",
        },
    ),
    (
        ("--late-fail-rate",),
        {
            "type": _RATE,
            "help": "Share of file/upload and folder/create "
            "calls that act, then answer 502 (a lost answer). [default: 0]",
        },
    ),
    (
        ("--html-errors",),
        {
            "type": _RATE,
            "help": "Share of requests answered 200 with a PHP "
            "error page instead of JSON. [default: 0]",
        },
    ),
    (
        ("--corrupt-download-rate",),
        {"type": _RATE, "help": "Share of downloads with one byte flipped. [default: 0]"},
    ),
    (
        ("--token-ttl",),
        {
            "type": click.FloatRange(0.0),
            "help": "Idle seconds before a used access token expires. [default: 3600]",
        },
    ),
    (
        ("--error-style",),
        {
            "type": click.Choice(["status", "_status"]),
            "help": "Error envelope: 4.x 'status' or 5.x '_status'. [default: status]",
        },
    ),
    (
        ("--hash-always",),
        {
            "is_flag": True,
            "default": None,
            "help": "Return the MD5 as 'hash' for every upload (real 4.x: only for known content).",
        },
    ),
    (
        ("--max-upload-size",),
        {"type": ByteSize(), "help": "Largest accepted upload, e.g. 100M. [default: 5G]"},
    ),
    (
        ("--concurrent-uploads",),
        {
            "type": click.IntRange(0),
            "help": "Value shown in account/package (0 = not set). [default: 0]",
        },
    ),
    (("--seed",), {"type": int, "help": "Random seed for fault injection (repeatable runs)."}),
]


def add_fault_options(fn: F) -> F:
    """Decorate a click command with the emulator's options (kwargs named like
    ``EmulatorOptions`` fields, ``None`` when not given)."""
    for decls, attrs in reversed(_OPTIONS):
        fn = click.option(*decls, **{"default": None, **attrs})(fn)
    return fn
