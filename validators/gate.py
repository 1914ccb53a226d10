"""The validation gate: offline INN checks first, then EGRUL (cache, then provider), cheapest first.

One lookup per distinct INN per run, whatever the number of records that carry it. Lookups run on
a thread pool as soon as a company is seen (`prefetch`), so they overlap with loading; the loader
asks for the `verdict` when it reaches the company, by which time the answer is usually there.

Outcomes: ACTIVE -> load (enriched from the registry); LIQUIDATING/LIQUIDATED/BANKRUPT/REORGANIZING
-> reject `inactive:<STATUS>`; not in the register -> reject `egrul_not_found`; lookup failed or the
provider refused us (quota, key) -> pending: parked and retried next run, never loaded unverified.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from etl import rejects
from etl.dto import Company, evolve
from etl.state.base import EgrulCacheEntry
from validators.egrul.provider import LookupFailed, LookupResult, ProviderRefused, RegistryProvider

log = logging.getLogger(__name__)

ACTIVE, REJECTED, PENDING = "active", "rejected", "pending"


@dataclass(frozen=True, slots=True)
class Verdict:
    inn: str
    outcome: str                 # ACTIVE | REJECTED | PENDING
    reason: str = ""             # reject code, or why it is pending
    result: LookupResult | None = None
    cached: bool = False


def verdict_from_result(result: LookupResult, cached: bool) -> Verdict:
    if result.data is None:
        return Verdict(result.inn, REJECTED, rejects.EGRUL_NOT_FOUND, result, cached)
    if result.is_active:
        return Verdict(result.inn, ACTIVE, "", result, cached)
    return Verdict(result.inn, REJECTED, rejects.inactive(result.status), result, cached)


def enrich(company: Company, result: LookupResult) -> Company:
    """The registry is authoritative for the legal name, legal form, KPP, OGRN and address."""
    return evolve(
        company,
        name=result.short_name or company.name,
        full_name=result.full_name or company.full_name,
        legal_form=result.opf_short or company.legal_form,
        kpp=(result.kpp or company.kpp) if not result.is_sole_proprietor else "",
        ogrn=result.ogrn or company.ogrn,
        address=result.address or company.address,
        is_sole_proprietor=result.is_sole_proprietor,
    )


class EgrulGate:
    def __init__(self, provider: RegistryProvider, state, *, cache_days: Mapping[str, float],
                 concurrency: int = 8, now: datetime | None = None) -> None:
        self.provider = provider
        self.state = state
        self.cache_days = {k.upper(): float(v) for k, v in cache_days.items()}
        self.now = now or datetime.now(timezone.utc)
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="egrul")
        self._lock = threading.Lock()
        self._inflight: dict[str, Future] = {}
        self._failed: dict[str, str] = {}       # INN -> why, for the rest of this run (no 2nd try)
        self._seen: set[str] = set()             # distinct INNs of this run (for the figures)
        # INNs answered by the registry in this run: read back from the cache whatever their
        # freshness (a status without a freshness counts stale and would be looked up again)
        self._answered: set[str] = set()
        # answers not yet in the cache: written in one transaction per chunk (`flush`), not one
        # fsync per lookup; kept here meanwhile so a repeated INN is still looked up only once
        self._unflushed: dict[str, LookupResult] = {}
        self.refused: ProviderRefused | None = None
        # uncached_inns: distinct INNs the cache could not answer when first seen (each costs one
        # lookup: lookups / uncached_inns is 1.0 on a first run); cache_hits count chunks, not INNs
        self.stats = {"distinct_inns": 0, "uncached_inns": 0, "cache_hits": 0, "lookups": 0, "failed": 0,
                      "refused": 0}

    # --- cache ---------------------------------------------------------------------------------
    def _cached(self, inns: list[str]) -> dict[str, LookupResult]:
        fresh = self.state.get_egrul([i for i in inns if i not in self._answered],
                                     fresh_days=self.cache_days, now=self.now)
        answered = [i for i in inns if i in self._answered]
        if answered:
            fresh.update(self.state.get_egrul(answered))
        return {inn: LookupResult.from_data(inn, e.payload) for inn, e in fresh.items()}

    # --- lookups -------------------------------------------------------------------------------
    def _lookup(self, inn: str) -> LookupResult:
        if self.refused is not None:
            raise self.refused
        return self.provider.lookup(inn)

    def forget_failures(self) -> None:
        """Ask the registry again for the INNs that failed or were refused so far. A consumer runs
        for weeks: it calls this before each batch, or an INN refused once (quota) would stay
        parked until the process restarts."""
        with self._lock:
            self._failed.clear()
            self.refused = None

    def flush(self) -> None:
        """Write the answers gathered since the last flush to the cache (the loader calls it per chunk)."""
        with self._lock:
            batch, self._unflushed = self._unflushed, {}
        if batch:
            try:
                self.state.put_egrul([EgrulCacheEntry(inn, r.status, r.data) for inn, r in batch.items()])
            except BaseException:
                with self._lock:  # not written (e.g. the transaction was rolled back): keep them
                    self._unflushed = {**batch, **self._unflushed}
                raise

    def prefetch(self, inns: Iterable[str]) -> None:
        """Start lookups for the INNs that are neither cached fresh nor already asked for."""
        todo = []
        with self._lock:
            for inn in dict.fromkeys(inns):
                if inn not in self._inflight and inn not in self._failed and inn not in self._unflushed:
                    todo.append(inn)
        if not todo:
            return
        cached = self._cached(todo)
        with self._lock:
            for inn in todo:
                if inn in self._inflight:
                    continue
                if inn not in self._seen:
                    self._seen.add(inn)
                    self.stats["distinct_inns"] += 1
                    self.stats["uncached_inns"] += inn not in cached
                if inn in cached:
                    self.stats["cache_hits"] += 1
                    f: Future = Future()
                    f.set_result((cached[inn], True))
                elif self.refused is not None:
                    f = Future()
                    f.set_exception(self.refused)
                else:
                    self.stats["lookups"] += 1
                    f = self._pool.submit(lambda i=inn: (self._lookup(i), False))
                self._inflight[inn] = f

    def verdict(self, inn: str) -> Verdict:
        """The gate's decision for one INN (waits for its lookup if it is still running)."""
        with self._lock:
            if inn in self._failed:
                return Verdict(inn, PENDING, self._failed[inn])
            f = self._inflight.get(inn)
        if f is None:
            with self._lock:
                recent = self._unflushed.get(inn)
            if recent is not None:
                return verdict_from_result(recent, True)
            cached = self._cached([inn])
            if inn in cached:
                return verdict_from_result(cached[inn], True)
            self.prefetch([inn])
            with self._lock:
                f = self._inflight[inn]
        try:
            result, cached_hit = f.result()
        except ProviderRefused as e:
            with self._lock:
                if self.refused is None:
                    self.refused = e
                    log.error("EGRUL provider refused us, remaining companies are parked: %s", e)
                self.stats["refused"] += 1
                self._failed[inn] = f"egrul_refused: {e}"
                self._inflight.pop(inn, None)
            return Verdict(inn, PENDING, self._failed[inn])
        except LookupFailed as e:
            with self._lock:
                self.stats["failed"] += 1
                self._failed[inn] = f"egrul_unavailable: {e.reason}"
                self._inflight.pop(inn, None)
            return Verdict(inn, PENDING, self._failed[inn])
        except Exception as e:  # noqa: BLE001 - a provider bug must park the record, not lose it
            log.exception("EGRUL lookup of %s crashed", inn)
            with self._lock:
                self.stats["failed"] += 1
                self._failed[inn] = f"egrul_error: {type(e).__name__}: {e}"
                self._inflight.pop(inn, None)
            return Verdict(inn, PENDING, self._failed[inn])
        with self._lock:
            self._inflight.pop(inn, None)
            if not cached_hit:
                self._unflushed[inn] = result
                self._answered.add(inn)
        return verdict_from_result(result, cached_hit)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.flush()
