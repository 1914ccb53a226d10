"""The MySQL / MariaDB state store: one database that several machines share (cron delta workers,
Kafka consumers on other hosts). Same schema, SQL and semantics as SQLite (sql.py); this module
holds only what MySQL says differently.

URL: `mysql://user:password@host:port/database?connect_timeout=10&read_timeout=300&lock_timeout=60`
(`mysql+pymysql://` is accepted too; user and password may be percent-encoded). The database must
exist (a mistyped name must not silently start an empty store: that would create every entity in
the CRM again); the tables are created and migrated on first use, so the user needs CREATE,
ALTER, INDEX, SELECT, INSERT, UPDATE, DELETE on it. The password never leaves this module: the
store's `location` and every message name `mysql://user@host:port/database`.

Choices, and why:
- READ COMMITTED. Several methods look, then write, then look again within one transaction (a
  key another worker inserted since we looked: who holds it now? a lock someone else took: who?).
  Under REPEATABLE READ the second look reads the transaction's first snapshot and misses the
  other worker's row, so a lost race would be reported as won. READ COMMITTED reads the latest
  committed rows each time and takes no gap locks on plain reads (fewer lock waits). Uniqueness
  itself is never left to reads: primary keys and UNIQUE constraints settle every race.
- "Insert unless present" is a plain INSERT whose duplicate-key error (1062) means "present",
  not INSERT IGNORE: IGNORE also downgrades real errors (a value too long for its column, a NULL
  in a NOT NULL column) to warnings and stores mangled data. The session runs in strict mode, so
  a value longer than its column (limits in schema.py) is a StateError, never silently cut.
- Round trips: inserts go up to 500 rows per statement. When a row's key is taken the statement
  is undone whole and its rows go one by one, so each caller still learns exactly which rows it
  created. Upserts are multi-row INSERT ... ON DUPLICATE KEY UPDATE (pymysql's executemany).
- Keys: utf8mb4 with a binary NO PAD collation (utf8mb4_0900_bin on MySQL 8, utf8mb4_nopad_bin on
  MariaDB), so keys compare byte-exactly as in SQLite: case, accents and trailing spaces count.
  MEDIUMTEXT for long text (raw records reach 64 K characters = up to 256 KB), DATETIME(6).
- UPDATE must report the rows it *matched* (sql.py relies on it): CLIENT.FOUND_ROWS.
- Migrations: MySQL commits DDL implicitly, so a migration cannot be one transaction. A named
  server lock (GET_LOCK) makes two processes opening a new database migrate it once; a
  migration interrupted half-way is resumed on the next open (objects it already created are
  recognised; a table of the same name with other columns is refused: it is not ours).
- One connection per store under the store's lock (as SQLite). Before use outside a transaction
  it is pinged and reopened if the server closed it (wait_timeout, a restart); lost inside a
  transaction it is a StateError and the server rolls the transaction back (lost during COMMIT
  itself, the outcome is unknown: retrying the batch is safe, as after a crash).
- Deadlocks: writers visit rows in key order (sql.py), which avoids most; the gap locks InnoDB
  takes on duplicate keys can still deadlock writers racing on the same new keys. InnoDB rolls the
  victim's whole transaction back. A store method called on its own (not inside the caller's
  `transaction()`) is simply run again, a few times. Inside the caller's transaction the error
  surfaces as StateError, and the transaction refuses further statements and its commit: its
  earlier writes are gone, so it must not look committed.
- Waiting: a writer waits up to `lock_timeout` seconds for another worker's row locks (SQLite's
  busy timeout), then fails with StateError (error 1205; that transaction is over too) and the
  caller retries the batch.
"""
from __future__ import annotations

import functools
import hashlib
import math
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import pymysql
from pymysql.constants import CLIENT

from etl.config import ConfigError
from etl.mysql_url import parse_mysql_url as split_mysql_url
from etl.mysql_url import wire_password
from etl.secrets import Secret, scrub
from etl.state import schema
from etl.state.base import StateError
from etl.state.sql import CHUNK, SqlStateStore, chunked

URL_HELP = ("mysql://user:password@host:port/database"
            "[?connect_timeout=S&read_timeout=S&lock_timeout=S]")
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 300.0   # a silent server (network gone) is given up after this long
DEFAULT_LOCK_TIMEOUT = 60.0    # waiting for another worker's row locks, as SQLite's busy timeout
MIGRATION_WAIT_S = 900.0       # how long an opening process waits for another one's migration
DEADLOCK_ATTEMPTS = 4          # runs of a store method whose transaction lost a deadlock

# Binary NO PAD collations: byte-exact comparison, trailing spaces significant (like SQLite).
_COLLATIONS = ("utf8mb4_0900_bin", "utf8mb4_nopad_bin")
_FALLBACK_COLLATION = "utf8mb4_bin"  # MySQL 5.7: binary, but 'a' = 'a ' (PAD SPACE)
_SQL_MODE = "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"

ER_DUP_ENTRY = 1062
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213
_CONNECTION_LOST = {0, 2006, 2013, 2055, 4031}  # 0: pymysql's InterfaceError on a closed socket
# After these the server has ended the transaction in flight (or may have: a lock wait timeout
# rolls back the whole transaction if innodb_rollback_on_timeout is on).
_ENDS_TRANSACTION = {ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT} | _CONNECTION_LOST
# A resumed migration meets what its interrupted run created: table, column, index exists.
_ALREADY_EXISTS = {1050, 1060, 1061}
_TABLE = re.compile(r"^\s*CREATE TABLE(?: IF NOT EXISTS)? (\w+) \((.*)\)", re.S)
_CONSTRAINT = {"PRIMARY", "UNIQUE", "KEY", "INDEX", "CONSTRAINT", "FOREIGN", "CHECK", "FULLTEXT"}
_INSERT_OR_SKIP = "INSERT /* skip duplicate */ INTO"
_TYPES = {  # schema.py's placeholders; "table" adds the collation the server offers
    "id": "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
    "key": "VARCHAR(255)",
    "name": "VARCHAR(64)",
    "hash": "VARCHAR(128)",
    "text": "MEDIUMTEXT",
    "bigint": "BIGINT",
    "ts": "DATETIME(6)",
}

_FIXES: dict[int, str] = {
    1044: "grant the user access to that database (CREATE, ALTER, INDEX, SELECT, INSERT, UPDATE, DELETE)",
    1045: "check the user name and password in the state URL (CRM_ETL_STATE)",
    1049: "create it (CREATE DATABASE <name> CHARACTER SET utf8mb4) or fix the database name in the "
          "state URL; crm-etl does not create databases, so a typo cannot start an empty store",
    1142: "grant the user CREATE, ALTER, INDEX, SELECT, INSERT, UPDATE, DELETE on the state database",
    1146: "a state table is missing (dropped by hand?): restore the database from a backup",
    1406: "a value is longer than its column allows (limits in etl/state/schema.py)",
    ER_LOCK_WAIT_TIMEOUT: "another worker held the rows longer than lock_timeout: nothing of this "
                          "transaction was kept; retry the batch (raise ?lock_timeout= if it recurs)",
    ER_LOCK_DEADLOCK: "two workers deadlocked on the same rows and this transaction was rolled "
                      "back: retry the batch",
    2003: "check that the server is running and that host and port in the state URL are right",
    2005: "check the host name in the state URL",
    2006: "the connection to the server was lost: retry the batch (the store reconnects)",
    2013: "the connection to the server was lost: retry the batch (the store reconnects); if it "
          "recurs, check the network and the server's timeouts",
}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class MySQLStateURL:
    """What a `mysql://` state URL says; `location` names it without the password."""

    host: str
    port: int
    user: str
    password: Secret
    database: str
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT

    @property
    def location(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"mysql://{user}{host}:{self.port}/{self.database}"


def parse_mysql_url(url: str) -> MySQLStateURL:
    """Parse a state URL (see the module docstring); ConfigError, password hidden, if unusable."""
    u = split_mysql_url(url, label="state store", help=URL_HELP, error=ConfigError)
    connect_timeout = u.seconds("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    lock_timeout = u.seconds("lock_timeout", DEFAULT_LOCK_TIMEOUT)
    read_timeout = u.seconds("read_timeout", max(DEFAULT_READ_TIMEOUT, lock_timeout + 60))
    u.done()
    if read_timeout <= lock_timeout:
        raise ConfigError(f"{u.label}: read_timeout ({read_timeout:g} s) must exceed lock_timeout "
                          f"({lock_timeout:g} s), or a statement waiting for a lock is cut off as a lost connection")
    return MySQLStateURL(host=u.host, port=u.port, user=u.user, password=u.password, database=u.database,
                         connect_timeout=connect_timeout, read_timeout=read_timeout, lock_timeout=lock_timeout)


def _errno(e: BaseException | None) -> int | None:
    if isinstance(e, pymysql.MySQLError) and e.args and isinstance(e.args[0], int):
        return e.args[0]
    return None


@lru_cache(maxsize=512)
def _format_params(sql: str) -> str:
    """`?` placeholders (sql.py) as pymysql's `%s`; a literal `%` doubled."""
    return sql.replace("%", "%%").replace("?", "%s")


def _retried_on_deadlock(method: F) -> F:
    """Run a store method again when its own transaction lost a deadlock (see the module docstring).

    Only when it is not inside the caller's transaction (that one is gone as a whole and only the
    caller can redo it). One-shot iterators among the arguments are read into lists first, so a
    second run sees the same items."""
    @functools.wraps(method)
    def run(self: MySQLStateStore, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._depth > 0:
                return method(self, *args, **kwargs)
            args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
            kwargs = {k: list(v) if isinstance(v, Iterator) else v for k, v in kwargs.items()}
            for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
                try:
                    return method(self, *args, **kwargs)
                except StateError as e:
                    if attempt == DEADLOCK_ATTEMPTS or _errno(e.__cause__) != ER_LOCK_DEADLOCK:
                        raise
                    self.deadlocks_retried += 1
                    time.sleep(random.uniform(0.0, 0.02 * attempt))  # let the winner finish
    return run  # type: ignore[return-value]


class MySQLStateStore(SqlStateStore):
    """The state store on MySQL 5.7+ / MariaDB 10.2+. Open with `open_state("mysql://...")`."""

    BEGIN_WRITE = "START TRANSACTION"
    DB_ERRORS = (pymysql.MySQLError,)

    def __init__(self, url: MySQLStateURL) -> None:
        self.url = url
        self.collation = ""
        self.deadlocks_retried = 0           # how often a method was run again after a deadlock
        self._doomed: int | None = None      # error code that ended the open transaction server-side
        self._holding_migration_lock = False
        super().__init__(url.location)

    @property
    def TYPES(self) -> Mapping[str, str]:  # noqa: N802 - the hook's name in sql.py
        return {**_TYPES, "table": f" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={self.collation}"}

    @classmethod
    def from_url(cls, url: str) -> MySQLStateStore:
        return cls(parse_mysql_url(url))

    # -- connection ------------------------------------------------------------------------------
    def _connect(self) -> pymysql.connections.Connection:
        u = self.url
        conn = pymysql.connect(
            host=u.host, port=u.port, user=u.user or None, password=wire_password(u.password), database=u.database,
            charset="utf8mb4", autocommit=True, client_flag=CLIENT.FOUND_ROWS,
            connect_timeout=u.connect_timeout, read_timeout=u.read_timeout, write_timeout=u.read_timeout)
        try:
            wait = max(1, math.ceil(u.lock_timeout))
            with conn.cursor() as cur:
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                cur.execute(f"SET SESSION sql_mode = '{_SQL_MODE}', innodb_lock_wait_timeout = {wait:d},"
                            f" lock_wait_timeout = {wait:d}")
                if not self.collation:
                    self.collation = self._check_server(cur)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_server(self, cur: Any) -> str:
        """Refuse a server too old for the schema; the binary collation to create tables with."""
        cur.execute("SELECT VERSION()")
        version = str(cur.fetchone()[0])
        numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
        mariadb = "mariadb" in version.lower()
        if numbers < ((10, 2) if mariadb else (5, 7)):
            raise StateError(f"state store {self.location}: server version {version} is too old "
                             "(needs MySQL 5.7+ or MariaDB 10.2+ for 3072-byte index keys and utf8mb4)")
        cur.execute("SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN (%s, %s)",
                    _COLLATIONS)
        found = {r[0] for r in cur.fetchall()}
        return next((c for c in _COLLATIONS if c in found), _FALLBACK_COLLATION)

    def _revive(self) -> None:
        """Outside a transaction: make sure the connection is up, reopening it if the server closed it."""
        try:
            self._conn.ping(reconnect=False)
            return
        except pymysql.MySQLError as e:
            lost = e
        if self._holding_migration_lock:  # the server released it with the old session
            raise StateError(f"state store {self.location}: the connection was lost during the schema "
                             "migration: open the store again (the migration resumes)") from lost
        try:
            self._conn.close()
        except pymysql.MySQLError:
            pass
        with self._guard("reconnect"):
            self._conn = self._connect()

    def _cursor(self) -> Any:
        if self._conn is None:
            raise StateError(f"state store {self.location} is closed")
        if self._depth == 0:
            self._revive()
        elif self._doomed is not None:
            raise StateError(f"state store {self.location}: this transaction already failed on the server "
                             f"(MySQL error {self._doomed}); leave the transaction() block and retry the batch")
        return self._conn.cursor()

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except pymysql.MySQLError as e:
            code = _errno(e)
            if self._depth > 0 and code in _ENDS_TRANSACTION:
                self._doomed = code
            err = StateError(self._describe(e, what))
            err.retryable = code in (ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT)
            raise err from e

    def _describe(self, e: pymysql.MySQLError, what: str) -> str:
        code = _errno(e)
        text = str(e.args[1]) if len(e.args) > 1 else str(e)
        fix = _FIXES.get(code or -1, "")
        if code in _CONNECTION_LOST and not fix:
            fix = _FIXES[2013]
        return scrub(f"state store {self.location}: {what} failed: {type(e).__name__} {code}: {text}"
                     + (f"; {fix}" if fix else ""))

    # -- transactions ----------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            outermost = self._depth == 0
            try:
                with super().transaction():
                    yield
                    if outermost and self._doomed is not None:  # raised inside: rolled back, not committed
                        err = StateError(f"state store {self.location}: the transaction failed on the server "
                                         f"(MySQL error {self._doomed}); nothing of it was committed: retry the batch")
                        err.retryable = self._doomed in (ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT)
                        raise err
            finally:
                if outermost:
                    self._doomed = None

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        if not sql.startswith(_INSERT_OR_SKIP):
            return super()._exec(sql, params)
        cur = self._cursor()
        with self._guard("write"):
            try:
                cur.execute(self._sql(sql), params)
            except pymysql.IntegrityError as e:
                if _errno(e) == ER_DUP_ENTRY:
                    return 0  # already there: InnoDB undid just this statement
                raise
            return cur.rowcount

    def _insert_missing(self, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[bool]:
        """Many rows per statement (a round trip per row would cap a batch at a few thousand rows/s).
        A statement that meets a taken key is undone whole; then row by row tells which rows it was."""
        went_in: list[bool] = []
        for chunk in chunked(rows, CHUNK):
            if len(chunk) > 1 and self._insert_all(table, cols, chunk):
                went_in += [True] * len(chunk)
            else:
                went_in += super()._insert_missing(table, cols, chunk)
        return went_in

    def _insert_all(self, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> bool:
        """One multi-row INSERT; False (nothing inserted) if a row's key is taken."""
        marks = "(" + ", ".join(["%s"] * len(cols)) + ")"
        cur = self._cursor()
        with self._guard("write"):
            try:
                cur.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES {', '.join([marks] * len(rows))}",
                            [value for row in rows for value in row])
            except pymysql.IntegrityError as e:
                if _errno(e) == ER_DUP_ENTRY:
                    return False
                raise
        return True

    # -- dialect ---------------------------------------------------------------------------------
    def _sql(self, text: str) -> str:
        return _format_params(text)

    def _insert_ignore(self, table: str, cols: Sequence[str]) -> str:
        return f"{_INSERT_OR_SKIP} {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"

    def _upsert(self, table: str, cols: Sequence[str], key: Sequence[str], assignments: str) -> str:
        # VALUES(col), not the `AS new` row alias: MariaDB lacks the alias, and pymysql turns only
        # this form of executemany into one multi-row INSERT.
        updates = self._new_values(assignments, r"VALUES(\1)")
        return (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                f" ON DUPLICATE KEY UPDATE {updates}")

    # -- migrations ------------------------------------------------------------------------------
    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        name = "crm-etl.state.migrate." + self.url.database
        if len(name) > 64:  # MySQL's limit for lock names
            name = "crm-etl.state.migrate." + hashlib.sha1(self.url.database.encode()).hexdigest()
        step = max(1, min(10, int(self.url.read_timeout / 2)))
        deadline = time.monotonic() + MIGRATION_WAIT_S
        while True:
            row = self._one("SELECT GET_LOCK(?, ?)", (name, step))
            if row and row[0] == 1:
                break
            if row is None or row[0] is None or time.monotonic() > deadline:
                raise StateError(f"state store {self.location}: could not take the migration lock {name!r} "
                                 f"within {MIGRATION_WAIT_S:g} s: another process is migrating the schema "
                                 "(or hangs doing so); check SHOW PROCESSLIST, then open the store again")
        self._holding_migration_lock = True
        try:
            yield
        finally:
            self._holding_migration_lock = False
            try:
                self._one("SELECT RELEASE_LOCK(?)", (name,))
            except StateError:
                pass  # the connection is gone, and the lock with it

    def _apply_ddl(self, statement: str) -> None:
        cur = self._cursor()
        try:
            cur.execute(statement)  # no parameters: the text goes as it is
        except pymysql.MySQLError as e:
            if _errno(e) in _ALREADY_EXISTS and self._ours(statement):
                return  # created by an interrupted run of this migration
            raise StateError(self._describe(e, "schema migration")) from e

    def _ours(self, statement: str) -> bool:
        """Whether an existing table a CREATE TABLE met has exactly the columns it would create
        (left by an interrupted migration), not someone else's table of the same name."""
        m = _TABLE.match(statement)
        if not m:
            return True  # an index or column of ours: its name is specific enough
        table, body = m.groups()
        wanted = set()
        depth, item = 0, ""
        for ch in body + ",":
            if ch == "," and depth == 0:
                first = item.split()[0] if item.split() else ""
                if first and first.upper() not in _CONSTRAINT:
                    wanted.add(first.lower())
                item = ""
                continue
            depth += {"(": 1, ")": -1}.get(ch, 0)
            item += ch
        found = {str(r[0]).lower() for r in self._query(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (table,))}
        if found != wanted:
            raise StateError(f"state store {self.location}: a table `{table}` already exists with columns "
                             f"({', '.join(sorted(found))}) that the state schema does not give it: it is not "
                             "crm-etl's. Drop or rename it, or give the state store a database of its own")
        return True

    # -- health ----------------------------------------------------------------------------------
    def integrity_check(self) -> list[str]:
        tables = sorted({m.group(1) for m in map(_TABLE.match, [schema.SCHEMA_VERSION_TABLE, *(
            s for mig in schema.MIGRATIONS for s in mig.statements)]) if m})
        present = {str(r[0]) for r in self._query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")}
        problems = [f"table {t} is missing" for t in tables if t not in present]
        checked = [t for t in tables if t in present]
        if checked:
            for table, _op, kind, text in self._query("CHECK TABLE " + ", ".join(f"`{t}`" for t in checked)):
                if str(kind).lower() in ("error", "warning") or (
                        str(kind).lower() == "status" and str(text) not in ("OK", "Table is already up to date")):
                    problems.append(f"{table}: {kind}: {text}")
        return problems

    # -- write methods: run again when their own transaction lost a deadlock ---------------------
    start_run = _retried_on_deadlock(SqlStateStore.start_run)
    finish_run = _retried_on_deadlock(SqlStateStore.finish_run)
    record_intents = _retried_on_deadlock(SqlStateStore.record_intents)
    record_written = _retried_on_deadlock(SqlStateStore.record_written)
    put_contact_keys = _retried_on_deadlock(SqlStateStore.put_contact_keys)
    put_contact_names = _retried_on_deadlock(SqlStateStore.put_contact_names)
    map_sources = _retried_on_deadlock(SqlStateStore.map_sources)
    set_watermark = _retried_on_deadlock(SqlStateStore.set_watermark)
    put_egrul = _retried_on_deadlock(SqlStateStore.put_egrul)
    add_rejects = _retried_on_deadlock(SqlStateStore.add_rejects)
    resolve_rejects = _retried_on_deadlock(SqlStateStore.resolve_rejects)
    park = _retried_on_deadlock(SqlStateStore.park)
    unpark = _retried_on_deadlock(SqlStateStore.unpark)
    acquire_lock = _retried_on_deadlock(SqlStateStore.acquire_lock)
    heartbeat_lock = _retried_on_deadlock(SqlStateStore.heartbeat_lock)
    release_lock = _retried_on_deadlock(SqlStateStore.release_lock)
