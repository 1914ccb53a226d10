"""EGRUL: registry load time, and lookups/s through lookup_many at 0.4 s latency vs the ceiling.

The ceiling of concurrent lookups is concurrency / latency (8 workers at 0.4 s: 20/s), or the
client rate limit if lower. The reference case: ~170k distinct INNs at 0.4 s each would take
19 h one at a time, ~2.4 h at 20/s.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import requests
from stdnum.ru import inn as stdnum_inn

from etl.sandbox.egrul import start_egrul
from etl.secrets import Secret
from validators.egrul import DadataProvider, LookupResult, lookup_many

REGISTRY_LINES = 200_000
LATENCY = 0.4


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def _inns(n: int) -> list[str]:
    return [b + stdnum_inn.calc_company_check_digit(b) for b in (f"77{i:07d}" for i in range(1, n + 1))]


def _write_registry(path: Path, inns: list[str]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i, inn in enumerate(inns):
            f.write(json.dumps({
                "inn": inn, "kpp": inn[:4] + "01001", "ogrn": f"102770{i:07d}", "type": "LEGAL",
                "branch_type": "MAIN", "hid": f"{i:040x}",
                "name": {"full_with_opf": f"ОБЩЕСТВО С ОГРАНИЧЕННОЙ ОТВЕТСТВЕННОСТЬЮ \"КОМПАНИЯ {i}\"",
                         "short_with_opf": f"ООО \"КОМПАНИЯ {i}\"", "full": f"КОМПАНИЯ {i}", "short": f"КОМПАНИЯ {i}"},
                "opf": {"code": "12300", "full": "Общество с ограниченной ответственностью", "short": "ООО"},
                "management": {"name": "Иванов Иван Иванович", "post": "ГЕНЕРАЛЬНЫЙ ДИРЕКТОР"},
                "address": {"value": f"г Москва, ул Тверская, д {i % 300 + 1}",
                            "data": {"source": "ГОРОД МОСКВА, УЛИЦА ТВЕРСКАЯ", "qc": "0"}},
                "state": {"status": "ACTIVE" if i % 10 else "LIQUIDATED", "code": None,
                          "actuality_date": 1700000000000, "registration_date": 677376000000},
            }, ensure_ascii=False) + "\n")


def _rate(server, inns: list[str], concurrency: int, rate: float | None) -> float:
    with DadataProvider(server.base_url, Secret(server.token), rate=rate, concurrency=concurrency,
                        max_retries=5, backoff=0.2) as provider:
        t0 = time.perf_counter()
        results = [r for _, r in lookup_many(inns, provider, concurrency)]
        elapsed = time.perf_counter() - t0
    assert all(isinstance(r, LookupResult) for r in results), "a lookup failed during the bench"
    return len(results) / elapsed


def main(report) -> None:
    inns = _inns(REGISTRY_LINES)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "registry.jsonl"
        _write_registry(path, inns)
        size_mb = path.stat().st_size / 2**20
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        server = start_egrul(path, latency=LATENCY, rps=None)
        load = time.perf_counter() - t0
        try:
            report(f"registry load, {REGISTRY_LINES:,} lines ({size_mb:.0f} MB)", load, "s", "< 5 s")
            report("registry index memory", _rss_mb() - rss0, "MB", f"well under the file ({size_mb:.0f} MB)")
            for c in (8, 16):
                ceiling = c / LATENCY
                got = _rate(server, inns[c * 100: c * 100 + int(ceiling * 5)], c, None)
                report(f"lookups at {LATENCY} s latency, concurrency {c}, no rate limit", got, "/s",
                       f">= 90% of {ceiling:.0f}/s")
            got = _rate(server, inns[5000:5100], 16, 20.0)
            report("same, concurrency 16, client rate limit 20/s (default)", got, "/s", ">= 90% of 20/s")
            requests.post(server.url + "/_sandbox/config", json={"latency": 0.0}, timeout=5).raise_for_status()
            got = _rate(server, inns[10000:14000], 8, None)
            report("emulator alone, latency 0, concurrency 8", got, "/s", "far above 40/s")
        finally:
            server.stop()
