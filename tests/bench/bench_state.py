"""State store (SQLite file, WAL, synchronous=FULL): rows/s per operation in batches of 1000.

The goal is to stay far off the critical path: a full load touches ~850 000 source records and
is bound by the CRM at ~100 writes/s (>= 72 min), so each store operation should handle the
whole load in about a minute (>= 15 000 rows/s) and commits should cost milliseconds.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from etl.dto import Reject
from etl.state import open_state

BATCH = 1000
BATCHES = 50
ROWS_GOAL = ">= 15,000 rows/s"


def _rate(batches: list[list], op: Callable[[list], object]) -> float:
    t0 = time.perf_counter()
    for batch in batches:
        op(batch)
    return sum(len(b) for b in batches) / (time.perf_counter() - t0)


def main(report: Callable[..., None]) -> None:
    with tempfile.TemporaryDirectory() as tmp, open_state(Path(tmp) / "bench.sqlite") as store:
        run = store.start_run("full", "bench")
        ids = [[f"company:{7700000000 + b * BATCH + i}" for i in range(BATCH)] for b in range(BATCHES)]

        rate = _rate(ids, lambda batch: store.record_intents([(i, "company", "h0") for i in batch], run_id=run))
        report("record_intents (new identities), batch 1000", rate, "rows/s", ROWS_GOAL)
        rate = _rate(ids, lambda batch: store.record_written(
            [(i, "company", n, "h1") for n, i in enumerate(batch)], run_id=run))
        report("record_written, batch 1000", rate, "rows/s", ROWS_GOAL)
        rate = _rate(ids, store.get_entities)
        report("get_entities (all known), batch 1000", rate, "rows/s", ROWS_GOAL)

        def rejects(batch: list[str]) -> int:
            return store.add_rejects(run, [
                Reject("bench", i, "company", "inn_checksum", "control digit 3, expected 7",
                       {"id": i, "inn": "7707083890", "name": "ООО Ромашка", "phone": "+7 (495) 123-45-67",
                        "email": "info@romashka.ru", "address": "г. Москва, ул. Ленина, д. 1"})
                for i in batch])
        report("add_rejects (~250 B raw each), batch 1000", _rate(ids, rejects), "rows/s", ROWS_GOAL)

        t0 = time.perf_counter()
        n = sum(1 for _ in store.iter_rejects(run_id=run))
        report("iter_rejects", n / (time.perf_counter() - t0), "rows/s", ROWS_GOAL)

        keys = [[(i.split(":")[1], "email", f"info{k}@x.ru") for k, i in enumerate(batch)] for batch in ids]
        rate = _rate(keys, lambda batch: store.put_contact_keys([(*k, f"contact:{k[2]}") for k in batch]))
        report("put_contact_keys (new keys), batch 1000", rate, "rows/s", ROWS_GOAL)
        report("find_contact_keys (all known), batch 1000", _rate(keys, store.find_contact_keys), "rows/s",
               ROWS_GOAL)

        rate = _rate(ids, lambda batch: store.map_sources([("bench", "company", i, i) for i in batch]))
        report("map_sources, batch 1000", rate, "rows/s", ROWS_GOAL)

        commits = 200
        t0 = time.perf_counter()
        for c in range(commits):
            store.set_watermark("bench", str(c))
        per_commit_ms = (time.perf_counter() - t0) / commits * 1000
        report("one small commit (fsync with synchronous=FULL)", per_commit_ms, "ms", "<= 20 ms")
