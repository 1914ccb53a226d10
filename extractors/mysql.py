"""Shop databases on MySQL/MariaDB: rows streamed through an unbuffered server-side cursor.

Reading choices, and why:
- `SSCursor` (unbuffered): the server sends rows as we consume them; the client never holds the
  whole result, so memory stays flat however large the table is.
- `charset=latin1` + `use_unicode=False`: the shop's columns are latin1 holding cp1251 *or* UTF-8
  bytes. A latin1 connection makes the server send them unconverted, and `use_unicode=False`
  hands them over as the exact stored `bytes`; the transformer decides how to decode each value.
  Numbers, dates and DECIMALs are still converted (their converters are adapted to bytes input).
- Zero dates (`0000-00-00 ...`) and other impossible dates come back as None, not as a string.
- One REPEATABLE READ transaction `WITH CONSISTENT SNAPSHOT, READ ONLY` per source: a full load
  runs several queries (companies, then their contacts); without one snapshot, a company edited
  between the two queries could bring contacts whose company was never extracted. The price is a
  long-lived read view on the replica (purge waits) for the length of the extraction: acceptable
  for a replica, and switchable off with `?snapshot=0`.
- `net_write_timeout` is raised for the session: when the downstream (the CRM) is slow, the server
  waits on a full socket buffer; with the default 60 s it would drop the connection mid-stream.

- A lost connection (the replica restarting, a KILL, a network break) is reconnected with
  exponential backoff (`reconnect_attempts`, `reconnect_wait` in the DSN; tenacity) and the query
  resumed after the last row handed on, by keyset on the order the query declares with an
  `/*after <key columns>*/` comment where a condition may be appended (`AND (key) > (last)`):
  no row twice, none skipped. A query that lost its connection before handing on any row is
  simply run again; one with rows handed on but no such marker cannot be resumed and fails.
  The resumed query reads a new snapshot: rows changed meanwhile are read as they are now, or,
  before the resume point, by the next delta (the watermark was taken at the start of the run).
  When the attempts are used up the error names host and database (never the password).
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pymysql
from pymysql.constants import FIELD_TYPE
from pymysql.converters import conversions, convert_date, convert_datetime
from pymysql.cursors import SSCursor
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from etl.mysql_url import parse_mysql_url, wire_password
from etl.secrets import MASK, Secret, scrub
from extractors.errors import SourceError, SourceUnavailable
from extractors.sql import ClosingSource

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 600.0
NET_WRITE_TIMEOUT = 3600  # seconds the server may wait for us to take the next rows
DEFAULT_RECONNECT_ATTEMPTS = 8    # per loss; with the waits below a replica has ~2 minutes to come back
DEFAULT_RECONNECT_WAIT = 30.0     # the longest wait between two attempts (they double from 0.5 s)

DSN_HELP = ("mysql://user:password@host:port/database[?connect_timeout=S&read_timeout=S&snapshot=0"
            "&reconnect_attempts=N&reconnect_wait=S]")

# The connection is gone (or the server ended our query): reconnect and resume. 0: pymysql's
# InterfaceError on a closed socket; 1053 server shutdown; 1317 query interrupted (KILL QUERY);
# 1927 connection killed (MariaDB); 2006/2013/2055 lost.
LOST = {0, 1053, 1317, 1927, 2006, 2013, 2055}
# ...and while reconnecting, these mean "not back yet": 1040 too many connections, 2003 refused.
NOT_BACK_YET = LOST | {1040, 2003}
_AFTER = re.compile(r"/\*\s*after\s+([\w.,\s]+?)\s*\*/")


def _datetime_or_none(value: bytes) -> dt.datetime | dt.date | None:
    """DATETIME/TIMESTAMP as a naive datetime; zero or impossible dates become None."""
    converted = convert_datetime(value)
    return converted if isinstance(converted, (dt.datetime, dt.date)) else None


def _date_or_none(value: bytes) -> dt.date | None:
    converted = convert_date(value)
    return converted if isinstance(converted, dt.date) else None


def _decimal(value: bytes) -> Decimal:
    return Decimal(value.decode("ascii"))


#: pymysql's converters, adapted to `use_unicode=False` (values arrive as bytes).
CONVERSIONS: dict[Any, Any] = dict(conversions)
CONVERSIONS.update({
    FIELD_TYPE.DATETIME: _datetime_or_none,
    FIELD_TYPE.TIMESTAMP: _datetime_or_none,
    FIELD_TYPE.DATE: _date_or_none,
    FIELD_TYPE.NEWDATE: _date_or_none,
    FIELD_TYPE.DECIMAL: _decimal,
    FIELD_TYPE.NEWDECIMAL: _decimal,
})

# What to do about the errors people actually meet (pymysql error code -> the fix).
_FIXES: dict[int, str] = {
    1044: "check the database name in the DSN, or grant the user SELECT on that database",
    1045: "check the user name and password in the DSN (CRM_ETL_SHOP_A_DSN)",
    1049: "check the database name in the DSN",
    1142: "grant the user SELECT on the tables the extraction reads",
    1146: "check the database name in the DSN: the table is not there",
    1054: "the query names a column the table does not have (check the shop's schema)",
    1064: "the query is not valid SQL for this server (a bug in the shop's extraction SQL)",
    2003: "check that the server is running and that host and port in the DSN are right",
    2005: "check the host name in the DSN",
    2006: "the server closed the connection: rerun; if it persists, check the server's wait_timeout",
    2013: "rerun; if it keeps happening, check the network and raise read_timeout in the DSN "
          "or net_write_timeout on the server",
}


@dataclass(frozen=True)
class MySqlDsn:
    host: str
    port: int
    user: str
    password: Secret
    database: str
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    snapshot: bool = True
    reconnect_attempts: int = DEFAULT_RECONNECT_ATTEMPTS
    reconnect_wait: float = DEFAULT_RECONNECT_WAIT

    @property
    def where(self) -> str:
        """`user@host:port/db`: names the source in messages, without the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


def parse_mysql_dsn(dsn: str) -> MySqlDsn:
    """Parse `mysql://user:pass@host:port/db?...`; user and password may be percent-encoded."""
    u = parse_mysql_url(dsn, label="bad MySQL DSN", help=DSN_HELP, error=SourceError)
    parsed = MySqlDsn(host=u.host, port=u.port, user=u.user, password=u.password, database=u.database,
                      connect_timeout=u.seconds("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
                      read_timeout=u.seconds("read_timeout", DEFAULT_READ_TIMEOUT),
                      snapshot=u.flag("snapshot", True),
                      reconnect_attempts=u.integer("reconnect_attempts", DEFAULT_RECONNECT_ATTEMPTS),
                      reconnect_wait=u.seconds("reconnect_wait", DEFAULT_RECONNECT_WAIT))
    u.done()
    return parsed


def resume_key(query: str) -> list[tuple[str, str]]:
    """The keyset a query declares with `/*after col1, col2*/`: (result column, SQL expression)
    pairs, e.g. `c.id` -> ("id", "c.id"); [] without a marker."""
    m = _AFTER.search(query)
    if not m:
        return []
    exprs = [e.strip() for e in m.group(1).split(",") if e.strip()]
    return [(e.rsplit(".", 1)[-1], e) for e in exprs]


def resumed(query: str, key: list[tuple[str, str]], last: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    """`query` with `AND (key) > (last)` at its marker, written out term by term
    (`a > x OR (a = x AND b > y)`) so the server can use the index the query is ordered by."""
    names = [f"_after_{i}" for i in range(len(key))]
    terms = []
    for i, (_, expr) in enumerate(key):
        equal = [f"{key[j][1]} = %({names[j]})s" for j in range(i)]
        terms.append("(" + " AND ".join([*equal, f"{expr} > %({names[i]})s"]) + ")")
    condition = "AND (" + " OR ".join(terms) + ")"
    return _AFTER.sub(lambda _m: condition, query, count=1), dict(zip(names, last))


def _code(e: BaseException) -> int | None:
    if isinstance(e, pymysql.MySQLError) and e.args and isinstance(e.args[0], int):
        return e.args[0]
    return None


class _Lost(Exception):
    """The connection broke while streaming (internal: turned into a reconnect or a SourceError)."""

    def __init__(self, error: pymysql.MySQLError) -> None:
        super().__init__(error)
        self.error = error


class MySqlSource(ClosingSource):
    """A shop database on MySQL/MariaDB. Open with `open_sql_source(dsn)` or `MySqlSource.from_dsn`."""

    def __init__(self, dsn: MySqlDsn) -> None:
        self._dsn = dsn
        self._busy = False
        self.reconnects = 0  # connections re-established after a loss (for tests and logs)
        self._conn: pymysql.connections.Connection | None = None
        try:
            self._conn = self._open()
        except pymysql.MySQLError as e:
            raise self._error(e, "cannot connect") from None

    @classmethod
    def from_dsn(cls, dsn: str) -> MySqlSource:
        return cls(parse_mysql_dsn(dsn))

    @property
    def where(self) -> str:
        return self._dsn.where

    def _open(self) -> pymysql.connections.Connection:
        """A connection in its read transaction (pymysql errors propagate: the caller words them)."""
        d = self._dsn
        conn = pymysql.connect(
            host=d.host, port=d.port, user=d.user, password=wire_password(d.password),
            database=d.database, charset="latin1", use_unicode=False, conv=CONVERSIONS,
            connect_timeout=d.connect_timeout, read_timeout=d.read_timeout,
            write_timeout=d.read_timeout, autocommit=False,
            init_command="SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        )
        try:
            with conn.cursor() as cur:
                cur.execute(f"SET SESSION net_write_timeout = {NET_WRITE_TIMEOUT:d}")
                if d.snapshot:
                    cur.execute("START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT")
        except BaseException:
            conn._force_close()
            raise
        return conn

    def iter_rows(self, query: str, params: Mapping[str, Any] | None = None, *,
                  table: str | None = None) -> Iterator[dict[str, Any]]:
        """Stream rows (text as bytes). One query at a time per source: finish or close the
        previous iterator first (closing early drains the rest of its result from the server).
        A lost connection is reconnected and the query resumed after the last row handed on
        (see the module docstring)."""
        if self._conn is None:
            raise SourceError(f"MySQL {self.where}: the source is closed")
        if self._busy:
            raise SourceError(f"MySQL {self.where}: another query is still streaming on this source; "
                              "consume or close it before starting the next one")
        what = f"reading {table}" if table else "running a query"
        key = resume_key(query)
        self._busy = True
        rows = 0
        last: tuple[Any, ...] | None = None
        try:
            while True:
                sql, args = resumed(query, key, last) if last is not None else (query, dict(params or {}))
                if last is not None:
                    args = {**dict(params or {}), **args}
                try:
                    with closing(self._stream(sql, args, table, what)) as stream:
                        for record in stream:
                            if key:
                                last = self._key_of(record, key, last, what)
                            rows += 1
                            yield record
                    return
                except _Lost as lost:
                    if rows and not key:
                        raise self._error(lost.error, f"{what} failed after {rows} rows (the query declares "
                                                      "no /*after key*/ to resume from)") from None
                    self._reconnect(lost.error, what, rows)
        finally:
            self._busy = False

    def _stream(self, sql: str, args: dict[str, Any], table: str | None, what: str) -> Iterator[dict[str, Any]]:
        """One run of one query; a lost connection comes out as `_Lost`, other errors as SourceError."""
        if self._conn is None:
            raise SourceError(f"MySQL {self.where}: the source is closed")
        cur = self._conn.cursor(SSCursor)
        try:
            try:
                cur.execute(sql, args)  # a dict always: `%%` means `%` everywhere
            except (ValueError, TypeError, KeyError) as e:
                raise SourceError(f"MySQL {self.where}: bad query or parameters while {what}: {e!r} "
                                  "(placeholders are %(name)s, a literal percent is %%)") from None
            names = [c[0] for c in cur.description or ()]
            for row in cur.fetchall_unbuffered():
                record = dict(zip(names, row))
                if table is not None:
                    record["_table"] = table
                yield record
        except pymysql.MySQLError as e:
            if _code(e) in LOST:
                self._abandon(cur)
                raise _Lost(e) from None
            raise self._error(e, f"{what} failed") from None
        finally:
            if self._conn is not None and cur.connection is not None:
                try:
                    cur.close()  # drains what the consumer did not read
                except (pymysql.MySQLError, OSError):
                    self._abandon(cur)

    def _key_of(self, record: dict[str, Any], key: list[tuple[str, str]], last: tuple[Any, ...] | None,
                what: str) -> tuple[Any, ...]:
        """The row's resume key; it must grow strictly, or resuming could skip or repeat rows."""
        value = tuple(record.get(column) for column, _ in key)
        if any(v is None for v in value) or (last is not None and not value > last):
            raise SourceError(f"MySQL {self.where}: {what}: rows do not come in the strictly increasing order of "
                              f"the query's resume key ({', '.join(e for _, e in key)}): {last!r} then {value!r}; "
                              "fix the query's ORDER BY or its /*after ...*/ marker")
        return value

    def _reconnect(self, cause: pymysql.MySQLError, what: str, rows: int) -> None:
        """Open a new connection, waiting between attempts; SourceError naming host/db when it
        cannot be done within `reconnect_attempts`."""
        d = self._dsn
        doing = f"{what}: connection lost after {rows} rows"
        if d.reconnect_attempts < 1:
            raise self._error(cause, doing, SourceUnavailable) from None
        log.warning("MySQL %s: %s (%s); reconnecting (up to %d attempts)", self.where, doing,
                    scrub(str(cause)), d.reconnect_attempts)

        def waiting(state: Any) -> None:
            log.warning("MySQL %s: reconnect attempt %d failed (%s); next in %.1f s", self.where,
                        state.attempt_number, scrub(str(state.outcome.exception())), state.next_action.sleep)

        retrying = Retrying(stop=stop_after_attempt(d.reconnect_attempts),
                            wait=wait_exponential(multiplier=0.5, max=d.reconnect_wait),
                            retry=retry_if_exception(lambda e: _code(e) in NOT_BACK_YET),
                            before_sleep=waiting, reraise=True)
        try:
            self._conn = retrying(self._open)
        except pymysql.MySQLError as e:
            n = retrying.statistics.get("attempt_number", d.reconnect_attempts)
            raise self._error(e, f"{doing}, and reconnecting failed ({n} attempt(s))", SourceUnavailable) from None
        self.reconnects += 1
        log.warning("MySQL %s: reconnected; %s resumes after row %d", self.where, what, rows)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except (pymysql.MySQLError, OSError):
                pass

    def _abandon(self, cur: SSCursor) -> None:
        """Forget a broken connection without talking to the server again. pymysql would otherwise
        try to drain the dead unbuffered result when the cursor is garbage-collected."""
        result = getattr(cur, "_result", None)
        if result is not None:
            result.unbuffered_active = False
        cur.connection = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn._force_close()  # no COM_QUIT round trip on a dead socket

    def _error(self, e: pymysql.MySQLError, doing: str, kind: type[SourceError] = SourceError) -> SourceError:
        code = _code(e)
        message = str(e.args[1]) if len(e.args) > 1 else str(e)
        fix = _FIXES.get(code or 0, "")
        text = f"MySQL {self.where}: {doing}: {message}" + (f" (error {code})" if code else "")
        text += f"; {fix}" if fix else ""
        password = self._dsn.password.reveal()
        if password:
            text = text.replace(password, MASK)
        return kind(scrub(text))
