"""Shop A in a real MariaDB: the shop's own DDL, raw cp1251/UTF-8 bytes in latin1 columns, the
same rows as the SQLite file."""
from __future__ import annotations

import re
import sqlite3
from datetime import date, datetime
from urllib.parse import urlsplit

import pymysql
import pytest

from etl.sandbox.generator import GeneratorError, generate
from etl.sandbox.generator.shop_a_sink import COLUMNS

pytestmark = pytest.mark.mysql
NOW = date(2025, 6, 1)


def connect(dsn: str) -> pymysql.connections.Connection:
    u = urlsplit(dsn)
    return pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", database=u.path.strip("/"), charset="latin1")


def mysql_rows(dsn: str, table: str) -> list[tuple]:
    """Every row with text read as the stored bytes (HEX, so no connection charset is involved)."""
    cols = COLUMNS[table]
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table,))
        types = dict(cur.fetchall())
        select = ", ".join(f"HEX({c})" if types[c] in ("varchar", "text") else c for c in cols)
        cur.execute(f"SELECT {select} FROM {table} ORDER BY id")
        rows = cur.fetchall()
    out = []
    for row in rows:
        out.append(tuple(bytes.fromhex(v) if types[c] in ("varchar", "text") and v is not None else v
                         for c, v in zip(cols, row)))
    return out


def sqlite_rows(path, table: str) -> list[tuple]:
    db = sqlite3.connect(path)
    rows = db.execute(f"SELECT {', '.join(COLUMNS[table])} FROM {table} ORDER BY id").fetchall()
    fix = [c in ("created_at", "updated_at") for c in COLUMNS[table]]
    return [tuple(datetime.fromisoformat(v) if f else v for f, v in zip(fix, r)) for r in rows]


def test_mysql_holds_the_same_bytes_as_the_sqlite_file(tmp_path, mysql_db):
    generate(tmp_path, seed=5, scale=0.003, now=NOW, mysql_dsn=mysql_db)
    for table in ("b2b_company", "b2b_contact"):
        in_mysql = mysql_rows(mysql_db, table)
        assert in_mysql and in_mysql == sqlite_rows(tmp_path / "shop_a.sqlite", table)
    with connect(mysql_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        assert {r[0] for r in cur.fetchall()} == {"latin1_swedish_ci"}
    old = new = 0
    for row in mysql_rows(mysql_db, "b2b_contact"):
        name, created = row[2], row[8]
        if not name or not re.search(rb"[\x80-\xff]", name):
            continue
        if created < datetime(2021, 1, 1):      # the old PHP site: Windows-1251 bytes
            with pytest.raises(UnicodeDecodeError):
                name.decode("utf-8")
            assert re.search("[А-Яа-яЁё]", name.decode("cp1251"))
            old += 1
        else:                                   # the 2021+ admin panel: UTF-8 bytes
            assert re.search("[А-Яа-яЁё]", name.decode("utf-8"))
            new += 1
    assert old and new


def test_existing_tables_are_kept_unless_replacing(tmp_path, mysql_db):
    generate(tmp_path / "a", seed=1, scale=0.0005, now=NOW, mysql_dsn=mysql_db)
    with pytest.raises(GeneratorError, match="already has b2b_company"):
        generate(tmp_path / "b", seed=2, scale=0.0005, now=NOW, mysql_dsn=mysql_db)
    generate(tmp_path / "c", seed=2, scale=0.0005, now=NOW, mysql_dsn=mysql_db, replace=True)
    assert mysql_rows(mysql_db, "b2b_company") == sqlite_rows(tmp_path / "c" / "shop_a.sqlite", "b2b_company")
