"""Bitrix24 emulator throughput: batched commands per second with limits lifted (it must never be the bottleneck).

Client and emulator run in this one process (they share the GIL), one client thread over one
keep-alive connection: the worst case for the emulator. Batches of 50 commands: 25 x
(crm.company.add + crm.requisite.add with a `$result` reference), then lookups of requisites
by RQ_INN (the loader's dedupe query) in batches of 50 crm.requisite.list.
"""
from __future__ import annotations

import time

import requests

from etl.sandbox.bitrix24 import start_bitrix24

GOAL_CMDS = 2000.0
BATCHES = 60


def _write_batch(n: int) -> dict:
    cmd = {}
    for i in range(25):
        k = f"{n:05d}{i:02d}"
        inn = f"77{int(k):08d}"
        cmd[f"c{k}"] = (f"crm.company.add?fields[TITLE]=Company%20{k}&fields[ORIGINATOR_ID]=bench"
                        f"&fields[ORIGIN_ID]={k}&fields[PHONE][0][VALUE]=%2B7495{int(k):07d}"
                        f"&fields[PHONE][0][VALUE_TYPE]=WORK&fields[EMAIL][0][VALUE]=c{k}%40example.ru")
        cmd[f"r{k}"] = (f"crm.requisite.add?fields[ENTITY_TYPE_ID]=4&fields[ENTITY_ID]=$result[c{k}]"
                        f"&fields[PRESET_ID]=1&fields[NAME]=Company%20{k}&fields[RQ_INN]={inn}&fields[RQ_KPP]=770101001")
    return {"halt": 0, "cmd": cmd}


def _lookup_batch(n: int) -> dict:
    return {"halt": 0, "cmd": {f"q{i}": f"crm.requisite.list?filter[RQ_INN]=77{int(f'{n:05d}{i % 25:02d}'):08d}"
                                        f"&filter[ENTITY_TYPE_ID]=4&select[]=ID&select[]=ENTITY_ID"
                               for i in range(50)}}


def main(report) -> None:
    server = start_bitrix24(limits=False)
    try:
        with requests.Session() as http:
            url = server.webhook_url + "batch"
            http.post(url, json=_write_batch(99999)).raise_for_status()  # warm-up
            t0 = time.perf_counter()
            for n in range(BATCHES):
                body = http.post(url, json=_write_batch(n)).json()
                assert not body["result"]["result_error"], body["result"]["result_error"]
            writes = BATCHES * 50 / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            for n in range(BATCHES):
                body = http.post(url, json=_lookup_batch(n)).json()
                assert len(body["result"]["result"]) == 50 and body["result"]["result"]["q0"]
            lookups = BATCHES * 50 / (time.perf_counter() - t0)
    finally:
        server.stop()
    report("batched writes (company.add + requisite.add)", writes, "cmd/s", f">= {GOAL_CMDS:,.0f} cmd/s")
    report("batched requisite lookups by RQ_INN", lookups, "cmd/s", f">= {GOAL_CMDS:,.0f} cmd/s")
