"""The rows of the emulated site's database, as plain slotted dataclasses.

Field values are kept in Python types (ints, None); ``views`` turns them into the strings
a PHP/MySQL site sends. Records hold scalars only, so they serialise to JSON as they are.
"""

from __future__ import annotations

import string
import time
from dataclasses import dataclass
from typing import Any

ACTIVE, TRASH = "active", "trash"
_B62 = string.digits + string.ascii_lowercase + string.ascii_uppercase


def now_str() -> str:
    """A timestamp the way PHP's date('Y-m-d H:i:s') prints it (server local time)."""
    return time.strftime("%Y-%m-%d %H:%M:%S")


@dataclass(slots=True)
class User:
    id: int
    username: str
    key1: str
    key2: str
    email: str
    datecreated: str


@dataclass(slots=True)
class Token:
    id: str
    user_id: int
    added: float
    last_used: float | None = None  # None: never used, so never expires (as observed)


@dataclass(slots=True)
class Folder:
    id: int
    user_id: int
    parent_id: int | None
    name: str
    is_public: int
    access_password: str | None
    date_added: str
    date_updated: str | None = None
    status: str = ACTIVE
    total_size: int = 0  # a stored value, recalculated only on upload (D11)


@dataclass(slots=True)
class File:
    id: int
    user_id: int
    folder_id: int | None  # 0 is the '' that file/move to root writes (in no listing)
    name: str
    keywords: str
    extension: str
    file_type: str
    size: int
    md5: str
    short: str
    delete_hash: str
    unique_hash: str
    uploaded_ip: str
    uploaded_date: str
    status: str = ACTIVE
    downloads: int = 0
    last_accessed: str | None = None


Record = User | Token | Folder | File
KINDS: dict[str, type[Any]] = {"user": User, "token": Token, "folder": Folder, "file": File}


def as_dict(rec: Record) -> dict[str, Any]:
    """dataclasses.asdict without its deep copies (records hold only scalars)."""
    return {name: getattr(rec, name) for name in rec.__slots__}


def short_code(n: int) -> str:
    """Base 62, as the site's default "shortest" short-URL scheme."""
    out = ""
    while True:
        n, r = divmod(n, 62)
        out = _B62[r] + out
        if n == 0:
            return out
