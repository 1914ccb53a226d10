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

Not done here (yet): resuming after a dropped connection. The way to do it is keyset pagination
on the index the query is ordered by, e.g. `WHERE (updated_at, id) > (%(last_at)s, %(last_id)s)
ORDER BY updated_at, id`, restarting from the last row handed on (rows are upserted downstream, so
a replayed boundary is harmless).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql
from pymysql.constants import FIELD_TYPE
from pymysql.converters import conversions, convert_date, convert_datetime
from pymysql.cursors import SSCursor

from etl.secrets import MASK, Secret, redact_url, scrub
from extractors.sql import ClosingSource, SourceError

DEFAULT_PORT = 3306
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 600.0
NET_WRITE_TIMEOUT = 3600  # seconds the server may wait for us to take the next rows

DSN_HELP = "mysql://user:password@host:port/database[?connect_timeout=S&read_timeout=S&snapshot=0]"


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

    @property
    def where(self) -> str:
        """`user@host:port/db`: names the source in messages, without the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


def parse_mysql_dsn(dsn: str) -> MySqlDsn:
    """Parse `mysql://user:pass@host:port/db?...`; user and password may be percent-encoded."""
    shown = redact_url(dsn)
    try:
        u = urlsplit(dsn)
        port = u.port or DEFAULT_PORT
    except ValueError as e:
        raise SourceError(f"bad MySQL DSN {shown}: {scrub(str(e))}; expected {DSN_HELP}") from None
    database = unquote(u.path.lstrip("/"))
    if not u.hostname or not database or "/" in database:
        raise SourceError(f"bad MySQL DSN {shown}: it needs a host and a database; expected {DSN_HELP}")
    options = {k: v[-1] for k, v in parse_qs(u.query).items()}

    def seconds(key: str, default: float) -> float:
        raw = options.pop(key, None)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value <= 0:
            raise SourceError(f"bad MySQL DSN {shown}: {key} must be a positive number of seconds")
        return value

    connect_timeout = seconds("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    read_timeout = seconds("read_timeout", DEFAULT_READ_TIMEOUT)
    snapshot = options.pop("snapshot", "1").lower() not in ("0", "false", "no", "off")
    if options:
        raise SourceError(f"bad MySQL DSN {shown}: unknown option(s) {', '.join(sorted(options))}; "
                          f"expected {DSN_HELP}")
    return MySqlDsn(host=u.hostname, port=port, user=unquote(u.username or ""),
                    password=Secret(unquote(u.password or "")), database=database,
                    connect_timeout=connect_timeout, read_timeout=read_timeout, snapshot=snapshot)


class MySqlSource(ClosingSource):
    """A shop database on MySQL/MariaDB. Open with `open_sql_source(dsn)` or `MySqlSource.from_dsn`."""

    def __init__(self, dsn: MySqlDsn) -> None:
        self._dsn = dsn
        self._busy = False
        self._conn: pymysql.connections.Connection | None = None
        self._conn = self._connect()

    @classmethod
    def from_dsn(cls, dsn: str) -> MySqlSource:
        return cls(parse_mysql_dsn(dsn))

    @property
    def where(self) -> str:
        return self._dsn.where

    def _connect(self) -> pymysql.connections.Connection:
        d = self._dsn
        try:
            conn = pymysql.connect(
                host=d.host, port=d.port, user=d.user, password=d.password.reveal(),
                database=d.database, charset="latin1", use_unicode=False, conv=CONVERSIONS,
                connect_timeout=d.connect_timeout, read_timeout=d.read_timeout,
                write_timeout=d.read_timeout, autocommit=False,
                init_command="SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            )
        except pymysql.MySQLError as e:
            raise self._error(e, "cannot connect") from None
        try:
            with conn.cursor() as cur:
                cur.execute(f"SET SESSION net_write_timeout = {NET_WRITE_TIMEOUT:d}")
                if d.snapshot:
                    cur.execute("START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT")
        except pymysql.MySQLError as e:
            conn.close()
            raise self._error(e, "cannot start the read transaction") from None
        return conn

    def iter_rows(self, query: str, params: Mapping[str, Any] | None = None, *,
                  table: str | None = None) -> Iterator[dict[str, Any]]:
        """Stream rows (text as bytes). One query at a time per source: finish or close the
        previous iterator first (closing early drains the rest of its result from the server)."""
        if self._conn is None:
            raise SourceError(f"MySQL {self.where}: the source is closed")
        if self._busy:
            raise SourceError(f"MySQL {self.where}: another query is still streaming on this source; "
                              "consume or close it before starting the next one")
        what = f"reading {table}" if table else "running a query"
        self._busy = True
        rows = 0
        cur = self._conn.cursor(SSCursor)
        try:
            try:
                cur.execute(query, dict(params or {}))  # a dict always: `%%` means `%` everywhere
            except (ValueError, TypeError, KeyError) as e:
                raise SourceError(f"MySQL {self.where}: bad query or parameters while {what}: {e!r} "
                                  "(placeholders are %(name)s, a literal percent is %%)") from None
            names = [c[0] for c in cur.description or ()]
            for row in cur.fetchall_unbuffered():
                record = dict(zip(names, row))
                if table is not None:
                    record["_table"] = table
                rows += 1
                yield record
        except pymysql.MySQLError as e:
            lost = bool(e.args) and e.args[0] in (2006, 2013)
            if lost:
                self._abandon(cur)
            raise self._error(e, f"{what} failed after {rows} rows" if lost else f"{what} failed") from None
        finally:
            self._busy = False
            if self._conn is not None:
                try:
                    cur.close()  # drains what the consumer did not read
                except (pymysql.MySQLError, OSError):
                    self._abandon(cur)

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

    def _error(self, e: pymysql.MySQLError, doing: str) -> SourceError:
        code = e.args[0] if e.args and isinstance(e.args[0], int) else None
        message = str(e.args[1]) if len(e.args) > 1 else str(e)
        fix = _FIXES.get(code or 0, "")
        text = f"MySQL {self.where}: {doing}: {message}" + (f" (error {code})" if code else "")
        text += f"; {fix}" if fix else ""
        password = self._dsn.password.reveal()
        if password:
            text = text.replace(password, MASK)
        return SourceError(scrub(text))
