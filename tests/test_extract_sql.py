"""SQL sources: the same behaviour from real MariaDB and from the sandbox's SQLite stand-in.

Raw bytes round-trip (cp1251 and UTF-8 in latin1 columns, every byte value), NULLs and zero dates,
streaming with flat memory, one consistent snapshot, and errors that name the source and the fix
but never the password.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import sqlite3
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlsplit

import pymysql
import pytest

from etl.secrets import Secret
from extractors.sql import SourceError, SqlSource, open_sql_source
from etl.sandbox.generator.shop_a_ddl import ddl_statements
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]

# shop_a.sql, as the shop has it (latin1 tables): the generator's verbatim copy.
MYSQL_DDL = ddl_statements()


def sqlite_ddl(statement: str) -> str:
    """The same tables in SQLite (the sandbox stores text columns as BLOBs of raw bytes)."""
    lines = [line.replace("INT UNSIGNED NOT NULL AUTO_INCREMENT", "INTEGER PRIMARY KEY")
             for line in statement.splitlines()
             if not line.strip().startswith(("PRIMARY KEY", "KEY "))]
    body = "\n".join(lines).replace(") ENGINE=InnoDB DEFAULT CHARSET=latin1", ")")
    head, _, _ = body.rpartition(",")  # the comma that preceded the dropped key lines
    return head + "\n)"


CP1251_NAME = 'ООО "Ромашка" '.encode("cp1251")          # old PHP site, trailing space kept
UTF8_NAME = 'ООО "Ромашка"'.encode("utf-8")               # 2021+ admin panel
EVERY_BYTE = bytes(range(256))                            # 0x80-0x9F and 0x98 included
T0 = dt.datetime(2024, 3, 1, 9, 30, 15)


def company(id: int, name: bytes, **kw: Any) -> dict[str, Any]:
    row = {"id": id, "name": name, "legal_form": None, "inn": b"7707083893", "kpp": None, "ogrn": None,
           "phone": None, "email": None, "legal_address": None, "bank_name": None, "bik": None,
           "account": None, "corr_account": None, "is_active": 1, "created_at": T0, "updated_at": T0}
    row.update(kw)
    return row


def contact(id: int, company_id: int, full_name: bytes | None, **kw: Any) -> dict[str, Any]:
    row = {"id": id, "company_id": company_id, "full_name": full_name, "position": None, "phone": None,
           "mobile": None, "email": None, "is_deleted": 0, "created_at": T0, "updated_at": T0}
    row.update(kw)
    return row


class ShopDb:
    """A database with the shop A tables, written through the backend's own driver."""

    def __init__(self, dsn: str, execute: Callable[[str, tuple[Any, ...]], None],
                 raw_insert: Callable[[str, int], None]) -> None:
        self.dsn = dsn
        self.execute = execute
        self.fill_companies = raw_insert  # (filler text, row count): bulk rows for streaming tests

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            cols = ", ".join(row)
            marks = ", ".join(["%s"] * len(row))
            self.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(row.values()))


def mysql_connect(dsn: str, **kw: Any) -> pymysql.connections.Connection:
    u = urlsplit(dsn)
    return pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", database=u.path.lstrip("/") or None,
                           charset="latin1", autocommit=True, **kw)


def mysql_shop_db(dsn: str) -> Iterator[ShopDb]:
    conn = mysql_connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")  # the old shop has zero dates
        for ddl in MYSQL_DDL:
            cur.execute(ddl)

    def execute(sql: str, params: tuple[Any, ...] = ()) -> None:
        with conn.cursor() as cur:
            cur.execute(sql, params)

    def fill(filler: str, n: int) -> None:
        digits = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 " \
                 "UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
        execute(f"""INSERT INTO b2b_company (id, name, legal_address, inn, created_at, updated_at)
                   SELECT n + 1, CONCAT('company ', n), %s, '7707083893', NOW(), NOW() FROM (
                     SELECT a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d + 100000*g.d AS n
                     FROM {digits} a, {digits} b, {digits} c, {digits} e, {digits} f, {digits} g) s
                   WHERE n < %s""", (filler, n))

    try:
        yield ShopDb(dsn, execute, fill)
    finally:
        conn.close()


def sqlite_shop_db(path: Path) -> Iterator[ShopDb]:
    conn = sqlite3.connect(path, isolation_level=None)
    for ddl in MYSQL_DDL:
        conn.execute(sqlite_ddl(ddl))

    def execute(sql: str, params: tuple[Any, ...] = ()) -> None:
        conn.execute(sql.replace("%s", "?"), tuple(
            v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, dt.datetime) else v for v in params))

    def fill(filler: str, n: int) -> None:
        now = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        conn.execute("BEGIN")  # one transaction, not one fsync per row
        conn.executemany(
            "INSERT INTO b2b_company (id, name, legal_address, inn, created_at, updated_at) VALUES (?,?,?,?,?,?)",
            ((i + 1, f"company {i}".encode(), filler.encode(), b"7707083893", now, now) for i in range(n)))
        conn.execute("COMMIT")

    try:
        yield ShopDb(f"sqlite:///{path}", execute, fill)
    finally:
        conn.close()


@pytest.fixture(params=["mysql", "sqlite"])
def shop_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ShopDb]:
    if request.param == "mysql":
        yield from mysql_shop_db(request.getfixturevalue("mysql_db"))
    else:
        yield from sqlite_shop_db(tmp_path / "shop_a.sqlite")


COMPANIES = "SELECT * FROM b2b_company WHERE updated_at >= %(since)s ORDER BY id"


# --- the same behaviour on both backends -------------------------------------------------------

def test_text_columns_come_back_as_the_exact_stored_bytes(shop_db: ShopDb) -> None:
    rows = [
        company(1, CP1251_NAME, legal_form="ÎÎÎ".encode("cp1252"), phone=b" 8 (495) 123-45-67, 89161234567 "),
        company(2, UTF8_NAME, legal_address=EVERY_BYTE, email=b"\x98\x80\x9f"),
        company(3, b"", inn=None, kpp=None, is_active=0),
    ]
    shop_db.insert("b2b_company", rows)
    with open_sql_source(shop_db.dsn) as source:
        got = list(source.iter_rows(COMPANIES, {"since": dt.datetime(2020, 1, 1)}, table="b2b_company"))
    assert got == [dict(r, _table="b2b_company") for r in rows]
    assert type(got[0]["name"]) is bytes and type(got[1]["id"]) is int and type(got[2]["is_active"]) is int
    assert got[0]["name"].decode("cp1251") == 'ООО "Ромашка" '
    assert got[1]["name"].decode("utf-8") == 'ООО "Ромашка"'


def test_nulls_datetimes_and_zero_dates(shop_db: ShopDb) -> None:
    shop_db.insert("b2b_company", [company(1, b"x")])
    shop_db.execute("INSERT INTO b2b_contact (id, company_id, full_name, created_at, updated_at) "
                    "VALUES (7, 1, NULL, '0000-00-00 00:00:00', '2023-12-31 23:59:59')", ())
    with open_sql_source(shop_db.dsn) as source:
        (row,) = source.iter_rows("SELECT * FROM b2b_contact WHERE company_id IN (%(ids)s)",
                                  {"ids": 1}, table="b2b_contact")
    assert row["full_name"] is None and row["email"] is None
    assert row["created_at"] is None  # a zero date, not a crash and not a string
    assert row["updated_at"] == dt.datetime(2023, 12, 31, 23, 59, 59) and row["updated_at"].tzinfo is None
    assert row["_table"] == "b2b_contact"


def test_scope_parameters_and_literal_percent(shop_db: ShopDb) -> None:
    shop_db.insert("b2b_company", [
        company(1, b"old", updated_at=dt.datetime(2022, 12, 31, 23, 59, 59)),
        company(2, b"edge", updated_at=dt.datetime(2023, 1, 1, 0, 0, 0)),
        company(3, b"new 100%", updated_at=dt.datetime(2024, 6, 1, 12, 0, 0)),
    ])
    since = dt.datetime(2023, 1, 1)
    with open_sql_source(shop_db.dsn) as source:
        ids = [r["id"] for r in source.iter_rows(COMPANIES, {"since": since})]
        pct = [(r["id"], r["p"]) for r in source.iter_rows(
            "SELECT id, '100%%' AS p FROM b2b_company WHERE id > %(id)s", {"id": 2})]
        no_table = next(source.iter_rows("SELECT id FROM b2b_company ORDER BY id"))
    assert ids == [2, 3] and pct == [(3, b"100%")]
    assert "_table" not in no_table


def test_early_stop_then_next_query_on_the_same_source(shop_db: ShopDb) -> None:
    shop_db.fill_companies("x" * 100, 5000)
    shop_db.insert("b2b_contact", [contact(1, 1, b"\xc8\xe2\xe0\xed\xee\xe2 \xc8.\xc8.")])
    with open_sql_source(shop_db.dsn) as source:
        rows = source.iter_rows("SELECT id FROM b2b_company ORDER BY id", table="b2b_company")
        assert [next(rows)["id"] for _ in range(10)] == list(range(1, 11))
        rows.close()  # the consumer stopped early
        (c,) = source.iter_rows("SELECT * FROM b2b_contact", table="b2b_contact")
    assert c["full_name"].decode("cp1251") == "Иванов И.И."


def test_unknown_table_is_a_source_error_naming_the_source(shop_db: ShopDb) -> None:
    with open_sql_source(shop_db.dsn) as source:
        with pytest.raises(SourceError, match="b2b_companyy") as e:
            list(source.iter_rows("SELECT * FROM b2b_companyy", table="b2b_company"))
    where = urlsplit(shop_db.dsn).path.lstrip("/").rsplit("/", 1)[-1]
    assert where in str(e.value)


STREAM_PROBE = textwrap.dedent("""
    import json, sys
    from extractors.sql import open_sql_source

    def rss_kb():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

    with open_sql_source(sys.argv[1]) as source:
        rows = source.iter_rows("SELECT * FROM b2b_company ORDER BY id", table="b2b_company")
        n, payload, base, peak = 0, 0, rss_kb(), 0  # before the query runs
        for row in rows:
            n += 1
            payload += sum(len(v) for v in row.values() if isinstance(v, bytes))
            if n % 5000 == 0:
                peak = max(peak, rss_kb())
    print(json.dumps({"rows": n, "payload": payload, "base_kb": base, "peak_kb": max(peak, rss_kb())}))
""")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_rows_are_streamed_with_flat_memory(shop_db: ShopDb) -> None:
    n = 200_000
    shop_db.fill_companies("Москва, ул. Тверская, д. 1".encode("cp1251").decode("latin1") * 8, n)
    out = subprocess.run([sys.executable, "-c", STREAM_PROBE, shop_db.dsn], capture_output=True,
                         text=True, cwd=ROOT, check=True, timeout=120)
    m = json.loads(out.stdout)
    assert m["rows"] == n
    growth = (m["peak_kb"] - m["base_kb"]) * 1024
    assert growth < m["payload"] * 0.05, m  # holding the result would take more than the payload


# --- MySQL specifics ---------------------------------------------------------------------------

@pytest.fixture
def mysql_shop(mysql_db: str) -> Iterator[ShopDb]:
    yield from mysql_shop_db(mysql_db)


PASSWORD = "Pa55@Secret/Xyzzy-" + secrets.token_hex(3)  # recognisable, needs percent-encoding
WRONG_PASSWORD = "Wr0ng-Plugh-" + secrets.token_hex(3)


@pytest.fixture
def mysql_user(mysql_db: str) -> Iterator[str]:
    """A user with a password and SELECT on the test database; yields its user name."""
    name = "crm_etl_u_" + secrets.token_hex(4)
    db = urlsplit(mysql_db).path.lstrip("/")
    root = mysql_connect(mysql_db)
    hosts = ("%", "localhost", "127.0.0.1")
    try:
        with root.cursor() as cur:
            for host in hosts:
                cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (name, host, PASSWORD))
                cur.execute(f"GRANT SELECT ON `{db}`.* TO %s@%s", (name, host))
    except pymysql.MySQLError as e:
        pytest.skip(f"cannot create a test user on this server: {e}")
    try:
        yield name
    finally:
        with root.cursor() as cur:
            for host in hosts:
                cur.execute("DROP USER IF EXISTS %s@%s", (name, host))
        root.close()


def user_dsn(mysql_db: str, user: str, password: str, database: str | None = None) -> str:
    u = urlsplit(mysql_db)
    return f"mysql://{user}:{quote(password, safe='')}@{u.hostname}:{u.port or 3306}/" \
           f"{database or u.path.lstrip('/')}"


def assert_no_password(error: BaseException, *passwords: str) -> None:
    shown = "".join(traceback.format_exception(error)) + repr(error)
    for pw in passwords:
        assert pw not in shown and quote(pw, safe="") not in shown


def test_user_with_password_reads(mysql_shop: ShopDb, mysql_user: str) -> None:
    mysql_shop.insert("b2b_company", [company(1, CP1251_NAME)])
    with open_sql_source(Secret(user_dsn(mysql_shop.dsn, mysql_user, PASSWORD))) as source:
        assert [r["name"] for r in source.iter_rows("SELECT name FROM b2b_company")] == [CP1251_NAME]


def test_wrong_password_is_a_clear_error_without_the_password(
        mysql_shop: ShopDb, mysql_user: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError) as e:
        open_sql_source(user_dsn(mysql_shop.dsn, mysql_user, WRONG_PASSWORD))
    assert "Access denied" in str(e.value) and mysql_user in str(e.value)
    assert "password in the DSN" in str(e.value) and "127.0.0.1" in str(e.value)
    assert_no_password(e.value, WRONG_PASSWORD, PASSWORD)
    assert WRONG_PASSWORD not in caplog.text


def test_unknown_database_is_a_clear_error_without_the_password(mysql_shop: ShopDb, mysql_user: str) -> None:
    with pytest.raises(SourceError) as e:
        open_sql_source(user_dsn(mysql_shop.dsn, mysql_user, PASSWORD, database="no_such_shop_db"))
    assert "no_such_shop_db" in str(e.value)
    assert "database name" in str(e.value) or "grant" in str(e.value)  # MariaDB may say 1044 first
    assert_no_password(e.value, PASSWORD)


def test_connection_refused_names_host_and_port(mysql_server: str) -> None:
    port = free_port()
    with pytest.raises(SourceError) as e:
        open_sql_source(f"mysql://shop:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/shop?connect_timeout=2")
    assert f"127.0.0.1:{port}/shop" in str(e.value) and "server is running" in str(e.value)
    assert_no_password(e.value, PASSWORD)


@pytest.mark.parametrize("dsn", [
    "mysql://shop:{pw}@127.0.0.1:99999/shop",          # port out of range
    "mysql://shop:{pw}@127.0.0.1:3306/",               # no database
    "mysql://shop:{pw}@127.0.0.1:3306/shop?timeout=5",  # unknown option
    "postgresql://shop:{pw}@127.0.0.1/shop",           # not a supported source
])
def test_bad_dsn_is_a_clear_error_without_the_password(dsn: str) -> None:
    with pytest.raises(SourceError) as e:
        open_sql_source(dsn.format(pw=quote(PASSWORD, safe="")))
    assert "DSN" in str(e.value)
    assert_no_password(e.value, PASSWORD)


def test_missing_dsn_says_which_variable_to_set() -> None:
    with pytest.raises(SourceError, match="CRM_ETL_SHOP_A_DSN"):
        open_sql_source(Secret(""))


def test_one_snapshot_for_all_queries_of_a_source(mysql_shop: ShopDb) -> None:
    mysql_shop.insert("b2b_company", [company(1, b"first")])
    with open_sql_source(mysql_shop.dsn) as snap, open_sql_source(mysql_shop.dsn + "?snapshot=0") as live:
        mysql_shop.insert("b2b_company", [company(2, b"written after the extraction began")])
        assert [r["id"] for r in snap.iter_rows("SELECT id FROM b2b_company ORDER BY id")] == [1]
        assert [r["id"] for r in live.iter_rows("SELECT id FROM b2b_company ORDER BY id")] == [1, 2]


def test_two_streams_at_once_on_one_source_are_refused(mysql_shop: ShopDb) -> None:
    mysql_shop.fill_companies("x", 10)
    with open_sql_source(mysql_shop.dsn) as source:
        first = source.iter_rows("SELECT id FROM b2b_company")
        next(first)
        with pytest.raises(SourceError, match="still streaming"):
            next(source.iter_rows("SELECT id FROM b2b_contact"))
        assert len(list(first)) == 9


def test_connection_dropped_mid_stream_is_a_source_error(mysql_shop: ShopDb) -> None:
    mysql_shop.fill_companies("x" * 200, 100_000)
    db = urlsplit(mysql_shop.dsn).path.lstrip("/")
    admin = mysql_connect(mysql_shop.dsn)
    got = 0
    with open_sql_source(mysql_shop.dsn) as source:
        rows = source.iter_rows("SELECT * FROM b2b_company ORDER BY id", table="b2b_company")
        with pytest.raises(SourceError) as e:
            for _ in rows:
                got += 1
                if got == 100:
                    with admin.cursor() as cur:
                        cur.execute("SELECT id FROM information_schema.processlist "
                                    "WHERE db = %s AND command = 'Query' AND id <> CONNECTION_ID()", (db,))
                        for (thread,) in cur.fetchall():
                            cur.execute(f"KILL {int(thread)}")
    admin.close()
    assert got < 100_000
    assert "lost" in str(e.value).lower() and db in str(e.value) and "rerun" in str(e.value)


# --- SQLite specifics --------------------------------------------------------------------------

@pytest.fixture
def sqlite_shop(tmp_path: Path) -> Iterator[ShopDb]:
    yield from sqlite_shop_db(tmp_path / "shop_a.sqlite")


def test_sqlite_text_stored_as_text_comes_back_as_utf8_bytes(sqlite_shop: ShopDb) -> None:
    sqlite_shop.insert("b2b_company", [company(1, 'ООО "Ромашка"')])  # type: ignore[arg-type]
    with open_sql_source(sqlite_shop.dsn) as source:
        (row,) = source.iter_rows("SELECT name, created_at FROM b2b_company")
    assert row == {"name": UTF8_NAME, "created_at": T0}


def test_sqlite_datetimes_in_text_columns_as_the_generator_declares_them(tmp_path: Path) -> None:
    path = tmp_path / "shop_a.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE b2b_contact (id INTEGER PRIMARY KEY, full_name BLOB, position TEXT, "
                 "created_at TEXT NOT NULL, updated_at TEXT NOT NULL)")
    conn.execute("INSERT INTO b2b_contact VALUES (1, ?, 'Директор', '0000-00-00 00:00:00', "
                 "'2024-03-01 09:30:15')", ("2024-03-01 09:30:15".encode("cp1251"),))
    conn.commit()
    conn.close()
    with open_sql_source(f"sqlite:///{path}") as source:
        (row,) = source.iter_rows("SELECT * FROM b2b_contact", table="b2b_contact")
    assert row == {"id": 1, "full_name": b"2024-03-01 09:30:15", "position": "Директор".encode("utf-8"),
                   "created_at": None, "updated_at": T0, "_table": "b2b_contact"}


def test_sqlite_is_opened_read_only(sqlite_shop: ShopDb) -> None:
    sqlite_shop.insert("b2b_company", [company(1, b"keep me")])
    with open_sql_source(sqlite_shop.dsn) as source:
        with pytest.raises(SourceError, match="readonly"):
            list(source.iter_rows("DELETE FROM b2b_company"))
        assert [r["name"] for r in source.iter_rows("SELECT name FROM b2b_company")] == [b"keep me"]


def test_sqlite_dsn_forms(sqlite_shop: ShopDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(sqlite_shop.dsn.removeprefix("sqlite:///"))
    sqlite_shop.insert("b2b_company", [company(1, b"x")])
    monkeypatch.chdir(tmp_path)
    for dsn in (str(path), f"sqlite:///{path}", f"sqlite:///{path.name}", f"sqlite://{path}"):
        with open_sql_source(dsn) as source:
            assert isinstance(source, SqlSource)
            assert [r["id"] for r in source.iter_rows("SELECT id FROM b2b_company")] == [1], dsn


def test_sqlite_missing_or_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        open_sql_source(f"sqlite:///{tmp_path / 'missing.sqlite'}")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SourceError, match="junk.sqlite"):
        open_sql_source(str(junk))
