"""The sandbox's stand-in for a shop database: a SQLite file with the same tables and interface.

Rows come back exactly as the MySQL source gives them: text as `bytes` (BLOBs as stored, TEXT
values encoded UTF-8), integers as int, datetimes (stored as `YYYY-MM-DD HH:MM:SS` text, shop local
time) as naive datetimes, zero dates as None. The file is opened read-only.

A datetime is recognised by the declared type DATETIME, or, for columns declared otherwise (the
sandbox generator declares them TEXT), by a value stored as TEXT in exactly MySQL's DATETIME form.
Shop text columns are stored as BLOBs, so they are never mistaken for dates.

One difference from MySQL to keep in mind when writing shop SQL: SQLite's LIKE/GLOB never match a
BLOB, so compare text columns with `=`/`IN`, or CAST(col AS TEXT) first.
"""
from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from extractors.errors import SourceError
from extractors.sql import ClosingSource, pyformat_to_named

def _datetime_or_none(value: bytes) -> dt.datetime | None:
    """Converter for columns declared DATETIME; zero or impossible dates become None."""
    try:
        return dt.datetime.fromisoformat(value.decode("ascii").strip())
    except (ValueError, UnicodeDecodeError):
        return None


_DATETIME_TEXT = re.compile(rb"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?")


def _text_value(raw: bytes) -> bytes | dt.datetime | None:
    """text_factory (called for values stored as TEXT only): MySQL-form datetimes become datetimes
    (zero dates None), anything else stays the stored UTF-8 bytes."""
    if 19 <= len(raw) <= 26 and _DATETIME_TEXT.fullmatch(raw):
        return _datetime_or_none(raw)
    return raw


# sqlite3 keeps converters in one process-wide table, keyed by the declared type's first word;
# they only apply to connections opened with detect_types=PARSE_DECLTYPES (as this module's are).
# Only DATETIME (the shop's type) is claimed: sqlite3's own "timestamp"/"date" stay untouched.
sqlite3.register_converter("DATETIME", _datetime_or_none)


def _bind(value: Any) -> Any:
    """Parameters as SQLite compares them with the stored text (no deprecated default adapters)."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def sqlite_path(dsn: str) -> Path:
    """`sqlite:///relative/path`, `sqlite:////absolute/path` (SQLAlchemy's convention) or a path.

    `sqlite:///tmp/x.sqlite` also finds `/tmp/x.sqlite` when no relative `tmp/x.sqlite` exists.
    """
    if not dsn.lower().startswith("sqlite:"):
        return Path(dsn)
    rest = dsn[len("sqlite:"):]
    if not rest.startswith("///"):
        raise SourceError(f"bad SQLite DSN {dsn!r}: expected sqlite:///path (or a plain file path)")
    path = Path(rest[3:])
    if not path.is_absolute() and not path.exists() and Path("/", path).exists():
        return Path("/", path)
    return path


class SqliteSource(ClosingSource):
    """A read-only SQLite shop database. Open with `open_sql_source(dsn)` or `SqliteSource(path)`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"SQLite database {self.path} does not exist: check the DSN "
                              "(CRM_ETL_SHOP_A_DSN=sqlite:///path) or generate the sandbox data")
        try:
            conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True,
                                   detect_types=sqlite3.PARSE_DECLTYPES, check_same_thread=False)
            conn.text_factory = _text_value
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fail now, not mid-load
        except sqlite3.Error as e:
            raise SourceError(f"SQLite database {self.path} cannot be read: {e}; "
                              "is it a SQLite file? regenerate the sandbox data") from None
        self._conn: sqlite3.Connection | None = conn

    @classmethod
    def from_dsn(cls, dsn: str) -> SqliteSource:
        return cls(sqlite_path(dsn))

    def iter_rows(self, query: str, params: Mapping[str, Any] | None = None, *,
                  table: str | None = None) -> Iterator[dict[str, Any]]:
        if self._conn is None:
            raise SourceError(f"SQLite database {self.path}: the source is closed")
        what = f"reading {table}" if table else "running a query"
        try:
            sql = pyformat_to_named(query)
        except ValueError as e:
            raise SourceError(f"SQLite database {self.path}: bad query while {what}: {e}") from None
        bound = {k: _bind(v) for k, v in (params or {}).items()}
        try:
            cur = self._conn.execute(sql, bound)
        except sqlite3.Error as e:
            raise SourceError(f"SQLite database {self.path}: {what} failed: {e}") from None
        names = [c[0] for c in cur.description or ()]
        try:
            for row in cur:
                record = dict(zip(names, row))
                if table is not None:
                    record["_table"] = table
                yield record
        except sqlite3.Error as e:
            raise SourceError(f"SQLite database {self.path}: {what} failed mid-stream: {e}") from None
        finally:
            cur.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
