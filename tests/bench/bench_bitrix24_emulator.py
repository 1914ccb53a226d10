"""Bitrix24 emulator throughput: batched commands per second with limits lifted (it must never be the bottleneck).

One client thread over one keep-alive connection sends batches of 50 commands: 25 x
(crm.company.add with a phone and an e-mail + crm.requisite.add referencing it with `$result`),
then batches of 50 crm.requisite.list lookups by RQ_INN (the loader's dedupe query). Measured
twice: emulator in this process (client and server share one GIL: the worst case) and emulator
as `crm-etl emulate bitrix24` in its own process (how `make demo` and the loader see it).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from etl.sandbox.bitrix24 import start_bitrix24
from tests.conftest import free_port

GOAL = ">= 2,000 cmd/s"
BATCHES = 60
REPO = Path(__file__).resolve().parents[2]


def _write_batch(n: int) -> dict:
    cmd = {}
    for i in range(25):
        k = f"{n:05d}{i:02d}"
        cmd[f"c{k}"] = (f"crm.company.add?fields[TITLE]=Company%20{k}&fields[ORIGINATOR_ID]=bench"
                        f"&fields[ORIGIN_ID]={k}&fields[PHONE][0][VALUE]=%2B7495{int(k):07d}"
                        f"&fields[PHONE][0][VALUE_TYPE]=WORK&fields[EMAIL][0][VALUE]=c{k}%40example.ru")
        cmd[f"r{k}"] = (f"crm.requisite.add?fields[ENTITY_TYPE_ID]=4&fields[ENTITY_ID]=$result[c{k}]"
                        f"&fields[PRESET_ID]=1&fields[NAME]=Company%20{k}&fields[RQ_INN]=77{int(k):08d}"
                        f"&fields[RQ_KPP]=770101001")
    return {"halt": 0, "cmd": cmd}


def _lookup_batch(n: int) -> dict:
    return {"halt": 0, "cmd": {f"q{i}": f"crm.requisite.list?filter[RQ_INN]=77{int(f'{n:05d}{i % 25:02d}'):08d}"
                                        f"&filter[ENTITY_TYPE_ID]=4&select[]=ID&select[]=ENTITY_ID"
                               for i in range(50)}}


def _measure(webhook_url: str) -> tuple[float, float]:
    """(write commands/s, lookup commands/s) over one keep-alive connection."""
    with requests.Session() as http:
        url = webhook_url + "batch"
        http.post(url, json=_write_batch(99999), timeout=60).raise_for_status()  # warm-up
        t0 = time.perf_counter()
        for n in range(BATCHES):
            body = http.post(url, json=_write_batch(n), timeout=60).json()
            assert not body["result"]["result_error"], body["result"]["result_error"]
        writes = BATCHES * 50 / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for n in range(BATCHES):
            body = http.post(url, json=_lookup_batch(n), timeout=60).json()
            assert body["result"]["result"]["q0"], "the lookup found nothing"
        lookups = BATCHES * 50 / (time.perf_counter() - t0)
    return writes, lookups


def _separate_process() -> tuple[float, float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "etl", "emulate", "bitrix24", "--no-limits", "--port", str(port),
                             "--code", "benchcode"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if requests.get(base + "/_sandbox/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        return _measure(f"{base}/rest/1/benchcode/")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def main(report) -> None:
    server = start_bitrix24(limits=False)
    try:
        writes, lookups = _measure(server.webhook_url)
    finally:
        server.stop()
    report("in-process: batched company.add + requisite.add", writes, "cmd/s", GOAL)
    report("in-process: batched requisite.list by RQ_INN", lookups, "cmd/s", GOAL)
    writes, lookups = _separate_process()
    report("own process: batched company.add + requisite.add", writes, "cmd/s", GOAL)
    report("own process: batched requisite.list by RQ_INN", lookups, "cmd/s", GOAL)
