"""State store, SQLite (WAL, synchronous=FULL) and MySQL/MariaDB: rows/s per operation in batches of 1000.

The goal is to stay far off the critical path: a full load touches ~850 000 source records and
is bound by the CRM at ~100 writes/s (>= 72 min), so each store operation should handle the
whole load in about a minute (>= 15 000 rows/s) and commits should cost milliseconds.

MySQL runs on a scratch database of the server in CRM_ETL_BENCH_MYSQL (default: the test
server, CRM_ETL_TEST_MYSQL or mysql://root@127.0.0.1:3306/test), dropped afterwards; without a
server its figures are reported as skipped.
"""
from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from etl.dto import Reject
from etl.state import StateStore, open_state

BATCH = 1000
BATCHES = 50
ROWS_GOAL = ">= 15,000 rows/s"
MYSQL_SERVER = os.environ.get("CRM_ETL_BENCH_MYSQL") or os.environ.get(
    "CRM_ETL_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")


def _rate(batches: list[list], op: Callable[[list], object]) -> float:
    t0 = time.perf_counter()
    for batch in batches:
        op(batch)
    return sum(len(b) for b in batches) / (time.perf_counter() - t0)


def _measure(store: StateStore, backend: str, report: Callable[..., None]) -> None:
    def rows(name: str, value: float) -> None:
        report(f"{backend}: {name}", value, "rows/s", ROWS_GOAL)

    run = store.start_run("full", "bench")
    ids = [[f"company:{7700000000 + b * BATCH + i}" for i in range(BATCH)] for b in range(BATCHES)]

    rows("record_intents (new identities), batch 1000",
         _rate(ids, lambda batch: store.record_intents([(i, "company", "h0") for i in batch], run_id=run)))
    rows("record_intents (known identities), batch 1000",
         _rate(ids, lambda batch: store.record_intents([(i, "company", "h1") for i in batch], run_id=run)))
    rows("record_written, batch 1000", _rate(ids, lambda batch: store.record_written(
        [(i, "company", n, "h1") for n, i in enumerate(batch)], run_id=run)))
    rows("get_entities (all known), batch 1000", _rate(ids, store.get_entities))

    def rejects(batch: list[str]) -> int:
        return store.add_rejects(run, [
            Reject("bench", i, "company", "inn_checksum", "control digit 3, expected 7",
                   {"id": i, "inn": "7707083890", "name": "ООО Ромашка", "phone": "+7 (495) 123-45-67",
                    "email": "info@romashka.ru", "address": "г. Москва, ул. Ленина, д. 1"})
            for i in batch])
    rows("add_rejects (~250 B raw each), batch 1000", _rate(ids, rejects))

    t0 = time.perf_counter()
    n = sum(1 for _ in store.iter_rejects(run_id=run))
    rows("iter_rejects", n / (time.perf_counter() - t0))

    keys = [[(i.split(":")[1], "email", f"info{k}@x.ru") for k, i in enumerate(batch)] for batch in ids]
    rows("put_contact_keys (new keys), batch 1000",
         _rate(keys, lambda batch: store.put_contact_keys([(*k, f"contact:{k[2]}") for k in batch])))
    rows("find_contact_keys (all known), batch 1000", _rate(keys, store.find_contact_keys))
    rows("map_sources, batch 1000", _rate(ids, lambda batch: store.map_sources([("bench", "company", i, i)
                                                                                 for i in batch])))
    commits = 200
    t0 = time.perf_counter()
    for c in range(commits):
        store.set_watermark("bench", str(c))
    report(f"{backend}: one small commit (durable: fsync / redo log flush)",
           (time.perf_counter() - t0) / commits * 1000, "ms", "<= 20 ms")


@contextmanager
def _scratch_mysql_database() -> Iterator[str]:
    """A new database on the bench server, dropped afterwards; yields its state URL."""
    import pymysql

    u = urlsplit(MYSQL_SERVER)
    conn = pymysql.connect(host=u.hostname or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", connect_timeout=3, autocommit=True)
    name = "crm_etl_bench_" + secrets.token_hex(4)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        try:
            yield f"{u.scheme}://{u.netloc}/{name}"
        finally:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


def main(report: Callable[..., None]) -> None:
    with tempfile.TemporaryDirectory() as tmp, open_state(Path(tmp) / "bench.sqlite") as store:
        _measure(store, "sqlite", report)
    with ExitStack() as stack:
        try:
            url = stack.enter_context(_scratch_mysql_database())
        except Exception as e:  # noqa: BLE001 - no server: say so; the SQLite figures still stand
            server = urlsplit(MYSQL_SERVER).netloc.rpartition("@")[2]
            report("mysql: skipped", f"no server at {server} ({type(e).__name__})")
            return
        with open_state(url) as store:
            _measure(store, "mysql", report)
