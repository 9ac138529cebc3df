"""Persistence of the emulator's metadata as a JSON-lines journal.

Every change appends the whole changed record (records are small) and the last line for a
record wins, so a request costs one ``write`` (no fsync: an emulator may lose its last
lines in a power cut, never its consistency). On start the journal is replayed and
rewritten compactly. A torn last line from a crash is skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import IO, Any

from syncd.emulator.records import KINDS, Record, as_dict

Tables = dict[str, dict[Any, Any]]  # kind → id → record


def load(path: Path) -> Tables:
    """The tables ("user", "token", "folder", "file" → id → record) the journal holds."""
    tables: Tables = {kind: {} for kind in KINDS}
    if not path.exists():
        return tables
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
                kind, rec = entry["t"], entry["r"]
                if entry.get("del"):
                    tables[kind].pop(rec, None)
                    continue
                cls = KINDS[kind]
                obj = cls(**{f.name: rec[f.name] for f in fields(cls)})
            except (ValueError, KeyError, TypeError):
                continue  # a torn line after a crash
            tables[kind][obj.id] = obj
    return tables


class Journal:
    """Appends changes to ``path`` after rewriting it with ``tables`` only."""

    def __init__(self, path: Path, tables: Tables) -> None:
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for kind, table in tables.items():
                for rec in table.values():
                    fh.write(json.dumps({"t": kind, "r": as_dict(rec)}) + "\n")
        os.replace(tmp, path)
        self._fh: IO[str] | None = path.open("a", encoding="utf-8")

    def save(self, kind: str, rec: Record) -> None:
        self._write({"t": kind, "r": as_dict(rec)})

    def delete(self, kind: str, rec_id: Any) -> None:
        self._write({"t": kind, "r": rec_id, "del": True})

    def _write(self, entry: dict[str, Any]) -> None:
        if self._fh is not None:
            self._fh.write(json.dumps(entry) + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
