"""Streaming file writers: JSON arrays element by element, JSON lines, one export file per year."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import IO, Any

_BUFFER = 1 << 16   # per open file; shop B alone keeps one file per year open
_HASH_CHUNK = 1 << 20


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class JsonArrayWriter:
    """`[` elem `,` elem ... `]` without ever holding the list (UTF-8, optional BOM)."""

    def __init__(self, path: Path, *, bom: bool = False) -> None:
        self.path = path
        self.count = 0
        self._f: IO[str] = open(path, "w", encoding="utf-8", newline="\n", buffering=_BUFFER)  # noqa: SIM115
        if bom:
            self._f.write("\ufeff")
        self._f.write("[")

    def write(self, obj: Any) -> None:
        self._f.write("\n" if self.count == 0 else ",\n")
        self._f.write(dumps(obj))
        self.count += 1

    def close(self) -> None:
        self._f.write("\n]\n")
        self._f.close()


class JsonLinesWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._f: IO[str] = open(path, "w", encoding="utf-8", newline="\n", buffering=_BUFFER)  # noqa: SIM115

    def write(self, obj: Any) -> None:
        self._f.write(dumps(obj))
        self._f.write("\n")
        self.count += 1

    def write_line(self, line: str) -> None:
        self._f.write(line)
        self._f.write("\n")
        self.count += 1

    def close(self) -> None:
        self._f.close()


class YearlyExport:
    """Shop B's export: one JSON array per CHANGED_AT year (`export_2024.json`)."""

    def __init__(self, directory: Path, *, bom: bool) -> None:
        self.directory = directory
        self.bom = bom
        self._files: dict[str, JsonArrayWriter] = {}

    def write(self, element: dict) -> None:
        year = element["CHANGED_AT"][:4]
        w = self._files.get(year)
        if w is None:
            w = self._files[year] = JsonArrayWriter(self.directory / f"export_{year}.json", bom=self.bom)
        w.write(element)

    @property
    def paths(self) -> list[Path]:
        return [self._files[y].path for y in sorted(self._files)]

    def close(self) -> None:
        for w in self._files.values():
            w.close()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
