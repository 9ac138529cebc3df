"""How a YetiShare 4.x site alters names, reproduced from what a live server did.

Every rule here is in API-observed.md (D5-D7 and "Further observations"); the emulator
must mangle names exactly like a real site so that syncd's name-restoring logic is
exercised by the ordinary test suite, not only against a live server.
"""

from __future__ import annotations

import re
import unicodedata

PHP_TRIM = " \t\n\r\0\x0b"  # the characters PHP's trim() removes
MAX_NAME = 255  # varchar(255): longer names are cut silently
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_KEYWORD_SPLIT = re.compile(r"[\s.\-_(),]+")
_URL_UNSAFE = str.maketrans({c: "_" for c in " \t\"';#%"})
_PHP_INT = re.compile(r"\s*([+-]?\d+)")


def php_trim(value: str) -> str:
    return value.strip(PHP_TRIM)


def strip_tags(value: str) -> str:
    """PHP's strip_tags(): drop ``<…>`` tags, and an unclosed ``<x…`` up to the end.

    A ``<`` followed by whitespace is text; quotes inside a tag hide ``>``; a ``>``
    outside a tag is kept (``<b>bold</b>`` → ``bold``, ``a<b dir`` → ``a``).
    """
    if "<" not in value:
        return value
    out: list[str] = []
    in_tag = False
    quote = ""
    depth = 0
    for i, c in enumerate(value):
        if not in_tag:
            if c == "<" and not value[i + 1 : i + 2].isspace():
                in_tag, quote, depth = True, "", 0
            else:
                out.append(c)
        elif quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "<":
            depth += 1
        elif c == ">":
            if depth:
                depth -= 1
            else:
                in_tag = False
    return "".join(out)


def clean_param(value: str) -> str:
    """Every request parameter goes through ``trim(strip_tags(…))`` on a real site."""
    return php_trim(strip_tags(value))


def php_int(value: str | None) -> int:
    """PHP's ``(int)`` cast: leading digits, anything else 0."""
    if not value:
        return 0
    m = _PHP_INT.match(value)
    return int(m.group(1)) if m else 0


def received_upload_name(raw: str) -> str:
    """The upload name as the inner uploader receives it (before collision naming).

    PHP keeps what follows the last ``/`` or ``\\``; the name is trimmed; one leading
    ``.`` goes; libcurl's internal re-post encodes ``"`` as ``%22``.
    """
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = php_trim(name)
    if name.startswith("."):
        name = name[1:]
    return name.replace('"', "%22")


def final_upload_name(candidate: str) -> str:
    """Quotes and line breaks are removed *after* the collision check (D7)."""
    return candidate.replace("'", "").replace("\r", "").replace("\n", "")


def ascii_lower(value: str) -> str:
    """PHP 8's strtolower(): only A-Z change."""
    return value.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans({chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)})


def extension(name: str) -> str:
    """What follows the last dot, lower-cased; a name without a dot is its own extension."""
    return ascii_lower(name.rsplit(".", 1)[-1])


def numbered(name: str, n: int) -> str:
    """The ``(n)`` variant of a name, with PHP's quirks.

    ``x.TXT`` → ``x (2).txt``; ``no_extension`` → ``no_extensio (2).no_extension``;
    ``dot.`` → ``dot (2).``.
    """
    raw_ext = name.rsplit(".", 1)[-1]
    cut = len(name) - len(raw_ext) - 1
    base = name[:cut] if cut >= 0 else name[:-1]
    return f"{base} ({n}).{ascii_lower(raw_ext)}"


def fold(name: str) -> str:
    """Comparison key of MySQL's utf8_general_ci: case and accents ignored."""
    if name.isascii():
        return name.lower()
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def to_db(name: str) -> str:
    """What a utf8mb3 varchar(255) column keeps: astral characters become ``????``."""
    if not name.isascii():
        name = _ASTRAL.sub("????", name)
    return name[:MAX_NAME]


def keywords(name: str) -> str:
    """The ``keywords`` column a site derives from the uploaded name (``hello,2,txt``)."""
    seen: dict[str, None] = {}
    for word in _KEYWORD_SPLIT.split(name):
        if word:
            seen.setdefault(word, None)
    return ",".join(seen)


def url_name(name: str) -> str:
    """The name part of ``url`` / ``download_url``: tags stripped, blanks and ``"';#%``
    turned into ``_``, and *not* URL-encoded (as real sites send it)."""
    return strip_tags(name).translate(_URL_UNSAFE)
