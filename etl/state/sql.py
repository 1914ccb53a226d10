"""`StateStore` on any DB-API database, in portable SQL.

Everything a backend must say in its own dialect is a hook on this class: how to connect, the
column types, how to begin a write transaction, upsert and insert-or-ignore syntax, the driver's
paramstyle, its exception types, the integrity check, and how a migration is serialised and its
DDL applied. SQLite (sqlite.py) and MySQL (mysql.py) fill them in.

Concurrency: one connection per store, guarded by a re-entrant lock. A `transaction()` holds the
lock from BEGIN to COMMIT, so other threads wait for it instead of interleaving statements with
it; reads take the lock per query. Iterators read page by page (keyset pagination), so they hold
neither the lock nor a cursor while the caller works on a page.

Writes that lock several rows visit them in key order (sorted batches), so two processes writing
overlapping batches wait for each other instead of deadlocking on a server with row locks (not
rejects and pending: the order they are given in is the order they are read back in).
"""
from __future__ import annotations

import os
import re
import socket
import threading
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from etl.dto import Reject
from etl.secrets import scrub
from etl.state import codec, schema
from etl.state.base import (
    INTENT, RUNNING, WRITTEN, ContactKey, EgrulCacheEntry, EntityState, LockInfo, PendingItem,
    RejectRow, RunInfo, SourceKey, StateError, StateStore,
)

T = TypeVar("T")
CHUNK = 500        # keys per IN (...) list: far below every database's parameter limit
PAGE = 1000        # rows per page when iterating
_NEW_COL = re.compile(r"\bnew\.(\w+)")

_ENTITY_COLS = "identity, entity_type, bitrix_id, status, payload_hash, intent_hash, run_id, updated_at"
_RUN_COLS = "run_id, mode, source, status, started_at, finished_at, counts, argv, host, pid"
_REJECT_COLS = ("reject_id, source, kind, source_id, reason, detail, raw, run_id, first_run_id, run_count,"
                " first_rejected_at, rejected_at")
_PENDING_COLS = ("pending_id, source, kind, source_id, reason, detail, raw, attempts, first_parked_at,"
                 " last_tried_at, run_id")
_LOCK_COLS = "name, holder, pid, host, acquired_at, heartbeat_at"


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class SqlStateStore(StateStore):
    """The portable implementation; a backend subclass supplies the dialect hooks below."""

    # -- dialect hooks ---------------------------------------------------------------------------
    # The driver's cursor.rowcount must count the rows an UPDATE *matched* (SQLite does; MySQL
    # needs CLIENT.FOUND_ROWS), and 0/1 for an insert-or-ignore of one row.
    TYPES: Mapping[str, str]                 # fills schema placeholders
    BEGIN_WRITE = "BEGIN"                    # starts a transaction that will write
    DB_ERRORS: tuple[type[BaseException], ...] = ()  # the driver's exception base classes

    @abstractmethod
    def _connect(self) -> Any:
        """A new DB-API connection in autocommit mode (transactions are begun explicitly)."""

    @abstractmethod
    def _insert_ignore(self, table: str, cols: Sequence[str]) -> str:
        """INSERT that silently skips a row whose unique key exists (rowcount 0)."""

    @abstractmethod
    def _upsert(self, table: str, cols: Sequence[str], key: Sequence[str], assignments: str) -> str:
        """INSERT ... on key conflict UPDATE `assignments`, where `new.col` is the offered value and
        `table.col` the stored one (assignments are listed so that none reads a column an
        earlier one already changed: MySQL applies them left to right)."""

    @abstractmethod
    def integrity_check(self) -> list[str]: ...

    def _sql(self, text: str) -> str:
        """Statement text in the driver's paramstyle (written here with `?`)."""
        return text

    def _new_values(self, assignments: str, ref: str) -> str:
        return _NEW_COL.sub(ref, assignments)

    def _insert_missing(self, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[bool]:
        """Insert each row unless its unique key is taken (by anyone, committed or not); returns
        which rows went in. Rows go in the order given (callers sort them: one lock order for all).
        A backend with costly round trips sends many rows per statement instead."""
        sql = self._insert_ignore(table, cols)
        return [self._exec(sql, row) == 1 for row in rows]

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Held around a migration so that two processes opening a new store migrate it once.
        SQLite needs nothing: the migration's write transaction (BEGIN IMMEDIATE) serialises them."""
        yield

    def _apply_ddl(self, statement: str) -> None:
        """Run one schema statement of a migration."""
        self._exec(statement)

    # -- lifecycle -------------------------------------------------------------------------------
    def __init__(self, location: str) -> None:
        self.location = location
        self.schema_version = 0
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: Any = None
        with self._guard("open"):
            self._conn = self._connect()
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Driver errors become StateError naming the store and the operation."""
        try:
            yield
        except self.DB_ERRORS as e:
            hint = self._hint(e)
            self._failed(e)
            raise StateError(f"state store {self.location}: {what} failed: "
                             f"{type(e).__name__}: {scrub(str(e))}{hint}") from e
        self._succeeded()

    def _hint(self, e: BaseException) -> str:
        """What to do about a driver error, when the backend knows (appended to the message)."""
        return ""

    def _failed(self, e: BaseException) -> None:
        """Called after a driver error (a backend may change how it waits next time)."""

    def _succeeded(self) -> None:
        """Called after a statement went through."""

    def _cursor(self) -> Any:
        if self._conn is None:
            raise StateError(f"state store {self.location} is closed")
        return self._conn.cursor()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            cur = self._cursor()
            depth = self._depth
            savepoint = f"sp{depth}"
            with self._guard("begin transaction"):
                cur.execute(self.BEGIN_WRITE if depth == 0 else f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                try:
                    if depth == 0:
                        cur.execute("ROLLBACK")
                    else:
                        cur.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                        cur.execute(f"RELEASE SAVEPOINT {savepoint}")
                except self.DB_ERRORS:
                    pass  # the original error is the one worth reporting
                raise
            self._depth -= 1
            try:
                with self._guard("commit"):
                    cur.execute("COMMIT" if depth == 0 else f"RELEASE SAVEPOINT {savepoint}")
            except StateError:
                if depth == 0:
                    try:
                        cur.execute("ROLLBACK")
                    except self.DB_ERRORS:
                        pass
                raise

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except self.DB_ERRORS:
                    pass

    def _migrate(self) -> None:
        with self._migration_lock(), self.transaction():
            self._apply_ddl(schema.render(schema.SCHEMA_VERSION_TABLE, self.TYPES))
            row = self._one("SELECT MAX(version) FROM schema_version")
            current = int(row[0]) if row and row[0] is not None else 0
            if current > schema.LATEST_VERSION:
                raise StateError(
                    f"state store {self.location} has schema version {current}, newer than this "
                    f"crm-etl knows ({schema.LATEST_VERSION}): upgrade crm-etl, or point CRM_ETL_STATE "
                    "at another store")
            for m in schema.MIGRATIONS:
                if m.version <= current:
                    continue
                for statement in m.statements:
                    self._apply_ddl(schema.render(statement, self.TYPES))
                self._exec("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                           (m.version, m.description, codec.ts_to_db(codec.utc_now())))
                current = m.version
            self.schema_version = current

    # -- statement helpers (callers hold the lock: inside transaction() or via _query) -----------
    def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self._cursor()
        with self._guard("write"):
            cur.execute(self._sql(sql), params)
            return cur.rowcount

    def _exec_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """One statement run for every row (the driver sends many rows per statement where it
        can); returns the rows it changed, summed."""
        if not rows:
            return 0
        cur = self._cursor()
        with self._guard("write"):
            cur.executemany(self._sql(sql), rows)
            return cur.rowcount

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            cur = self._cursor()
            with self._guard("read"):
                cur.execute(self._sql(sql), params)
                return list(cur.fetchall())

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

    def _pages(self, cols: str, table: str, id_col: str, where: list[str],
               params: list[Any]) -> Iterator[tuple[Any, ...]]:
        """Rows in id order, fetched PAGE at a time (keyset pagination: no lock held between pages)."""
        last = 0
        cond = " AND ".join([*where, f"{id_col} > ?"])
        sql = f"SELECT {cols} FROM {table} WHERE {cond} ORDER BY {id_col} LIMIT {PAGE}"
        while True:
            rows = self._query(sql, [*params, last])
            yield from rows
            if len(rows) < PAGE:
                return
            last = rows[-1][0]

    @staticmethod
    def _filters(**given: Any) -> tuple[list[str], list[Any]]:
        where = [f"{col} = ?" for col, v in given.items() if v is not None]
        return where, [v for v in given.values() if v is not None]

    @staticmethod
    def _now(now: datetime | None = None) -> str:
        return codec.ts_to_db(now or codec.utc_now())

    # -- runs ------------------------------------------------------------------------------------
    def start_run(self, mode: str, source: str, argv: str = "") -> int:
        with self.transaction():
            cur = self._cursor()
            with self._guard("start run"):
                cur.execute(self._sql(
                    "INSERT INTO runs (mode, source, status, argv, host, pid, started_at, counts)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                    (codec.clean_text(mode), codec.clean_text(source), RUNNING,
                     codec.clean_text(scrub(argv), codec.DETAIL_LIMIT), socket.gethostname(), os.getpid(),
                     self._now(), "{}"))
                return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str, counts: Mapping[str, Any]) -> None:
        with self.transaction():
            n = self._exec("UPDATE runs SET status = ?, finished_at = ?, counts = ? WHERE run_id = ?",
                           (codec.clean_text(status), self._now(), codec.to_json(dict(counts)), run_id))
        if n != 1:
            raise StateError(f"state store {self.location}: no run {run_id} to finish "
                             "(start it with start_run)")

    @staticmethod
    def _run(row: tuple[Any, ...]) -> RunInfo:
        counts = codec.from_json(row[6]) if row[6] else {}
        return RunInfo(run_id=int(row[0]), mode=row[1], source=row[2], status=row[3],
                       started_at=codec.ts_from_db(row[4]), finished_at=codec.ts_from_db(row[5]),
                       counts=counts if isinstance(counts, dict) else {"value": counts},
                       argv=row[7], host=row[8], pid=int(row[9]))

    def get_run(self, run_id: int) -> RunInfo | None:
        row = self._one(f"SELECT {_RUN_COLS} FROM runs WHERE run_id = ?", (run_id,))
        return self._run(row) if row else None

    def last_run(self, source: str | None = None, mode: str | None = None,
                 status: str | None = None) -> RunInfo | None:
        runs = self._select_runs(1, source=source, mode=mode, status=status)
        return runs[0] if runs else None

    def list_runs(self, limit: int = 20, source: str | None = None) -> list[RunInfo]:
        return self._select_runs(limit, source=source)

    def _select_runs(self, limit: int, **filters: Any) -> list[RunInfo]:
        where, params = self._filters(**filters)
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._query(f"SELECT {_RUN_COLS} FROM runs{cond} ORDER BY run_id DESC LIMIT ?",
                           [*params, int(limit)])
        return [self._run(r) for r in rows]

    # -- entities --------------------------------------------------------------------------------
    @staticmethod
    def _identity(identity: str) -> str:
        if not isinstance(identity, str) or not identity or len(identity) > codec.KEY_LIMIT:
            raise ValueError(f"identity must be a non-empty string of at most {codec.KEY_LIMIT} "
                             f"characters, got {str(identity)[:80]!r}")
        return codec.clean_text(identity)

    def get_entities(self, identities: Iterable[str]) -> dict[str, EntityState]:
        wanted = {i for i in identities if isinstance(i, str) and 0 < len(i) <= codec.KEY_LIMIT}
        out: dict[str, EntityState] = {}
        for chunk in chunked(wanted, CHUNK):
            for r in self._query(f"SELECT {_ENTITY_COLS} FROM entities WHERE identity IN ({_marks(len(chunk))})",
                                 chunk):
                out[r[0]] = EntityState(
                    identity=r[0], entity_type=r[1], bitrix_id=None if r[2] is None else int(r[2]),
                    status=r[3], payload_hash=r[4], intent_hash=r[5],
                    run_id=None if r[6] is None else int(r[6]), updated_at=codec.ts_from_db(r[7]))
        return out

    def record_intents(self, items: Iterable[tuple[str, str, str]], run_id: int | None = None) -> set[str]:
        batch: dict[str, tuple[str, str]] = {}
        for identity, entity_type, payload_hash in items:
            batch[self._identity(identity)] = (codec.clean_text(entity_type), codec.clean_text(payload_hash))
        if not batch:
            return set()
        now = self._now()
        cols = ("identity", "entity_type", "bitrix_id", "status", "payload_hash", "intent_hash", "run_id",
                "created_at", "updated_at")
        rows = [(identity, entity_type, None, INTENT, None, payload_hash, run_id, now, now)
                for identity, (entity_type, payload_hash) in sorted(batch.items())]  # key order
        # for rows known to exist: the UPDATE the docstring describes, as one batched statement
        back_to_intent = self._upsert("entities", cols, ("identity",),
                                      "status = new.status, intent_hash = new.intent_hash,"
                                      " run_id = COALESCE(new.run_id, entities.run_id), updated_at = new.updated_at")
        with self.transaction():
            existing = set(self.get_entities(batch))
            new = [row for row in rows if row[0] not in existing]
            created = {row[0] for row, went_in in zip(new, self._insert_missing("entities", cols, new)) if went_in}
            self._exec_many(back_to_intent, [row for row in rows if row[0] in existing])
        return created

    def record_written(self, items: Iterable[tuple[str, str, int, str]], run_id: int | None = None) -> None:
        now = self._now()
        rows = [(self._identity(identity), codec.clean_text(entity_type), int(bitrix_id), WRITTEN,
                 codec.clean_text(payload_hash), None, run_id, now, now)
                for identity, entity_type, bitrix_id, payload_hash in items]
        sql = self._upsert(
            "entities", ("identity", "entity_type", "bitrix_id", "status", "payload_hash", "intent_hash", "run_id",
                         "created_at", "updated_at"), ("identity",),
            "entity_type = new.entity_type, bitrix_id = new.bitrix_id, status = new.status,"
            " payload_hash = new.payload_hash, intent_hash = NULL,"
            " run_id = COALESCE(new.run_id, entities.run_id), updated_at = new.updated_at")
        rows.sort(key=lambda row: row[0])  # key order (stable: a later row for one identity stays later)
        with self.transaction():
            self._exec_many(sql, rows)

    # -- contact match index ---------------------------------------------------------------------
    @staticmethod
    def _contact_key(company_inn: str, kind: str, value: str) -> ContactKey:
        return (codec.fold_key(company_inn), codec.fold_key(kind), codec.fold_key(value))

    def _find_stored_keys(self, keys: Iterable[ContactKey]) -> dict[ContactKey, str]:
        out: dict[ContactKey, str] = {}
        for chunk in chunked(keys, CHUNK // 3):
            cond = " OR ".join(["(company_inn = ? AND kind = ? AND value = ?)"] * len(chunk))
            for inn, kind, value, identity in self._query(
                    f"SELECT company_inn, kind, value, identity FROM contact_keys WHERE {cond}",
                    [part for key in chunk for part in key]):
                out[(inn, kind, value)] = identity
        return out

    def find_contact_keys(self, keys: Iterable[ContactKey]) -> dict[ContactKey, str]:
        stored_of = {tuple(k): self._contact_key(*k) for k in keys}
        found = self._find_stored_keys(set(stored_of.values()))
        return {k: found[s] for k, s in stored_of.items() if s in found}

    def put_contact_keys(self, items: Iterable[tuple[str, str, str, str]]) -> dict[ContactKey, str]:
        conflicts: dict[ContactKey, str] = {}
        batch: dict[ContactKey, tuple[ContactKey, str]] = {}  # stored key -> (given key, identity)
        for inn, kind, value, identity in items:
            given, identity = (inn, kind, value), self._identity(identity)
            stored = self._contact_key(inn, kind, value)
            if stored in batch:
                if batch[stored][1] != identity:
                    conflicts[given] = batch[stored][1]
                continue
            batch[stored] = (given, identity)
        if not batch:
            return conflicts
        now = self._now()
        with self.transaction():
            holders = self._find_stored_keys(batch)
            new: list[tuple[str, str, str, str, str]] = []
            for stored, (given, identity) in sorted(batch.items()):  # key order
                if stored in holders:
                    if holders[stored] != identity:
                        conflicts[given] = holders[stored]
                else:
                    new.append((*stored, identity, now))
            went_in = self._insert_missing("contact_keys", ("company_inn", "kind", "value", "identity", "created_at"),
                                           new)
            lost = [row[:3] for row, ok in zip(new, went_in) if not ok]  # another writer inserted it since we looked
            if lost:
                for stored, holder in self._find_stored_keys(lost).items():
                    given, identity = batch[stored]
                    if holder != identity:
                        conflicts[given] = holder
        return conflicts

    def put_contact_names(self, items: Iterable[tuple[str, str, str, str]]) -> None:
        rows = {}
        for identity, last, first, middle in items:
            rows[self._identity(identity)] = tuple(codec.fold_key(codec.clean_text(v)) for v in (last, first, middle))
        if not rows:
            return
        now = self._now()
        with self.transaction():
            known = self.get_contact_names(rows)
            updates, inserts = [], []
            for identity, parts in sorted(rows.items()):  # key order
                old = known.get(identity)
                if old is not None:
                    parts = tuple(new or prev for new, prev in zip(parts, old))
                    if parts != old:
                        updates.append((*parts, now, identity))
                else:
                    inserts.append((identity, *parts, now))
            self._exec_many("UPDATE contact_names SET last_name = ?, first_name = ?, middle_name = ?,"
                            " updated_at = ? WHERE identity = ?", updates)
            self._insert_missing("contact_names", ("identity", "last_name", "first_name", "middle_name",
                                                   "updated_at"), inserts)

    def reassign_contact_keys(self, pairs: Iterable[tuple[str, str]]) -> int:
        moved = 0
        with self.transaction():
            for old, new in pairs:
                old, new = self._identity(old), self._identity(new)
                if old == new:
                    continue
                moved += self._exec("UPDATE contact_keys SET identity = ? WHERE identity = ?", (new, old))
                self._exec("DELETE FROM contact_names WHERE identity = ?", (old,))
        return moved

    def get_contact_names(self, identities: Iterable[str]) -> dict[str, tuple[str, str, str]]:
        wanted = {i for i in identities if isinstance(i, str) and 0 < len(i) <= codec.KEY_LIMIT}
        out: dict[str, tuple[str, str, str]] = {}
        for chunk in chunked(wanted, CHUNK):
            for r in self._query("SELECT identity, last_name, first_name, middle_name FROM contact_names"
                                 f" WHERE identity IN ({_marks(len(chunk))})", chunk):
                out[r[0]] = (r[1], r[2], r[3])
        return out

    # -- source map ------------------------------------------------------------------------------
    def map_sources(self, items: Iterable[tuple[str, str, str, str]]) -> None:
        now = self._now()
        rows = [(codec.fold_key(source), codec.fold_key(kind), codec.fold_key(source_id), self._identity(identity), now)
                for source, kind, source_id, identity in items]
        sql = self._upsert("source_map", ("source", "kind", "source_id", "identity", "updated_at"),
                           ("source", "kind", "source_id"),
                           "identity = new.identity, updated_at = new.updated_at")
        rows.sort(key=lambda row: row[:3])
        with self.transaction():
            self._exec_many(sql, rows)

    def identities_for_sources(self, source: str, kind: str, source_ids: Iterable[str]) -> dict[str, str]:
        stored_of: dict[str, str] = {}
        for sid in source_ids:
            stored_of.setdefault(codec.fold_key(sid), sid)
        out: dict[str, str] = {}
        scope = [codec.fold_key(source), codec.fold_key(kind)]
        for chunk in chunked(stored_of, CHUNK):
            for sid, identity in self._query(
                    "SELECT source_id, identity FROM source_map WHERE source = ? AND kind = ?"
                    f" AND source_id IN ({_marks(len(chunk))})", [*scope, *chunk]):
                out[stored_of[sid]] = identity
        return out

    # -- watermarks ------------------------------------------------------------------------------
    def get_watermark(self, name: str) -> str | None:
        row = self._one("SELECT value FROM watermarks WHERE name = ?", (codec.fold_key(name),))
        return None if row is None else row[0]

    def set_watermark(self, name: str, value: str) -> None:
        sql = self._upsert("watermarks", ("name", "value", "updated_at"), ("name",),
                           "value = new.value, updated_at = new.updated_at")
        with self.transaction():
            self._exec(sql, (codec.fold_key(name), codec.clean_text(value), self._now()))

    # -- EGRUL cache -----------------------------------------------------------------------------
    def get_egrul(self, inns: Iterable[str], fresh_days: Mapping[str, float] | None = None,
                  now: datetime | None = None) -> dict[str, EgrulCacheEntry]:
        now = now or codec.utc_now()
        out: dict[str, EgrulCacheEntry] = {}
        for chunk in chunked({codec.fold_key(i) for i in inns}, CHUNK):
            for inn, status, payload, checked_at in self._query(
                    f"SELECT inn, status, payload, checked_at FROM egrul_cache WHERE inn IN ({_marks(len(chunk))})",
                    chunk):
                entry = EgrulCacheEntry(inn=inn, status=status, payload=codec.from_json(payload),
                                        checked_at=codec.ts_from_db(checked_at))
                if fresh_days is None or self._fresh(entry, fresh_days, now):
                    out[inn] = entry
        return out

    @staticmethod
    def _fresh(entry: EgrulCacheEntry, fresh_days: Mapping[str, float], now: datetime) -> bool:
        days = fresh_days.get(entry.status)
        if days is None or entry.checked_at is None:
            return False
        age = codec.ts_from_db(now) - entry.checked_at
        return age.total_seconds() <= float(days) * 86400

    def put_egrul(self, entries: Iterable[EgrulCacheEntry]) -> None:
        now = self._now()
        rows = [(codec.fold_key(e.inn), codec.clean_text(e.status),
                 None if e.payload is None else codec.to_json(e.payload),
                 codec.ts_to_db(e.checked_at) if e.checked_at else now) for e in entries]
        sql = self._upsert("egrul_cache", ("inn", "status", "payload", "checked_at"), ("inn",),
                           "status = new.status, payload = new.payload, checked_at = new.checked_at")
        rows.sort(key=lambda row: row[0])
        with self.transaction():
            self._exec_many(sql, rows)

    # -- rejects ---------------------------------------------------------------------------------
    def add_rejects(self, run_id: int, rejects: Iterable[Reject]) -> int:
        sql = self._upsert(
            "rejects", ("source", "kind", "source_id", "reason", "detail", "raw", "run_id", "first_run_id",
                        "run_count", "first_rejected_at", "rejected_at"), ("source", "kind", "source_id"),
            "run_count = CASE WHEN rejects.run_id = new.run_id THEN rejects.run_count ELSE rejects.run_count + 1 END,"
            " run_id = new.run_id, reason = new.reason, detail = new.detail, raw = new.raw,"
            " rejected_at = new.rejected_at")
        total = 0
        now = self._now()
        with self.transaction():
            for chunk in chunked(rejects, PAGE):
                rows = []
                for r in chunk:
                    reason = codec.clean_text(r.reason, codec.KEY_LIMIT)
                    detail = codec.clean_text(r.detail, codec.DETAIL_LIMIT)
                    raw = codec.raw_to_json(r.raw)
                    source_id = codec.clean_text(r.source_id)
                    if not source_id:
                        source_id = "~" + codec.digest(reason, detail, raw or "")
                    rows.append((codec.fold_key(r.source), codec.fold_key(r.kind), codec.fold_key(source_id),
                                 reason, detail, raw, run_id, run_id, 1, now, now))
                self._exec_many(sql, rows)
                total += len(rows)
        return total

    def resolve_rejects(self, keys: Iterable[SourceKey]) -> int:
        return self._delete_keyed("rejects", keys)

    def _delete_keyed(self, table: str, keys: Iterable[SourceKey]) -> int:
        rows = sorted({(codec.fold_key(source), codec.fold_key(kind), codec.fold_key(source_id))
                       for source, kind, source_id in keys})  # key order, each row once
        n = 0
        with self.transaction():
            for chunk in chunked(rows, CHUNK // 3):  # many rows per statement: one round trip each
                cond = " OR ".join(["(source = ? AND kind = ? AND source_id = ?)"] * len(chunk))
                n += self._exec(f"DELETE FROM {table} WHERE {cond}", [part for key in chunk for part in key])
        return n

    def iter_rejects(self, run_id: int | None = None, reason: str | None = None,
                     source: str | None = None, kind: str | None = None) -> Iterator[RejectRow]:
        where, params = self._filters(run_id=run_id, reason=reason, source=source, kind=kind)
        for r in self._pages(_REJECT_COLS, "rejects", "reject_id", where, params):
            yield RejectRow(source=r[1], kind=r[2], source_id=r[3], reason=r[4], detail=r[5],
                            raw=codec.from_json(r[6]), run_id=int(r[7]), first_run_id=int(r[8]),
                            run_count=int(r[9]), first_rejected_at=codec.ts_from_db(r[10]),
                            rejected_at=codec.ts_from_db(r[11]))

    def count_rejects(self, run_id: int | None = None, source: str | None = None) -> dict[str, int]:
        return self._count_by_reason("rejects", run_id=run_id, source=source)

    def _count_by_reason(self, table: str, **filters: Any) -> dict[str, int]:
        where, params = self._filters(**filters)
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._query(f"SELECT reason, COUNT(*) FROM {table}{cond} GROUP BY reason ORDER BY reason", params)
        return {reason: int(n) for reason, n in rows}

    # -- pending ---------------------------------------------------------------------------------
    def park(self, run_id: int, items: Iterable[PendingItem]) -> int:
        sql = self._upsert(
            "pending", ("source", "kind", "source_id", "reason", "detail", "raw", "attempts", "run_id",
                        "first_parked_at", "last_tried_at"), ("source", "kind", "source_id"),
            "attempts = pending.attempts + 1, reason = new.reason, detail = new.detail, raw = new.raw,"
            " run_id = new.run_id, last_tried_at = new.last_tried_at")
        total = 0
        now = self._now()
        with self.transaction():
            for chunk in chunked(items, PAGE):
                self._exec_many(sql, [
                    (codec.fold_key(p.source), codec.fold_key(p.kind), codec.fold_key(p.source_id),
                     codec.clean_text(p.reason, codec.KEY_LIMIT), codec.clean_text(p.detail, codec.DETAIL_LIMIT),
                     codec.raw_to_json(p.raw), 1, run_id, now, now) for p in chunk])
                total += len(chunk)
        return total

    def iter_pending(self, source: str | None = None, kind: str | None = None) -> Iterator[PendingItem]:
        where, params = self._filters(source=source, kind=kind)
        for r in self._pages(_PENDING_COLS, "pending", "pending_id", where, params):
            yield PendingItem(source=r[1], kind=r[2], source_id=r[3], reason=r[4], detail=r[5],
                              raw=codec.from_json(r[6]), attempts=int(r[7]),
                              first_parked_at=codec.ts_from_db(r[8]), last_tried_at=codec.ts_from_db(r[9]),
                              run_id=int(r[10]))

    def unpark(self, keys: Iterable[SourceKey]) -> int:
        return self._delete_keyed("pending", keys)

    def count_pending(self, source: str | None = None) -> dict[str, int]:
        return self._count_by_reason("pending", source=source)

    # -- locks -----------------------------------------------------------------------------------
    @staticmethod
    def _lock_info(r: tuple[Any, ...]) -> LockInfo:
        return LockInfo(name=r[0], holder=r[1], pid=int(r[2]), host=r[3],
                        acquired_at=codec.ts_from_db(r[4]), heartbeat_at=codec.ts_from_db(r[5]))

    def get_lock(self, name: str) -> LockInfo | None:
        row = self._one(f"SELECT {_LOCK_COLS} FROM locks WHERE name = ?", (codec.fold_key(name),))
        return self._lock_info(row) if row else None

    def acquire_lock(self, name: str, holder: str, pid: int, host: str, stale_after_s: float,
                     now: datetime | None = None) -> LockInfo | None:
        name, holder, host = codec.fold_key(name), codec.fold_key(holder), codec.fold_key(host)
        now_dt = codec.ts_from_db(self._now(now))
        stamp = codec.ts_to_db(now_dt)
        with self.transaction():
            current = self.get_lock(name)
            if current is None:
                if self._exec(self._insert_ignore("locks", ("name", "holder", "pid", "host", "acquired_at",
                                                            "heartbeat_at")),
                              (name, holder, pid, host, stamp, stamp)) == 1:
                    return None
                return self.get_lock(name)
            if current.holder == holder:
                self._exec("UPDATE locks SET pid = ?, host = ?, heartbeat_at = ? WHERE name = ? AND holder = ?",
                           (pid, host, stamp, name, holder))
                return None
            dead = current.host == host and not pid_alive(current.pid)
            silent = (now_dt - current.heartbeat_at).total_seconds() > stale_after_s
            if not (dead or silent):
                return current
            taken = self._exec(
                "UPDATE locks SET holder = ?, pid = ?, host = ?, acquired_at = ?, heartbeat_at = ?"
                " WHERE name = ? AND holder = ? AND heartbeat_at = ?",
                (holder, pid, host, stamp, stamp, name, current.holder, codec.ts_to_db(current.heartbeat_at)))
            return None if taken == 1 else self.get_lock(name)

    def heartbeat_lock(self, name: str, holder: str, now: datetime | None = None) -> bool:
        with self.transaction():
            return self._exec("UPDATE locks SET heartbeat_at = ? WHERE name = ? AND holder = ?",
                              (self._now(now), codec.fold_key(name), codec.fold_key(holder))) == 1

    def release_lock(self, name: str, holder: str) -> bool:
        with self.transaction():
            return self._exec("DELETE FROM locks WHERE name = ? AND holder = ?",
                              (codec.fold_key(name), codec.fold_key(holder))) == 1
