"""Extractors: JSON export items/s against raw ijson, peak memory vs file size, SQL rows/s.

Goals: the JSON reader adds nothing measurable to ijson's C backend (ratio ~1.0), its peak memory
does not grow with the file, and both sources deliver far more than the CRM can absorb
(~100 writes/s; shop B's ~125 000 partners in a few seconds).
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from extractors.jsonfile import iter_json_items, json_backend

ROOT = Path(__file__).resolve().parents[2]
MYSQL_URL = os.environ.get("CRM_ETL_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
SQL_ROWS = 200_000


def _partner(i: int) -> dict[str, Any]:
    return {
        "PARTNER": f"{i:010d}", "BU_TYPE": "2", "NAME_ORG1": f"Ромашка {i}", "NAME_ORG2": "",
        "LEGAL_ENTY": "ООО", "STATUS": "E0002", "XDELE": "", "CHANGED_AT": "20240115103000",
        "TAXNUMS": [{"TAXTYPE": "RU1", "TAXNUM": "7707083893"}, {"TAXTYPE": "RU2", "TAXNUM": "770701001"}],
        "ADDRESS": {"COUNTRY": "RU", "POST_CODE1": "101000", "CITY1": "Москва", "STREET": "ул. Тверская"},
        "COMM": {"PHONE": [{"TEL_NUMBER": "8 495 123-45-67", "TEL_EXTENS": "123"}],
                 "EMAIL": [{"SMTP_ADDR": "Info@Romashka.ru"}]},
        "BANKS": [{"BANKL": "044525225", "BANKN": "40702810938000012345", "BANKA": "ПАО СБЕРБАНК"}],
        "CONTACTS": [{"PARTNER": f"{i + j:010d}", "NAME_LAST": "Петров", "NAME_FIRST": "Иван",
                      "NAME_MIDDLE": "Сергеевич", "XDELE": "", "SCORE": j * 0.5,
                      "COMM": {"EMAIL": [{"SMTP_ADDR": f"i.petrov{j}@romashka.ru"}]}} for j in range(4)],
    }


def _write_export(path: Path, size: int, lines: bool = False) -> int:
    n = 0
    with open(path, "wb") as f:
        f.write(b"" if lines else b"[\n")
        while f.tell() < size:
            if n and not lines:
                f.write(b",\n")
            f.write(json.dumps(_partner(n), ensure_ascii=False).encode("utf-8"))
            f.write(b"\n" if lines else b"")
            n += 1
        f.write(b"" if lines else b"\n]\n")
    return n


def _best_rate(count: Callable[[], int], runs: int = 3) -> float:
    best = 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        n = count()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def _count(items: Iterable[Any]) -> int:
    return sum(1 for _ in items)


def _raw_ijson(path: Path) -> int:
    with open(path, "rb") as f:
        return _count(json_backend().items(f, "item", use_float=True))


PEAK_PROBE = textwrap.dedent("""
    import sys
    from extractors.jsonfile import iter_json_items
    n = sum(1 for _ in iter_json_items(sys.argv[1]))
    with open("/proc/self/status") as f:
        print(next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")))
""")


def _peak_rss_mb(path: Path) -> float:
    out = subprocess.run([sys.executable, "-c", PEAK_PROBE, str(path)], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    return int(out.stdout) / 1024


def _bench_json(report: Callable[..., None], tmp: Path) -> None:
    big = tmp / "export.json"
    n = _write_export(big, 50_000_000)
    mb = big.stat().st_size / 1e6
    raw = _best_rate(lambda: _raw_ijson(big))
    ours = _best_rate(lambda: _count(iter_json_items(big, progress=lambda done, total: None)))
    report(f"ijson.items raw ({json_backend().backend_name}), {mb:.0f} MB, {n} partners", raw, "items/s")
    report("iter_json_items (same file, with progress)", ours, "items/s", ">= 12,500 (125k partners in 10 s)")
    report("iter_json_items / raw ijson", ours / raw, "ratio", "~1.0 (>= 0.95)")
    report("iter_json_items throughput", ours * (big.stat().st_size / n) / 1e6, "MB/s")

    lines = tmp / "export.jsonl"
    _write_export(lines, 20_000_000, lines=True)
    report("iter_json_items, JSON lines (20 MB)", _best_rate(lambda: _count(iter_json_items(lines))),
           "items/s", ">= 12,500")

    if Path("/proc/self/status").exists():
        small = tmp / "small.json"
        _write_export(small, 5_000_000)
        peak_small, peak_big = _peak_rss_mb(small), _peak_rss_mb(big)
        report("peak RSS reading a 5 MB export", peak_small, "MB")
        report(f"peak RSS reading a {mb:.0f} MB export", peak_big, "MB", "same as for 5 MB (flat)")
        report("peak RSS growth for 10x the file", peak_big - peak_small, "MB", "< 2 MB")


def _bench_mysql(report: Callable[..., None]) -> None:
    try:
        import pymysql

        u = urlsplit(MYSQL_URL)
        admin = pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root",
                                password=u.password or "", connect_timeout=3, autocommit=True, charset="latin1")
    except Exception as e:  # noqa: BLE001 - any failure means: no server to measure
        report("MySQL SSCursor rows/s", "n/a", "", f"(no server at {u.hostname}:{u.port}: {type(e).__name__})")
        return
    from extractors.sql import open_sql_source

    db = "crm_etl_bench_" + secrets.token_hex(4)
    dsn = f"{u.scheme}://{u.netloc}/{db}"
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET latin1")
            cur.execute(f"""CREATE TABLE `{db}`.b2b_company (
                id INT UNSIGNED NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, inn VARCHAR(32) NULL,
                phone VARCHAR(255) NULL, legal_address TEXT NULL, is_active TINYINT(1) NOT NULL DEFAULT 1,
                created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL) DEFAULT CHARSET=latin1""")
            cur.execute(f"""INSERT INTO `{db}`.b2b_company
                SELECT seq, CONCAT('ÎÎÎ "Ðîìàøêà" ', seq), '7707083893', '8 (495) 123-45-67',
                       REPEAT('ã. Ìîñêâà, óë. Ëåíèíà, ä. 1 ', 3), 1, NOW(), NOW()
                FROM `{db}`.seq_1_to_{SQL_ROWS}""")
        query = "SELECT * FROM b2b_company WHERE updated_at >= %(since)s ORDER BY id"
        params = {"since": "2000-01-01 00:00:00"}

        def ours() -> int:
            with open_sql_source(dsn) as source:
                return _count(source.iter_rows(query, params, table="b2b_company"))

        def raw() -> int:
            conn = pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root",
                                   password=u.password or "", database=db, charset="latin1", use_unicode=False)
            try:
                with conn.cursor(pymysql.cursors.SSCursor) as cur:
                    cur.execute(query, params)
                    return _count(cur.fetchall_unbuffered())
            finally:
                conn.close()

        raw_rate, our_rate = _best_rate(raw, 2), _best_rate(ours, 2)
        report(f"pymysql SSCursor raw, {SQL_ROWS} rows", raw_rate, "rows/s")
        report("MySqlSource.iter_rows (dicts, bytes, _table)", our_rate, "rows/s", ">= 20,000 (53k companies in < 3 s)")
        report("MySqlSource / raw SSCursor", our_rate / raw_rate, "ratio", ">= 0.8")
        _bench_sqlite(report, query, params)
    except pymysql.MySQLError as e:
        report("MySQL SSCursor rows/s", "n/a", "", f"({e})")
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()


def _bench_sqlite(report: Callable[..., None], query: str, params: dict[str, Any]) -> None:
    import sqlite3

    from extractors.sql import open_sql_source

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shop_a.sqlite"
        conn = sqlite3.connect(path)
        conn.execute("""CREATE TABLE b2b_company (id INTEGER PRIMARY KEY, name VARCHAR(255), inn VARCHAR(32),
            phone VARCHAR(255), legal_address TEXT, is_active TINYINT(1), created_at DATETIME, updated_at DATETIME)""")
        with conn:
            conn.executemany("INSERT INTO b2b_company VALUES (?,?,?,?,?,?,?,?)", (
                (i, 'ООО "Ромашка"'.encode("cp1251"), b"7707083893", b"8 (495) 123-45-67",
                 "г. Москва, ул. Ленина, д. 1 ".encode("cp1251") * 3, 1,
                 "2024-01-01 10:00:00", "2024-01-01 10:00:00") for i in range(1, SQL_ROWS + 1)))
        conn.close()

        def ours() -> int:
            with open_sql_source(f"sqlite:///{path}") as source:
                return _count(source.iter_rows(query, params, table="b2b_company"))

        report(f"SqliteSource.iter_rows, {SQL_ROWS} rows", _best_rate(ours, 2), "rows/s", ">= 20,000")


def main(report: Callable[..., None]) -> None:
    if json_backend().backend_name != "yajl2_c":
        report("ijson backend", json_backend().backend_name, "", "yajl2_c")
    with tempfile.TemporaryDirectory() as tmp:
        _bench_json(report, Path(tmp))
    _bench_mysql(report)
