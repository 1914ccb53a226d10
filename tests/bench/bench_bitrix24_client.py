"""Bitrix24 client: share of the portal's request rate it achieves, and raw commands/s.

1. Against the emulator at rate 10/s, burst 20, the client sends cheap reads for ~30 s from
   4 threads (and for 15 s from 1 thread). Reported: achieved requests/s after the initial burst as a share of the portal's
   drain rate (goal >= 0.95), and the 503s the portal sent (goal 0).
2. With the emulator's limits lifted, batches of 50 `crm.company.add` for ~5 s: commands/s
   end to end (client encoding, JSON, HTTP, and the emulator's SQLite writes).
3. Encoding alone: batch command strings per second (the client's CPU cost per command).
"""
from __future__ import annotations

import threading
import time

import requests

from etl.sandbox.bitrix24 import start_bitrix24
from loaders.bitrix24 import Bitrix24Client, encode_command

RATE, BURST, SECONDS, THREADS = 10.0, 20, 30.0, 4


def _portal_503s(server) -> int:
    stats = requests.get(server.url + "/_sandbox/stats", timeout=5).json()
    return int(stats["rejected"]["QUERY_LIMIT_EXCEEDED"])


def _rate_share(report, threads: int, seconds: float) -> None:
    server = start_bitrix24(rate=RATE, burst=BURST)
    try:
        client = Bitrix24Client(server.webhook_url, rate=RATE, burst=BURST)
        stop_at = time.monotonic() + seconds
        start = time.monotonic()

        def worker() -> None:
            while time.monotonic() < stop_at:
                client.call("crm.company.fields")

        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        elapsed = time.monotonic() - start
        sent = client.stats.requests
        steady = (sent - (BURST - client._bucket.headroom)) / elapsed  # noqa: SLF001 - bench
        tag = f"{threads} thread{'s' if threads > 1 else ''}, {seconds:.0f} s"
        report(f"requests sent ({tag})", sent, "requests", f"<= {BURST + RATE * elapsed:.0f} allowed")
        report(f"achieved rate after the burst / portal rate ({tag})", steady / RATE, "share", ">= 0.95")
        report(f"503 QUERY_LIMIT_EXCEEDED from the portal ({tag})", _portal_503s(server), "answers", "0")
        client.close()
    finally:
        server.stop()


def _raw_throughput(report) -> None:
    server = start_bitrix24(limits=False)
    try:
        client = Bitrix24Client(server.webhook_url, rate=1e6, burst=10**6)
        n = 0
        start = time.monotonic()
        while time.monotonic() - start < 5.0:
            cmds = {f"c{i}": ("crm.company.add", {"fields": {
                "TITLE": f"ООО Бенч {n + i}", "PHONE": [{"VALUE": f"+7495{n + i:07d}", "VALUE_TYPE": "WORK"}],
                "EMAIL": [{"VALUE": f"b{n + i}@example.com", "VALUE_TYPE": "WORK"}]}}) for i in range(50)}
            res = client.batch(cmds)
            n += len(res.results)
        elapsed = time.monotonic() - start
        report("batched crm.company.add with limits lifted", n / elapsed, "commands/s",
               ">= 1000 (the portal's 100/s is the real bound)")
        client.close()
    finally:
        server.stop()


def _encoding(report) -> None:
    fields = {"TITLE": "ООО «Рога & Копыта»", "COMPANY_TYPE": "CUSTOMER", "ORIGINATOR_ID": "crm-etl",
              "ORIGIN_ID": "shop-a:123456", "PHONE": [{"VALUE": "+74951234567", "VALUE_TYPE": "WORK"}],
              "EMAIL": [{"VALUE": "info@example.com", "VALUE_TYPE": "WORK"}], "COMMENTS": "строка\nещё"}
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 1.0:
        for _ in range(1000):
            encode_command("crm.company.add", {"fields": fields})
        n += 1000
    report("encoding crm.company.add batch commands", n / (time.perf_counter() - start), "commands/s",
           ">= 10000 (100x the portal's write rate)")


def main(report) -> None:
    _encoding(report)
    _rate_share(report, THREADS, SECONDS)
    _rate_share(report, 1, 15.0)
    _raw_throughput(report)
