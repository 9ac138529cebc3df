"""What names a real server can store, and how it alters the ones it accepts.

Observed on a live 4.x server (API-observed.md): uploads keep only what follows the last
``/`` or ``\\``, drop ``'`` and one leading ``.``, store ``"`` as ``%22``, trim blanks, and
add `` (N)`` on a collision; ``file/edit`` and ``folder/create`` pass names through PHP's
``trim(strip_tags())``; the database is utf8mb3, so 4-byte characters become ``????``.
syncd restores altered names with ``file/edit``; names that even ``file/edit`` cannot
store are refused before any request, so they are reported once instead of producing a
mangled copy (or a duplicate folder) on every pass.
"""

from __future__ import annotations

import re

MAX_NAME_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# PHP strip_tags treats "<" followed by anything but whitespace as the start of a tag.
_TAG_START = re.compile(r"<\S")


def unstorable_reason(name: str) -> str | None:
    """Why a server cannot store ``name`` exactly (even via rename), or None if it can."""
    if any(ord(ch) > 0xFFFF for ch in name):
        return "name has 4-byte characters (e.g. emoji) the server cannot store"
    if _CONTROL.search(name):
        return "name contains control characters (e.g. newline)"
    if name != name.strip():
        return "name has leading or trailing blanks the server would trim"
    if _TAG_START.search(name):
        return "name contains '<' followed by text, which the server strips as a tag"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"name is longer than {MAX_NAME_BYTES} bytes"
    return None


def upload_stored_name(name: str) -> str:
    """The name a real server stores for an upload sent as ``name`` (no collision)."""
    stored = re.split(r"[/\\]", name)[-1]
    stored = stored.replace("'", "").replace('"', "%22").strip()
    if stored.startswith("."):
        stored = stored[1:]
    return stored


def is_upload_variant(listed: str, sent: str) -> bool:
    """Whether ``listed`` may be what the server made of an upload sent as ``sent``.

    Used after a lost response or a crash to find copies the server stored that syncd
    never recorded: the stored name itself, or its `` (N)`` collision variant.
    """
    stored = upload_stored_name(sent)
    if listed in (stored, sent):
        return True
    stem, dot, ext = stored.rpartition(".")
    if dot and stem:
        pattern = rf"{re.escape(stem)} \(\d+\)\.{re.escape(ext.lower())}"
    else:
        # Without a dot the server cuts the last character and appends the name as an
        # extension: "no_extension" -> "no_extensio (2).no_extension".
        pattern = rf"{re.escape(stored[:-1])} \(\d+\)\.{re.escape(stored)}"
    return re.fullmatch(pattern, listed) is not None
