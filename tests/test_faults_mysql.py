"""Faults of the shop's MySQL replica: the connection killed or cut in the middle of a full extract
and of a delta, the replica restarting, the replica gone for good.

The extractor reconnects with backoff and resumes each query after the last row it handed on
(keyset on the query's order), so the run finishes without a row twice or a row missing; when the
server does not come back it stops with an error naming host and database, exit 3, and a rerun
finishes the job. Mid-stream breaks come from a server-side `KILL` (a big table, so the server is
still sending) and from a TCP proxy in front of the shared MariaDB (`tests/tcp_proxy.py`) that cuts
a result at a seeded byte and can refuse connections like a restarting server: the shared server
itself is never restarted (others use it), and a private mariadbd would cost seconds to set up
for what the client sees identically (a broken socket, then refused connections).
"""
from __future__ import annotations

import datetime as dt
import random
import secrets
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import pymysql
import pytest

from etl.sandbox.generator.shop_a_ddl import ddl_statements
from extractors.sql import open_sql_source
from tests.conftest import _mysql_connect
from tests.tcp_proxy import TcpProxy
from transformers import shop_a

pytestmark = [pytest.mark.mysql]

BIG = 20_000  # rows of ~1 KB: far more than the socket buffers hold, so the server is mid-send


def _db(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


@pytest.fixture
def big_shop(mysql_db: str) -> str:
    conn = _mysql_connect(_db(mysql_db))
    with conn.cursor() as cur:
        for ddl in ddl_statements():
            cur.execute(ddl)
        # MariaDB's SEQUENCE engine: 20 000 rows in one statement, every 7th out of scope
        cur.execute(f"INSERT INTO b2b_company (id, name, inn, legal_address, is_active, created_at, updated_at) "
                    f"SELECT seq, CONCAT('Company ', seq), '7707083893', REPEAT('x', 1000), 1, "
                    f"'2025-01-01', IF(seq % 7 = 0, '2020-01-01', '2025-06-01') FROM seq_1_to_{BIG}")
    conn.close()
    return mysql_db


def _extractor_thread(database: str) -> int:
    """The extractor's connection, as an operator would find it: information_schema.processlist."""
    conn = _mysql_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s AND info LIKE %s",
                        (database, "SELECT id, name%"))
            (thread,), = cur.fetchall()
            return int(thread)
    finally:
        conn.close()


def test_a_connection_killed_mid_extract_resumes_after_the_last_row(big_shop: str) -> None:
    table, sql = shop_a.SQL_FULL[0]
    expected = [i for i in range(1, BIG + 1) if i % 7]
    with open_sql_source(big_shop + "?reconnect_wait=0.2") as source:
        rows = source.iter_rows(sql, {"since": dt.datetime(2025, 1, 1)}, table=table)
        got = [next(rows)["id"] for _ in range(500)]
        conn = _mysql_connect()
        with conn.cursor() as cur:
            cur.execute(f"KILL CONNECTION {_extractor_thread(_db(big_shop))}")
        conn.close()
        got += [row["id"] for row in rows]
        assert source.reconnects == 1, "the kill was not seen mid-stream: the test tested nothing"
    assert got == expected  # every row once, in order: nothing repeated, nothing skipped
