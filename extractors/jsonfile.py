"""Items out of huge JSON exports (one array per file, or JSON lines), streamed with flat memory.

Shop B's SAP CRM exports are single JSON arrays of hundreds of MB. They are parsed incrementally
with ijson's C backend (yajl2_c) pushed by our own read loop: we count the bytes (progress, error
offsets) and every item is handed on as soon as it is complete. A damaged file (truncated, not
JSON, not UTF-8) stops with `SourceFileError` naming the file and byte offset, *after* every
complete item before the damage has been yielded, so the pipeline processes and reports them.

Items are yielded as they are, objects or not (the transformer rejects non-objects as
`bad_record`). Numbers come as int/float, never Decimal.
"""
from __future__ import annotations

import codecs
import io
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import ijson
from ijson.common import JSONError

from extractors.sql import SourceError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (bytes_read, total_bytes)

CHUNK_SIZE = 64 * 1024
# One item (or JSON line) bigger than this is not a business partner: the file is stopped there.
MAX_ITEM_BYTES = 64 * 1024 * 1024
PROGRESS_INTERVAL = 0.1  # seconds between progress calls (at most)
DEFAULT_ITEM_PATH = "item"
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
PREFERRED_BACKEND = "yajl2_c"

_UTF8_BOM = codecs.BOM_UTF8
_CONTROL_BYTE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # never valid in JSON text, raw
_WIDE_BOMS = {codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32",
              codecs.BOM_UTF16_LE: "UTF-16", codecs.BOM_UTF16_BE: "UTF-16"}  # UTF-32 LE first
_COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz",
               b"(\xb5/\xfd": "zstd"}


class SourceFileError(SourceError):
    """A source file is missing or damaged. `path` and `offset` (bytes from the start) say where."""

    def __init__(self, path: str | os.PathLike[str], offset: int, problem: str, fix: str = "") -> None:
        self.path = str(path)
        self.offset = offset
        message = f"{self.path}: {problem} (at byte {offset})"
        super().__init__(message + (f"; {fix}" if fix else ""))


_backend: ModuleType | None = None


def json_backend() -> ModuleType:
    """ijson's C backend; if it is missing, the best one available, with a warning (it is slower)."""
    global _backend
    if _backend is None:
        try:
            _backend = ijson.get_backend(PREFERRED_BACKEND)
        except ImportError as e:
            _backend = ijson.get_backend(ijson.backend_name)
            log.warning("ijson's C backend %s is not available (%s): using %s, several times slower; "
                        "reinstall ijson from a wheel to get it back", PREFERRED_BACKEND, e, ijson.backend_name)
    return _backend


class _Progress:
    """Calls `callback(bytes_read, total)` at most every PROGRESS_INTERVAL seconds, and once at the end."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback, self.total = callback, total
        self._last = time.monotonic()
        self._reported = 0  # never report going backwards (a re-read restarts from the beginning)

    def update(self, bytes_read: int) -> None:
        if self.callback is not None and bytes_read > self._reported:
            now = time.monotonic()
            if now - self._last >= PROGRESS_INTERVAL:
                self._last, self._reported = now, bytes_read
                self.callback(bytes_read, self.total)

    def done(self, bytes_read: int) -> None:
        if self.callback is not None:
            self.callback(bytes_read, self.total)


def iter_json_items(path: str | os.PathLike[str], *, item_path: str = DEFAULT_ITEM_PATH,
                    progress: ProgressCallback | None = None) -> Iterator[Any]:
    """Yield the items of one JSON file: the elements at `item_path` (ijson prefix, `item` = the
    elements of a top-level array, `data.partners.item` = a nested array), or each line of a JSON
    lines file (`.jsonl`/`.ndjson`, or a file whose first character is not `[` with the default
    item path). Raises `SourceFileError` for a missing or damaged file."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise SourceFileError(path, 0, f"cannot open the file: {e.strerror}",
                              "check the path given with --file") from None
    with f:
        total = os.fstat(f.fileno()).st_size
        head = f.read(CHUNK_SIZE)
        start = _content_start(path, head)
        first = head[start:].lstrip()[:1]
        is_lines = path.suffix.lower() in JSON_LINES_SUFFIXES or (
            item_path == DEFAULT_ITEM_PATH and first not in (b"[", b""))
        f.seek(start)
        meter = _Progress(progress, total)
        if is_lines:
            yield from _iter_lines(f, path, start, meter)
        else:
            if not first and total <= len(head):
                raise SourceFileError(path, total, "the file is empty: expected a JSON array")
            yield from _iter_document(f, path, item_path, start, meter, head)


def _content_start(path: Path, head: bytes) -> int:
    """Where the JSON text starts (after a UTF-8 BOM); refuses other encodings and archives."""
    if head.startswith(_UTF8_BOM):
        return len(_UTF8_BOM)
    for magic, name in _COMPRESSED.items():
        if head.startswith(magic):
            raise SourceFileError(path, 0, f"the file is {name}-compressed, not JSON",
                                  "decompress it first and pass the .json file")
    for bom, name in _WIDE_BOMS.items():
        if head.startswith(bom):
            raise _wide_encoding(path, name)
    if b"\x00" in head[:4]:  # JSON text starts with ASCII: NULs there mean UTF-16/32 without a BOM
        raise _wide_encoding(path, "UTF-16" if head[:4].count(b"\x00") < 3 else "UTF-32")
    return 0


def _wide_encoding(path: Path, name: str) -> SourceFileError:
    return SourceFileError(path, 0, f"the file is encoded in {name}, not UTF-8",
                           f"convert it: iconv -f {name} -t UTF-8 '{path}' > '{path.stem}.utf8{path.suffix}'")


def _not_utf8(path: Path, offset: int, sample: bytes) -> SourceFileError:
    """The encoding error, with a guess at the real encoding when the bytes read as Cyrillic."""
    non_ascii = [b for b in sample if b >= 0x80]
    cyrillic = sum(1 for c in sample.decode("cp1251", "replace") if "\u0400" <= c <= "\u04ff")
    if non_ascii and cyrillic >= len(non_ascii) * 0.8:
        return SourceFileError(path, offset, "the bytes here are not UTF-8; they look like Windows-1251 "
                               "(cp1251)", f"re-export the file as UTF-8, or convert it: "
                               f"iconv -f CP1251 -t UTF-8 '{path}' > '{path.stem}.utf8{path.suffix}'")
    return SourceFileError(path, offset, "the bytes here are not valid UTF-8",
                           "re-export the file as UTF-8 (check how it was produced or copied)")


def _iter_lines(f: io.BufferedReader, path: Path, offset: int, meter: _Progress) -> Iterator[Any]:
    """JSON lines: one value per line, blank lines skipped; an undecodable line stops the file."""
    next_report = offset + CHUNK_SIZE
    for lineno, line in enumerate(iter(lambda: f.readline(MAX_ITEM_BYTES + 1), b""), 1):
        if len(line) > MAX_ITEM_BYTES:
            raise SourceFileError(path, offset, f"line {lineno} is longer than {MAX_ITEM_BYTES >> 20} MB "
                                  f"(every line before it was read)", "one line holds one business "
                                  "partner (a few KB): if the file is one JSON document, not JSON lines, "
                                  "set item_path to the array holding the items")
        body = line.strip()
        if body:
            skipped = len(line) - len(line.lstrip())
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _not_utf8(path, offset + skipped + e.start, body[e.start:e.start + 64]) from None
            try:
                item = json.loads(text)
            except json.JSONDecodeError as e:
                at = offset + skipped + len(text[:e.pos].encode("utf-8"))
                if lineno == 1 and body[:1] == b"{":
                    hint = ("if the file is one JSON document rather than JSON lines, set item_path "
                            "to the array holding the items (e.g. data.item)")
                elif lineno == 1:
                    hint = "the file is not JSON: expected a JSON array or JSON lines"
                else:
                    hint = "fix or remove that line (every line before it was read)"
                raise SourceFileError(path, at, f"line {lineno} is not valid JSON ({e.msg})", hint) from None
            yield item
        offset += len(line)
        if offset >= next_report:
            next_report = offset + CHUNK_SIZE
            meter.update(offset)
    meter.done(offset)


class _IntegerOverflow(Exception):
    """yajl's float mode cannot hold an integer beyond 64 bits: the file must be read in exact mode."""


def _iter_document(f: io.BufferedReader, path: Path, item_path: str, start: int,
                   meter: _Progress, head: bytes) -> Iterator[Any]:
    """One JSON document, items at `item_path`; falls back to exact numbers if it must."""
    yielded = 0
    try:
        for item in _push_items(f, path, item_path, start, meter, use_float=True):
            yielded += 1
            yield item
    except _IntegerOverflow:
        log.warning("%s: an integer beyond 64 bits after %d items; reading the file again in "
                    "exact-number mode (slower)", path, yielded)
        f.seek(start)
        for n, item in enumerate(_push_items(f, path, item_path, start, meter, use_float=False)):
            if n >= yielded:
                yielded += 1
                yield _floats(item)
    if yielded == 0:
        _check_item_path(path, item_path, head)
    meter.done(meter.total)


class _CountingReader:
    """What ijson reads through: counts bytes (progress, error offsets), keeps the last chunk.

    yajl re-scans a token that spans chunks from its start at every chunk, so a string of
    megabytes read 64 KB at a time costs quadratic time (a 6 MB string of \\u escapes: 3 s, 24 MB:
    50 s). While no item completes, each read is twice the last (up to MAX_ITEM_BYTES), which
    keeps that linear; the first item completed brings the size back to CHUNK_SIZE.
    """

    def __init__(self, f: io.BufferedReader, offset: int, meter: _Progress) -> None:
        self._f, self.offset, self._meter = f, offset, meter
        self.chunk, self.chunk_offset = b"", offset
        self.items = 0                  # items completed so far (counted by the caller)
        self._items_at_last_read = -1
        self._size = CHUNK_SIZE
        self.item_start = offset        # where the item being read began, near enough (a chunk)

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""  # ijson's probe for bytes vs str
        if self.items == self._items_at_last_read:
            self._size = min(self._size * 2, MAX_ITEM_BYTES)
            if self.offset - self.item_start > MAX_ITEM_BYTES:
                raise _ItemTooLarge(self.item_start)
        else:
            self._size, self.item_start = max(size, CHUNK_SIZE), self.chunk_offset
        self._items_at_last_read = self.items
        chunk = self._f.read(self._size)
        if chunk:
            self.chunk, self.chunk_offset = chunk, self.offset
            self.offset += len(chunk)
            self._meter.update(self.offset)
        return chunk


class _ItemTooLarge(Exception):
    def __init__(self, start: int) -> None:
        self.start = start


def _push_items(f: io.BufferedReader, path: Path, item_path: str, offset: int,
                meter: _Progress, *, use_float: bool) -> Iterator[Any]:
    """ijson's C item generator over a counting reader. It yields every item completed before a
    parse error, then raises; we turn the error into a SourceFileError at the damaged byte."""
    reader = _CountingReader(f, offset, meter)
    count = 0
    try:
        for item in json_backend().items(reader, item_path, use_float=use_float, buf_size=CHUNK_SIZE):
            count += 1
            reader.items = count
            yield item
    except _ItemTooLarge as e:
        raise SourceFileError(path, e.start, f"no item ends within {MAX_ITEM_BYTES >> 20} MB from here "
                              f"(item {count} or what precedes the items); the {count} complete items "
                              "before it were read", "a business partner is a few KB: check the file "
                              "there (and item_path, if the items are nested)") from None
    except JSONError as e:
        if use_float and "integer overflow" in str(e):  # yajl's floats mode stops beyond 64 bits
            raise _IntegerOverflow() from None
        if "premature EOF" in str(e):
            raise SourceFileError(path, reader.offset, "the file ends in the middle of the JSON "
                                  f"(truncated?); the {count} complete items before it were read",
                                  "get the complete file again") from None
        raise _damage(path, e, reader.chunk, reader.chunk_offset) from None


def _floats(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    return value


def _damage(path: Path, error: JSONError, chunk: bytes, chunk_offset: int) -> SourceFileError:
    """Turn yajl's error into a SourceFileError at the byte where the damage is."""
    message = error.args[0] if error.args else b""
    raw = message if isinstance(message, bytes) else str(message).encode("utf-8", "replace")
    lines = raw.split(b"\n")
    problem = lines[0].decode("utf-8", "replace").strip() or "not valid JSON"
    at = _yajl_error_position(lines[1] if len(lines) > 2 else b"", chunk)
    bad_utf8 = _first_invalid_utf8(chunk)
    if bad_utf8 is not None and (at is None or bad_utf8 <= at):
        return _not_utf8(path, chunk_offset + bad_utf8, chunk[bad_utf8:bad_utf8 + 64])
    if at is None:  # yajl's context stops at a NUL byte: find the control byte ourselves
        control = _CONTROL_BYTE.search(chunk)
        if control is not None:
            return SourceFileError(path, chunk_offset + control.start(), f"not valid JSON ({problem}): "
                                   f"a raw control byte 0x{control.group()[0]:02x}",
                                   "every item before this point was read; remove the byte (inside "
                                   "a string it must be escaped, e.g. \\u0000) and load the file again")
        return SourceFileError(path, chunk_offset, f"not valid JSON ({problem}) in the "
                               f"{len(chunk)} bytes from here", "check the file around that offset")
    return SourceFileError(path, chunk_offset + at, f"not valid JSON ({problem})",
                           "every item before this point was read; fix the file and load it again")


def _yajl_error_position(context: bytes, chunk: bytes) -> int | None:
    """Where in `chunk` yajl stopped, recovered from its verbose error text (yajl's
    yajl_render_error_string: the 30 bytes before the offset, left-padded to column 40 (10 when
    there are 30), then some bytes after it; newlines shown as spaces). None if it does not match."""
    if not context:
        return None
    flat = chunk.replace(b"\n", b" ").replace(b"\r", b" ")
    for at in range(len(chunk) + 1):
        before = b" " * (40 - at if at < 30 else 10) + flat[max(0, at - 30):at]
        if context.startswith(before):
            after = context[len(before):]
            if flat.startswith(after, at):
                return at
    return None


def _first_invalid_utf8(chunk: bytes) -> int | None:
    """Offset of the first byte in `chunk` that cannot be UTF-8 (a character cut at either edge of
    the chunk does not count)."""
    start = 0
    while start < min(3, len(chunk)) and 0x80 <= chunk[start] <= 0xBF:
        start += 1  # continuation bytes of a character that began in the previous chunk
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(chunk[start:], final=False)
    except UnicodeDecodeError as e:
        return start + e.start
    return None


def _check_item_path(path: Path, item_path: str, head: bytes) -> None:
    """No item at all: fine for an empty array at the path, an error if the path names nothing."""
    arrays: list[str] = []
    try:
        for prefix, event, _ in json_backend().parse(io.BytesIO(head.removeprefix(_UTF8_BOM))):
            if event == "start_array" and prefix not in arrays:
                arrays.append(prefix)
    except JSONError:
        pass
    parent = item_path.rpartition(".")[0] if item_path.endswith(".item") else (
        "" if item_path == "item" else None)
    if parent is not None and parent in arrays:
        return
    found = ", ".join(repr(a + ".item" if a else "item") for a in arrays[:5]) or "none near the start"
    raise SourceFileError(path, 0, f"no items at item_path {item_path!r}",
                          f"set item_path to the array holding the items (arrays found: {found})")


class JsonFileSource:
    """Several export files (e.g. one per year) read one after the other, as one stream of items.

    `total_bytes` is the size of all files (for a progress bar); the progress callback (given here
    or to `records`) gets the bytes read across all of them. Missing files fail here, up front.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]], item_path: str = DEFAULT_ITEM_PATH,
                 progress: ProgressCallback | None = None) -> None:
        if not paths:
            raise SourceFileError("(no file)", 0, "no export file given", "pass at least one --file")
        self.paths = [Path(p) for p in paths]
        self.item_path = item_path
        self.progress = progress
        sizes = []
        for p in self.paths:
            try:
                sizes.append(p.stat().st_size)
            except OSError as e:
                raise SourceFileError(p, 0, f"cannot open the file: {e.strerror}",
                                      "check the path given with --file") from None
        self._sizes = sizes

    @property
    def total_bytes(self) -> int:
        return sum(self._sizes)

    def records(self, progress: ProgressCallback | None = None) -> Iterator[Any]:
        progress = progress or self.progress
        done, total = 0, self.total_bytes
        for path, size in zip(self.paths, self._sizes):
            per_file: ProgressCallback | None = None
            if progress is not None:
                def per_file(n: int, _file_total: int, _base: int = done) -> None:
                    progress(_base + n, total)
            yield from iter_json_items(path, item_path=self.item_path, progress=per_file)
            done += size
