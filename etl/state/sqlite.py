"""The SQLite state store: one local file, created on first use (the default backend).

Durability choice: WAL journal with synchronous=FULL.
- WAL: readers never block the writer and vice versa (a `crm-etl status` while a load runs), and
  a commit is one append to the -wal file. A process killed at any moment (SIGKILL, OOM) leaves a
  consistent database holding every committed transaction; SQLite rolls the torn tail back.
- FULL rather than NORMAL: with NORMAL a power loss or OS crash can drop the last commits. The
  loader records an intent *before* each CRM write and relies on finding it after a crash to
  avoid creating an entity twice, so a commit must reach the disk before the write is sent.
  FULL costs one fsync per commit; the store is written once per batch (a few commits per
  second at the CRM's ~100 writes/s), so the cost does not show (see `make bench`).

Writers take the lock at BEGIN (BEGIN IMMEDIATE), so a transaction never fails half-way on a
lock upgrade; a second process waits up to `busy_timeout_s` for the other writer instead of
failing with "database is locked" at once.

URLs: a plain path (`~` expanded), `sqlite:///relative/path`, `sqlite:////absolute/path`
(SQLAlchemy's convention: the path follows the third slash), `:memory:` or `sqlite://` for a
private in-memory store (tests, dry runs). `?lock_timeout=S` sets how long a writer waits for
another process's lock (default 60 s, as MySQL's option of the same name); after that the
operation fails with a StateError naming the file.
"""
from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from etl.config import ConfigError
from etl.state.base import StateError
from etl.state.sql import SqlStateStore

MEMORY = ":memory:"
_MIN_SQLITE = (3, 24, 0)  # UPSERT (INSERT ... ON CONFLICT DO UPDATE)
DEFAULT_LOCK_TIMEOUT = 60.0   # seconds a writer waits for another process's lock on the file


def sqlite_path(url: str | os.PathLike[str]) -> str:
    """The file path a state URL names (or ':memory:')."""
    return _parse(url)[0]


def _parse(url: str | os.PathLike[str]) -> tuple[str, float]:
    """(file path or ':memory:', lock timeout in seconds: `?lock_timeout=S`, default 60)."""
    text = os.fspath(url).strip()
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        return (text if text == MEMORY else os.path.expanduser(text)), DEFAULT_LOCK_TIMEOUT
    parts = urlsplit(text)
    if parts.scheme.split("+")[0] != "sqlite":
        raise ConfigError(f"not a SQLite state URL: scheme {parts.scheme!r}")
    options = parse_qs(parts.query, keep_blank_values=True)
    if parts.fragment or set(options) - {"lock_timeout"}:
        raise ConfigError(f"SQLite state URL {text!r}: the only option is ?lock_timeout=SECONDS")
    lock_timeout = DEFAULT_LOCK_TIMEOUT
    if options:
        try:
            lock_timeout = float(options["lock_timeout"][-1])
        except ValueError:
            lock_timeout = -1.0
        if not 0 <= lock_timeout < 1e6:
            raise ConfigError(f"SQLite state URL {text!r}: lock_timeout must be a number of seconds >= 0")
    if parts.netloc:
        raise ConfigError(f"SQLite state URL {text!r} has a host part: write sqlite:///relative/path "
                          "or sqlite:////absolute/path")
    path = unquote(parts.path)
    if path in ("", "/"):
        return MEMORY, lock_timeout
    path = path[1:]  # the slash after the (empty) host is not part of the path
    return (path if path == MEMORY else os.path.expanduser(path)), lock_timeout


class _SomeTaken(Exception):
    """A batch insert met keys already taken (undone; redone row by row)."""


class SQLiteStateStore(SqlStateStore):
    TYPES = {
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "key": "TEXT",
        "name": "TEXT",
        "hash": "TEXT",
        "text": "TEXT",
        "bigint": "INTEGER",
        "ts": "TEXT",
        "table": "",
    }
    BEGIN_WRITE = "BEGIN IMMEDIATE"
    DB_ERRORS = (sqlite3.Error,)

    def __init__(self, path: str | os.PathLike[str], busy_timeout_s: float = DEFAULT_LOCK_TIMEOUT) -> None:
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise StateError(f"SQLite {sqlite3.sqlite_version} is too old for the state store "
                             f"(needs {'.'.join(map(str, _MIN_SQLITE))}+): use a newer Python build")
        self.path = os.fspath(path)
        self.busy_timeout_s = busy_timeout_s
        self._locked_out = False   # a lock timeout happened and no statement went through since
        if self.path != MEMORY:
            parent = Path(self.path).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StateError(f"state store {self.path}: cannot create directory {parent} ({e.strerror}); "
                                 "point CRM_ETL_STATE at a writable place") from e
            if Path(self.path).is_dir():
                raise StateError(f"state store {self.path} is a directory: CRM_ETL_STATE must name a file")
        super().__init__(self.path)

    @classmethod
    def from_url(cls, url: str | os.PathLike[str]) -> SQLiteStateStore:
        path, lock_timeout = _parse(url)
        return cls(path, busy_timeout_s=lock_timeout)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                               check_same_thread=False)  # shared between threads under our lock
        try:
            if self.path != MEMORY:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StateError(f"state store {self.path}: SQLite cannot use WAL mode here (got {mode!r}); "
                                     "put the file on a local file system")
            conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StateError(f"state store {self.path} is not a usable SQLite database ({e}); "
                             "move it away or point CRM_ETL_STATE at another file") from e
        except BaseException:
            conn.close()
            raise
        return conn

    def _insert_missing(self, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[bool]:
        """All rows by one executemany (a statement per row costs far more); when fewer rows went
        in than were given, that is undone and row by row tells which rows did."""
        if len(rows) > 1:
            try:
                with self.transaction():  # a savepoint inside the caller's transaction
                    if self._exec_many(self._insert_ignore(table, cols), rows) != len(rows):
                        raise _SomeTaken
                return [True] * len(rows)
            except _SomeTaken:
                pass
        return super()._insert_missing(table, cols, rows)

    @staticmethod
    def _is_locked(e: BaseException) -> bool:
        return isinstance(e, sqlite3.OperationalError) and "locked" in str(e)

    def _hint(self, e: BaseException) -> str:
        if not self._is_locked(e):
            return ""
        still = " and still does" if self._locked_out else ""
        return (f" (another process held the file locked for more than lock_timeout = "
                f"{self.busy_timeout_s:g} s{still}; nothing of this operation was kept: find the holder, "
                f"e.g. `fuser {self.path}`, and rerun when it is done)")

    def _failed(self, e: BaseException) -> None:
        # The whole lock_timeout was waited once: while the file stays locked, later statements
        # (the run's last state writes, its report) fail at once instead of waiting again each.
        if self._is_locked(e) and not self._locked_out and self._conn is not None:
            self._locked_out = True
            self._conn.execute("PRAGMA busy_timeout = 0")

    def _succeeded(self) -> None:
        if self._locked_out and self._conn is not None:
            self._locked_out = False
            self._conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")

    def _insert_ignore(self, table: str, cols: Sequence[str]) -> str:
        return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) ON CONFLICT DO NOTHING"

    def _upsert(self, table: str, cols: Sequence[str], key: Sequence[str], assignments: str) -> str:
        updates = self._new_values(assignments, r"excluded.\1")
        return (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}")

    def integrity_check(self) -> list[str]:
        rows: list[tuple[Any, ...]] = self._query("PRAGMA integrity_check")
        problems = [str(r[0]) for r in rows if str(r[0]) != "ok"]
        return problems
