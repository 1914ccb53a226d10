"""The EGRUL gate asks the registry once per distinct INN the cache cannot answer, per run,
and its figures say how many such INNs there were (the bench divides lookups by them)."""
from __future__ import annotations

import json
from pathlib import Path

from etl.state import open_state
from etl.state.base import EgrulCacheEntry
from validators.egrul.registry_file import RegistryFileProvider
from validators.gate import ACTIVE, REJECTED, EgrulGate

CACHED, ACTIVE_INN, ODD = "7703571498", "7704571490", "7702571495"  # valid INNs
CACHE_DAYS = {"ACTIVE": 14, "LIQUIDATED": 90}  # "SUSPENDED" has no freshness: stale at once


class CountingProvider(RegistryFileProvider):
    """The registry file provider, counting the lookups that reach it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.asked: list[str] = []

    def lookup(self, inn: str):
        self.asked.append(inn)
        return super().lookup(inn)


def _registry(tmp_path: Path) -> Path:
    def row(inn: str, status: str) -> str:
        return json.dumps({"inn": inn, "kpp": "770201001", "ogrn": "1155222223200", "type": "LEGAL",
                           "branch_type": "MAIN", "name": {"short_with_opf": f"ООО {inn}", "full_with_opf": inn},
                           "state": {"status": status}}, ensure_ascii=False)
    path = tmp_path / "registry.jsonl"
    path.write_text("\n".join([row(CACHED, "ACTIVE"), row(ACTIVE_INN, "ACTIVE"), row(ODD, "SUSPENDED")]) + "\n",
                    encoding="utf-8")
    return path


def _chunk(gate: EgrulGate, inns: list[str]) -> dict[str, str]:
    """What the pipeline does per chunk: prefetch, verdicts, flush."""
    gate.prefetch(inns)
    verdicts = {inn: gate.verdict(inn).outcome for inn in inns}
    gate.flush()
    return verdicts


def test_one_lookup_per_uncached_inn_even_for_a_status_without_freshness(tmp_path):
    registry = _registry(tmp_path)
    with open_state(tmp_path / "s.sqlite") as state, CountingProvider(registry) as provider:
        state.put_egrul([EgrulCacheEntry(CACHED, "ACTIVE", {"inn": CACHED, "state": {"status": "ACTIVE"}})])
        gate = EgrulGate(provider, state, cache_days=CACHE_DAYS, concurrency=2)
        try:
            first = _chunk(gate, [CACHED, ACTIVE_INN, ODD, ACTIVE_INN])
            second = _chunk(gate, [ODD, ACTIVE_INN, CACHED])  # a later chunk of the same run
        finally:
            gate.close()
        assert first == second == {CACHED: ACTIVE, ACTIVE_INN: ACTIVE, ODD: REJECTED}
        assert sorted(provider.asked) == sorted([ACTIVE_INN, ODD])
        assert gate.stats["distinct_inns"] == 3
        assert gate.stats["uncached_inns"] == 2 == gate.stats["lookups"]

        # the next run: the fresh answers come from the cache, the stale status is asked again
        provider.asked.clear()
        rerun = EgrulGate(provider, state, cache_days=CACHE_DAYS, concurrency=2)
        try:
            assert _chunk(rerun, [CACHED, ACTIVE_INN, ODD]) == first
        finally:
            rerun.close()
        assert provider.asked == [ODD]
        assert rerun.stats["uncached_inns"] == 1 == rerun.stats["lookups"]
