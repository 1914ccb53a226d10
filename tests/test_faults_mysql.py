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
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest

from etl.sandbox.generator.shop_a_ddl import ddl_statements
from extractors.sql import open_sql_source
from tests.conftest import MYSQL_URL, _mysql_connect
from tests.logged_run import Run
from tests.tcp_proxy import TcpProxy
from tests.test_extract_sql import PASSWORD, mysql_user  # noqa: F401 - the fixture: a user with a password
from tests.test_full_load_e2e import Sandbox
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


# --- end to end: the CLI through a faulty network, then the CRM against the truth ---------------



@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    p = TcpProxy(urlsplit(MYSQL_URL).port or 3306)
    yield p
    p.close()


def _through(proxy: TcpProxy, user: str, db: str, options: str) -> str:
    return f"mysql://{user}:{quote(PASSWORD, safe='')}@127.0.0.1:{proxy.port}/{db}?{options}"


def _plan_cuts(proxy: TcpProxy, rng: random.Random) -> None:
    """Five breaks of the shop's two result streams at seeded bytes past their column headers
    (~1.3 KB): companies twice, then a restart in the middle of what is left of them (the proxy
    goes down: `_restart_mid_run` brings it back), then contacts twice."""
    proxy.cut_at(rng.randrange(1500, 4000), answer_to=b"FROM b2b_company WHERE")
    proxy.cut_at(rng.randrange(1500, 3000), answer_to=b"FROM b2b_company WHERE")
    proxy.cut_at(rng.randrange(1500, 2500), then_down=True, answer_to=b"FROM b2b_company WHERE")
    proxy.cut_at(rng.randrange(1500, 4000), answer_to=b"FROM b2b_contact c")
    proxy.cut_at(rng.randrange(1500, 3000), answer_to=b"FROM b2b_contact c")


def _restart_mid_run(run: Run, proxy: TcpProxy) -> None:
    """The replica comes back once the extractor has found it down at least twice."""
    run.wait_for("reconnect attempt 2 failed", context=proxy.answers)
    proxy.up()


@pytest.mark.slow
def test_full_load_through_an_outage_cuts_and_a_restart_reaches_the_truth(
        tmp_path, mysql_db: str, mysql_user: str, proxy: TcpProxy) -> None:
    box = Sandbox(tmp_path, mysql_db, seed=21, scale=0.002, rate=1000, burst=1000)
    try:
        db = _db(mysql_db)
        # 1. the replica goes away mid-extract and stays away: bounded attempts, a clear error, exit 3
        proxy.cut_at(2000, then_down=True)
        run = Run(box, box.args("shop-a"),
                  {"CRM_ETL_SHOP_A_DSN": _through(proxy, mysql_user, db, "reconnect_attempts=3&reconnect_wait=0.1")})
        code, out, err = run.finish()
        assert code == 3, err[-3000:]
        assert f"{mysql_user}@127.0.0.1:{proxy.port}/{db}" in err and "reconnecting failed (3 attempt(s))" in err
        assert "check that the server is running" in err
        assert PASSWORD not in out + err

        # 2. it is back; the rerun meets cuts mid-result (seeded bytes) and a restart
        proxy.up()
        _plan_cuts(proxy, random.Random(21))
        run = Run(box, box.args("shop-a"),
                  {"CRM_ETL_SHOP_A_DSN": _through(proxy, mysql_user, db, "reconnect_attempts=30&reconnect_wait=0.3")})
        _restart_mid_run(run, proxy)
        code, out, err = run.finish()
        assert code == 0, err[-3000:]
        assert proxy.cuts_done == 1 + 5, "not every planned cut met a result: the test tested less than it says"
        assert err.count("reconnected;") == 5 and PASSWORD not in out + err, err
        assert "resumes after row 0" not in err, err  # every cut came after rows were handed on
        box.run("shop-b")
        box.check_truth()
    finally:
        box.stop()


def _hide_newest(dsn: str, since: str, share: float) -> tuple[int, int]:
    """Move aside every row written after the newest `share` of the in-scope companies began (and
    those companies' contacts), as if not written yet; `_unhide` puts them back unchanged. Returns
    (companies, contacts) moved. Contacts of companies outside the full load's scope are deleted
    first: the truth never holds them, but a delta reads any contact changed since its watermark
    and loads that contact's company, in scope or not."""
    conn = _mysql_connect(_db(dsn))
    with conn.cursor() as cur:
        cur.execute("DELETE c FROM b2b_contact c JOIN b2b_company co ON co.id = c.company_id "
                    "WHERE co.updated_at < %s AND co.updated_at >= '1000-01-01'", (since,))
        cur.execute("SELECT updated_at FROM b2b_company WHERE updated_at >= %s ORDER BY updated_at", (since,))
        stamps = [r[0] for r in cur.fetchall()]
        cut = stamps[int(len(stamps) * (1 - share))]
        cur.execute("CREATE TABLE held_company AS SELECT * FROM b2b_company WHERE updated_at >= %s", (cut,))
        cur.execute("CREATE TABLE held_contact AS SELECT * FROM b2b_contact "
                    "WHERE updated_at >= %s OR company_id IN (SELECT id FROM held_company)", (cut,))
        moved = []
        for table, held in (("b2b_company", "held_company"), ("b2b_contact", "held_contact")):
            cur.execute(f"DELETE FROM {table} WHERE id IN (SELECT id FROM {held})")
            moved.append(cur.rowcount)
    conn.close()
    return moved[0], moved[1]


def _unhide(dsn: str) -> None:
    conn = _mysql_connect(_db(dsn))
    with conn.cursor() as cur:
        for table, held in (("b2b_company", "held_company"), ("b2b_contact", "held_contact")):
            cur.execute(f"INSERT INTO {table} SELECT * FROM {held}")
            cur.execute(f"DROP TABLE {held}")
    conn.close()


@pytest.mark.slow
def test_delta_through_cuts_and_a_restart_brings_exactly_the_rest(
        tmp_path, mysql_db: str, mysql_user: str, proxy: TcpProxy) -> None:
    """The full load sees the replica before its newest 40 % of companies were written; the delta
    that brings the rest meets cuts mid-result and a restart; then the CRM is the whole truth."""
    box = Sandbox(tmp_path, mysql_db, seed=23, scale=0.002, rate=1000, burst=1000)
    try:
        companies, contacts = _hide_newest(mysql_db, box.manifest.since, 0.4)
        box.run("shop-a")
        box.run("shop-b")
        _unhide(mysql_db)
        _plan_cuts(proxy, random.Random(23))
        run = Run(box, ["delta", "shop-a"],
                  {"CRM_ETL_SHOP_A_DSN": _through(proxy, mysql_user, _db(mysql_db),
                                                  "reconnect_attempts=30&reconnect_wait=0.3")})
        _restart_mid_run(run, proxy)
        code, out, err = run.finish()
        assert code == 0, err[-3000:]
        assert proxy.cuts_done == 5 and err.count("reconnected;") == 5, (proxy.answers, err)
        assert "resumes after row 0" not in err, err
        assert companies > 20 and contacts > 20, (companies, contacts)  # the delta had work to do
        box.check_truth()
    finally:
        box.stop()
