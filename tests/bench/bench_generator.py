"""Data generator: source records written per second and peak memory at two scales (and MySQL).

Goals: the reference case (scale 1.0, ~853 000 source records) in a few minutes, i.e. well over
3 000 records/s; peak memory the same at both scales (streaming: one company at a time).
Each scale runs in its own process so `ru_maxrss` is that run's peak.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
SCALES = (0.01, 0.1)
MYSQL_URL = os.environ.get("CRM_ETL_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")

_CHILD = """
import json, resource, sys, time
from datetime import date
from etl.sandbox.generator import generate
t0 = time.perf_counter()
m = generate(sys.argv[1], seed=1, scale=float(sys.argv[2]), now=date(2025, 6, 1), mysql_dsn=sys.argv[3] or None)
print(json.dumps({"records": m.source_records, "seconds": time.perf_counter() - t0,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _run(out: Path, scale: float, dsn: str = "") -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(out), str(scale), dsn], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mysql_database() -> tuple[str, object] | None:
    try:
        import pymysql

        u = urlsplit(MYSQL_URL)
        conn = pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root",
                               password=u.password or "", autocommit=True, connect_timeout=3)
    except Exception:  # noqa: BLE001 - no server: the MySQL figure is skipped
        return None
    name = "crm_etl_bench_" + secrets.token_hex(4)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET latin1")
    return f"{u.scheme}://{u.netloc}/{name}", (conn, name)


def main(report) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        peaks = []
        for scale in SCALES:
            r = _run(Path(tmp) / f"s{scale}", scale)
            report(f"scale {scale}: source records written per second", r["records"] / r["seconds"],
                   "records/s", "> 3000")
            report(f"scale {scale}: peak RSS ({r['records']} records)", r["rss_kb"] / 1024, "MiB", "flat")
            peaks.append(r["rss_kb"])
        report(f"peak RSS ratio, scale {SCALES[1]} / {SCALES[0]}", peaks[1] / peaks[0], "x", "< 1.3 (10x records)")
        db = _mysql_database()
        if db is None:
            report("with MySQL", "skipped (no server)")
            return
        dsn, (conn, name) = db
        try:
            r = _run(Path(tmp) / "mysql", SCALES[0], dsn)
            report(f"scale {SCALES[0]} with MySQL: source records per second", r["records"] / r["seconds"],
                   "records/s", "> 3000")
        finally:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            conn.close()
