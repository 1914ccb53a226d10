"""The portal's data: one SQLite file (WAL), inspectable with any SQLite client.

Entities are JSON documents (`doc`) keyed by an integer id; hot lookups have expression indexes
on `json_extract(doc, '$.FIELD')` (RQ_INN, ORIGIN_ID, owners), which the list filters use
because they generate exactly that expression. Multifields (PHONE/EMAIL/...) live in their own
table with a normalised value for duplicate search; contact-company links in another.

One connection shared by all server threads behind a lock: every HTTP request runs in one
transaction (`transaction()`), every method call inside it in a savepoint, so a failed command
leaves nothing behind while its batch neighbours stay. synchronous=NORMAL: no fsync per commit.
"""
from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from etl.sandbox.bitrix24.schema import RU_PRESETS
from etl.sandbox.bitrix24.values import iso

ENTITY_TABLES = ("company", "contact", "requisite", "bankdetail", "preset", "address")
SCHEMA_VERSION = "1"

_DDL = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
    *(f"CREATE TABLE IF NOT EXISTS {t} (id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL)"
      for t in ENTITY_TABLES),
    """CREATE TABLE IF NOT EXISTS multifield (
         id INTEGER PRIMARY KEY AUTOINCREMENT, entity TEXT NOT NULL, entity_id INTEGER NOT NULL,
         type_id TEXT NOT NULL, value_type TEXT NOT NULL, value TEXT NOT NULL, norm TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS multifield_owner ON multifield (entity, entity_id)",
    "CREATE INDEX IF NOT EXISTS multifield_norm ON multifield (type_id, norm, entity)",
    "CREATE INDEX IF NOT EXISTS multifield_value ON multifield (type_id, value, entity)",
    """CREATE TABLE IF NOT EXISTS contact_company (
         contact_id INTEGER NOT NULL, company_id INTEGER NOT NULL, sort INTEGER NOT NULL,
         role_id INTEGER NOT NULL DEFAULT 0, is_primary TEXT NOT NULL,
         PRIMARY KEY (contact_id, company_id)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS contact_company_company ON contact_company (company_id)",
    "CREATE TABLE IF NOT EXISTS user_field (entity TEXT NOT NULL, name TEXT NOT NULL, "
    "PRIMARY KEY (entity, name)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS company_origin ON company (json_extract(doc,'$.ORIGIN_ID'))",
    "CREATE INDEX IF NOT EXISTS contact_origin ON contact (json_extract(doc,'$.ORIGIN_ID'))",
    "CREATE INDEX IF NOT EXISTS requisite_inn ON requisite (json_extract(doc,'$.RQ_INN'))",
    "CREATE INDEX IF NOT EXISTS requisite_owner ON requisite "
    "(json_extract(doc,'$.ENTITY_ID'), json_extract(doc,'$.ENTITY_TYPE_ID'))",
    "CREATE INDEX IF NOT EXISTS bankdetail_owner ON bankdetail (json_extract(doc,'$.ENTITY_ID'))",
    "CREATE INDEX IF NOT EXISTS address_owner ON address "
    "(json_extract(doc,'$.ENTITY_ID'), json_extract(doc,'$.ENTITY_TYPE_ID'), json_extract(doc,'$.TYPE_ID'))",
]


def _casefold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


class Store:
    def __init__(self, path: str | Path | None = None) -> None:
        self.temporary = path is None
        if path is None:
            fd, name = tempfile.mkstemp(prefix="bitrix24-emulator-", suffix=".sqlite")
            os.close(fd)
            path = name
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                                     cached_statements=512)
        self._conn.create_function("casefold", 1, _casefold, deterministic=True)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._closed = False
        with self.transaction():
            for stmt in _DDL:
                self._conn.execute(stmt)
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            self._seed_presets()
        self._user_fields: dict[str, set[str]] = {}
        for entity, name in self._conn.execute("SELECT entity, name FROM user_field ORDER BY entity, name"):
            self._user_fields.setdefault(entity, set()).add(name)

    def _seed_presets(self) -> None:
        if self._conn.execute("SELECT 1 FROM preset LIMIT 1").fetchone():
            return
        now = iso(time.time())
        for pid, xml_id, name in RU_PRESETS:
            doc = {"ENTITY_TYPE_ID": 8, "COUNTRY_ID": 1, "NAME": name, "XML_ID": xml_id, "ACTIVE": "Y",
                   "SORT": 500, "DATE_CREATE": now, "DATE_MODIFY": now, "CREATED_BY_ID": 1, "MODIFY_BY_ID": 1}
            self._conn.execute("INSERT INTO preset (id, doc) VALUES (?, ?)", (pid, dumps(doc)))

    # --- transactions ---------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            self._conn.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._conn.execute("SAVEPOINT call")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK TO call")
            self._conn.execute("RELEASE call")
            raise
        self._conn.execute("RELEASE call")

    def close(self) -> None:
        with self.lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()
        if self.temporary:
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(f"{self.path}{suffix}")
                except FileNotFoundError:
                    pass

    # --- documents ------------------------------------------------------------------------------
    def insert(self, table: str, doc: dict[str, Any]) -> int:
        cur = self._conn.execute(f"INSERT INTO {table} (doc) VALUES (?)", (dumps(doc),))
        return int(cur.lastrowid)

    def replace(self, table: str, entity_id: int, doc: dict[str, Any]) -> None:
        self._conn.execute(f"UPDATE {table} SET doc = ? WHERE id = ?", (dumps(doc), entity_id))

    def get(self, table: str, entity_id: int) -> dict[str, Any] | None:
        row = self._conn.execute(f"SELECT doc FROM {table} WHERE id = ?", (entity_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def exists(self, table: str, entity_id: int) -> bool:
        return self._conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (entity_id,)).fetchone() is not None

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = self._conn.execute(sql, tuple(params)).fetchone()
        return row[0] if row else None

    def counts(self) -> dict[str, int]:
        with self.lock:
            out = {t: self.scalar(f"SELECT count(*) FROM {t}") for t in ENTITY_TABLES}
            out["multifield"] = self.scalar("SELECT count(*) FROM multifield")
            out["contact_company"] = self.scalar("SELECT count(*) FROM contact_company")
            return out

    # --- user fields (UF_CRM_*), registered on first write --------------------------------------
    def register_user_fields(self, entity: str, names: Iterable[str]) -> None:
        known = self._user_fields.setdefault(entity, set())
        for name in names:
            if name not in known:
                self._conn.execute("INSERT OR IGNORE INTO user_field VALUES (?, ?)", (entity, name))
                known.add(name)

    def user_fields(self, entity: str) -> list[str]:
        return sorted(self._user_fields.get(entity, ()))

    # --- multifields ----------------------------------------------------------------------------
    def multifields(self, entity: str, ids: list[int]) -> dict[int, list[tuple[int, str, str, str]]]:
        """entity id -> [(multifield id, TYPE_ID, VALUE_TYPE, VALUE)] in id order."""
        out: dict[int, list[tuple[int, str, str, str]]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for mid, owner, type_id, value_type, value in self._conn.execute(
                    f"SELECT id, entity_id, type_id, value_type, value FROM multifield "
                    f"WHERE entity = ? AND entity_id IN ({marks}) ORDER BY id", (entity, *chunk)):
                out.setdefault(owner, []).append((mid, type_id, value_type, value))
        return out

    def multifield(self, mf_id: int) -> tuple[str, int, str] | None:
        """(entity, entity id, TYPE_ID) of one multifield value."""
        return self._conn.execute("SELECT entity, entity_id, type_id FROM multifield WHERE id = ?",
                                  (mf_id,)).fetchone()

    def add_multifield(self, entity: str, entity_id: int, type_id: str, value_type: str, value: str,
                       norm: str) -> None:
        self._conn.execute("INSERT INTO multifield (entity, entity_id, type_id, value_type, value, norm) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (entity, entity_id, type_id, value_type, value, norm))

    def update_multifield(self, mf_id: int, value_type: str, value: str, norm: str) -> None:
        self._conn.execute("UPDATE multifield SET value_type = ?, value = ?, norm = ? WHERE id = ?",
                           (value_type, value, norm, mf_id))

    def delete_multifield(self, mf_id: int) -> None:
        self._conn.execute("DELETE FROM multifield WHERE id = ?", (mf_id,))

    def has_multifield(self, entity: str, entity_id: int, type_id: str) -> bool:
        return self._conn.execute("SELECT 1 FROM multifield WHERE entity = ? AND entity_id = ? AND type_id = ? "
                                  "LIMIT 1", (entity, entity_id, type_id)).fetchone() is not None

    def find_by_norm(self, type_id: str, norms: list[str], entity: str, limit: int) -> list[int]:
        marks = ",".join("?" * len(norms))
        # by the norm index: left to itself SQLite walks all of the entity's values in id order (to
        # spare the sort), a cost that grows with the CRM (36 ms instead of 1 ms at 124k values)
        return [r[0] for r in self._conn.execute(
            f"SELECT DISTINCT entity_id FROM multifield INDEXED BY multifield_norm"
            f" WHERE type_id = ? AND entity = ? AND norm IN ({marks}) ORDER BY entity_id LIMIT ?",
            (type_id, entity, *norms, limit))]

    # --- contact <-> company links --------------------------------------------------------------
    def links(self, contact_id: int) -> list[tuple[int, int, int, str]]:
        """[(company id, sort, role id, is primary)] ordered by sort."""
        return self._conn.execute("SELECT company_id, sort, role_id, is_primary FROM contact_company "
                                  "WHERE contact_id = ? ORDER BY sort, company_id", (contact_id,)).fetchall()

    def set_links(self, contact_id: int, links: list[tuple[int, int, int, str]]) -> None:
        self._conn.execute("DELETE FROM contact_company WHERE contact_id = ?", (contact_id,))
        self._conn.executemany("INSERT INTO contact_company VALUES (?, ?, ?, ?, ?)",
                               [(contact_id, c, s, r, p) for c, s, r, p in links])

    def contacts_of(self, company_id: int) -> list[int]:
        return [r[0] for r in self._conn.execute(
            "SELECT contact_id FROM contact_company WHERE company_id = ? ORDER BY contact_id", (company_id,))]
