"""Where shop A's rows go: always a SQLite file (text columns as BLOBs holding the exact bytes), and
optionally a MySQL/MariaDB database created from the shop's own DDL.

Bytes reach MySQL's latin1 columns unchanged because they are sent as binary parameters
(pymysql writes `_binary X'...'`): decoding them to str first would not survive pymysql's cp1252
encoder for bytes 0x80-0x9F, which UTF-8 Cyrillic is full of.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from etl.sandbox.generator.shop_a import (COMPANY_COLUMNS, COMPANY_TEXT, CONTACT_COLUMNS, CONTACT_TEXT,
                                          ShopARow)
from etl.sandbox.generator.shop_a_ddl import ddl_statements
from etl.mysql_url import parse_mysql_url, wire_password
from etl.secrets import scrub

FLUSH_ROWS = 2000
TABLES = ("b2b_company", "b2b_contact")
COLUMNS = {"b2b_company": COMPANY_COLUMNS, "b2b_contact": CONTACT_COLUMNS}
TEXT = {"b2b_company": set(COMPANY_TEXT), "b2b_contact": set(CONTACT_TEXT)}
DATETIME = {"created_at", "updated_at"}

SQLITE_DDL = """
CREATE TABLE b2b_company (
  id INTEGER PRIMARY KEY, name BLOB NOT NULL, legal_form BLOB, inn BLOB, kpp BLOB, ogrn BLOB,
  phone BLOB, email BLOB, legal_address BLOB, bank_name BLOB, bik BLOB, account BLOB,
  corr_account BLOB, is_active INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL);
CREATE INDEX ix_company_updated ON b2b_company (updated_at, id);
CREATE TABLE b2b_contact (
  id INTEGER PRIMARY KEY, company_id INTEGER NOT NULL, full_name BLOB, position BLOB, phone BLOB,
  mobile BLOB, email BLOB, is_deleted INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL);
CREATE INDEX ix_contact_company ON b2b_contact (company_id);
CREATE INDEX ix_contact_updated ON b2b_contact (updated_at, id);
"""


class GeneratorError(Exception):
    """The generator cannot write where it was told to; the message says what to fix.
    `exit_code`: 2 for bad usage/configuration, 3 for an unreachable dependency (etl.cli)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def encoded(row: ShopARow) -> tuple:
    """The row's values in column order, text as the shop's bytes."""
    text = TEXT[row.table]
    out = []
    for col in COLUMNS[row.table]:
        v = row.values[col]
        if col in text and v is not None:
            v = v.encode(row.encoding)
        out.append(v)
    return tuple(out)


def _sqlite_value(v):
    return v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else v


class ShopASink:
    def __init__(self, sqlite_path: Path, mysql_dsn: str | None = None, *, replace: bool = False) -> None:
        self.rows = {t: 0 for t in TABLES}
        self._buffer: dict[str, list[tuple]] = {t: [] for t in TABLES}
        if sqlite_path.exists():
            sqlite_path.unlink()
        self._sqlite = sqlite3.connect(sqlite_path)
        # journal off (a failed run leaves an unusable file anyway), a small bounded page cache
        self._sqlite.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-512;"
                                   + SQLITE_DDL)
        self._mysql = MySQLTarget(mysql_dsn, replace=replace) if mysql_dsn else None
        self.mysql_database = self._mysql.database if self._mysql else None

    def add(self, row: ShopARow) -> None:
        buf = self._buffer[row.table]
        buf.append(encoded(row))
        self.rows[row.table] += 1
        if len(buf) >= FLUSH_ROWS:
            self._flush(row.table)

    def _flush(self, table: str) -> None:
        rows = self._buffer[table]
        if not rows:
            return
        cols = COLUMNS[table]
        self._sqlite.executemany(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [tuple(_sqlite_value(v) for v in r) for r in rows])
        if self._mysql:
            self._mysql.insert(table, cols, rows)
        rows.clear()

    def close(self) -> None:
        for t in TABLES:
            self._flush(t)
        self._sqlite.commit()
        self._sqlite.close()
        if self._mysql:
            self._mysql.close()


class MySQLTarget:
    """The shop's tables in a MySQL/MariaDB database (`mysql://user:pass@host:port/db`)."""

    def __init__(self, dsn: str, *, replace: bool) -> None:
        import pymysql

        u = parse_mysql_url(dsn, label="--mysql-dsn", help="mysql://user:password@host:3306/database",
                            error=GeneratorError)
        u.done()
        self.database = u.database
        try:
            self._conn = pymysql.connect(host=u.host, port=u.port, user=u.user or "root",
                                         password=wire_password(u.password), database=self.database,
                                         charset="latin1", autocommit=False, connect_timeout=10)
        except pymysql.MySQLError as e:
            raise GeneratorError(scrub(f"cannot open MySQL database {self.database!r}: {e}; check "
                                       "that the server runs and the database exists"), 3) from None
        with self._conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            existing = sorted(r[0] for r in cur.fetchall() if r[0] in TABLES)
            if existing and not replace:
                raise GeneratorError(f"MySQL database {self.database!r} already has {', '.join(existing)}: "
                                     "use an empty database, or allow replacing them (--replace)")
            for t in existing:
                cur.execute(f"DROP TABLE `{t}`")
            for statement in ddl_statements():
                cur.execute(statement)
        self._conn.commit()

    def insert(self, table: str, cols: Sequence[str], rows: list[tuple]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
                            rows)
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()

