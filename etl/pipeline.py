"""The load pipeline: extract -> transform -> offline checks -> EGRUL gate -> merge -> load.

Two threads. The producer extracts, transforms and runs the offline INN check, cuts the stream
into chunks and starts the EGRUL lookups of each chunk at once (`gate.prefetch`). The consumer
(the calling thread) takes chunks in order from a bounded queue, collects the registry verdicts
(by then mostly ready: lookups overlap with loading), merges duplicates and loads. The bounded
queue keeps memory flat whatever the input size.

Every record ends in exactly one place: loaded (source record -> identity in the state store),
rejected with a reason, or parked as pending. Pending records of earlier runs go first.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from etl import rejects
from etl.dto import Company, Contact, Reject, from_json_dict, to_json_dict
from etl.state.base import PendingItem, StateStore
from loaders.crm_loader import CompanyJob, CrmLoader, PersonJob
from loaders.merge import cluster_contacts, contact_keys, merge_companies, name_parts
from loaders.payloads import company_identity
from validators.gate import ACTIVE, PENDING, EgrulGate, enrich
from validators.inn import check_inn

log = logging.getLogger(__name__)

Item = Company | Contact | Reject
CHUNK = 2000          # records per chunk (companies with their contacts)
LOOKAHEAD = 4         # chunks extracted ahead of loading (EGRUL lookups run for these meanwhile)


class Stop(Exception):
    """Raised inside the producer to end extraction early (--limit, SIGTERM)."""


@dataclass
class RunResult:
    run_id: int
    counts: Counter
    status: str = "ok"             # ok | failed | interrupted
    error: str = ""
    source_error: Exception | None = None
    fatal: Exception | None = None


@dataclass
class _Chunk:
    items: list[Item] = field(default_factory=list)
    inns: list[str] = field(default_factory=list)


_DONE = object()


class Pipeline:
    def __init__(self, *, source: str, state: StateStore, gate: EgrulGate, loader: CrmLoader,
                 run_id: int, counts: Counter, normalize: Callable[[str], str],
                 conflict: Callable, stop: threading.Event | None = None,
                 progress: Callable[[int], None] | None = None) -> None:
        self.source = source
        self.state = state
        self.gate = gate
        self.loader = loader
        self.run_id = run_id
        self.counts = counts
        self.normalize = normalize
        self.conflict = conflict
        self.stop = stop or threading.Event()
        self.progress = progress
        # (source, company source_id) -> ("loaded", inn, bitrix id) | ("rejected", reason) | ("pending", why)
        self.company_outcome: dict[tuple[str, str], tuple] = {}

    # --- producer -----------------------------------------------------------------------------
    @staticmethod
    def _admit(item: Item, chunk: _Chunk) -> None:
        """The offline INN check (cheapest first); valid companies' INNs are noted for lookup."""
        if isinstance(item, Company):
            inn, reason = check_inn(item.inn)
            if reason:
                item = Reject(item.source, item.source_id, "company", reason, f"INN {item.inn!r}",
                              to_json_dict(item))
            else:
                if inn != item.inn:
                    item = replace(item, inn=inn)
                chunk.inns.append(inn)
        chunk.items.append(item)

    def process(self, items: Iterable[Item]) -> None:
        """Handle one batch synchronously (Kafka consumer, small deltas): when this returns, every
        item is loaded, rejected or parked and the state store says so."""
        chunk = _Chunk()
        for item in items:
            self._admit(item, chunk)
        if chunk.items:
            self.gate.prefetch(chunk.inns)
            self._load_chunk(chunk)

    def _produce(self, items: Iterable[Item], out: queue.Queue, limit: int | None) -> None:
        chunk = _Chunk()
        n = 0
        try:
            for item in items:
                if self.stop.is_set():
                    break
                self._admit(item, chunk)
                n += 1
                if len(chunk.items) >= CHUNK:
                    self.gate.prefetch(chunk.inns)
                    out.put(chunk)
                    chunk = _Chunk()
                if limit and n >= limit:
                    break
            if chunk.items:
                self.gate.prefetch(chunk.inns)
                out.put(chunk)
            out.put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which reports it
            if chunk.items:
                out.put(chunk)
            out.put(e)

    # --- consumer -----------------------------------------------------------------------------
    def run(self, items: Iterable[Item], *, limit: int | None = None) -> RunResult:
        result = RunResult(self.run_id, self.counts)
        q: queue.Queue = queue.Queue(maxsize=LOOKAHEAD)
        producer = threading.Thread(target=self._produce, args=(self._with_pending(items), q, limit),
                                    name="extract", daemon=True)
        producer.start()
        while True:
            got = q.get()
            if got is _DONE:
                break
            if isinstance(got, BaseException):
                result.source_error = got
                break
            self._load_chunk(got)
            if self.progress:
                self.progress(len(got.items))
        producer.join(timeout=5)
        if self.stop.is_set():
            result.status = "interrupted"
        return result

    def _with_pending(self, items: Iterable[Item]) -> Iterator[Item]:
        """Records parked by earlier runs come first (their check is retried)."""
        parked = 0
        for p in self.state.iter_pending(source=self.source):
            try:
                yield from_json_dict(p.raw)
                parked += 1
            except Exception as e:  # noqa: BLE001 - a parked record we cannot read is a reject
                yield Reject(p.source, p.source_id, p.kind, rejects.BAD_RECORD,
                             f"parked record unreadable: {type(e).__name__}: {e}", p.raw)
        self.counts["pending_retried"] += parked
        yield from items

    def _reject(self, items: list[Reject]) -> None:
        if not items:
            return
        self.state.add_rejects(self.run_id, items)
        for r in items:
            self.counts[f"rejected_{r.kind}:{r.reason}"] += 1
            if r.kind == "company":
                self.company_outcome[(r.source, r.source_id)] = ("rejected", r.reason)

    def _park(self, items: list[tuple[Company | Contact, str]]) -> None:
        if not items:
            return
        self.state.park(self.run_id, [
            PendingItem(o.source, "company" if isinstance(o, Company) else "contact", o.source_id,
                        why.split(":", 1)[0], why, to_json_dict(o)) for o, why in items])
        for o, _ in items:
            self.counts[f"pending_{'company' if isinstance(o, Company) else 'contact'}"] += 1
            if isinstance(o, Company):
                self.company_outcome[(o.source, o.source_id)] = ("pending", "company pending")

    def _load_chunk(self, chunk: _Chunk) -> None:
        companies = [i for i in chunk.items if isinstance(i, Company)]
        contacts = [i for i in chunk.items if isinstance(i, Contact)]
        self._reject([i for i in chunk.items if isinstance(i, Reject)])
        self.counts["records"] += len(chunk.items)
        self._load_companies(companies)
        self.gate.flush()
        self._load_contacts(contacts)

    def _load_companies(self, companies: list[Company]) -> None:
        if not companies:
            return
        self.counts["companies_in"] += len(companies)
        by_inn: dict[str, list[Company]] = defaultdict(list)
        directors: dict[str, str] = {}
        rejected: list[Reject] = []
        parked: list[tuple[Company, str]] = []
        for c in companies:
            v = self.gate.verdict(c.inn)
            if v.outcome == ACTIVE:
                by_inn[c.inn].append(enrich(c, v.result))
                directors[c.inn] = v.result.manager_name or ""
            elif v.outcome == PENDING:
                parked.append((c, v.reason))
            else:
                rejected.append(Reject(c.source, c.source_id, "company", v.reason,
                                       f"INN {c.inn}: EGRUL says {v.result.status if v.result else 'nothing'}",
                                       to_json_dict(c)))
        self._reject(rejected)
        self._park(parked)
        jobs = []
        for inn, recs in by_inn.items():
            self.counts["companies_merged_away"] += len(recs) - 1
            jobs.append(CompanyJob(company_identity(inn), merge_companies(recs), directors.get(inn, ""),
                                   [(r.source, r.source_id) for r in recs]))
        if not jobs:
            return
        outcomes = self.loader.load_companies(jobs)
        failed: list[Reject] = []
        mapped = []
        loaded_keys = []
        for j in jobs:
            o = outcomes.get(j.identity)
            for (src, sid), rec in zip(j.sources, by_inn[j.company.inn]):
                if o is None or o.bitrix_id is None and o.action != "dry_run":
                    failed.append(Reject(src, sid, "company", rejects.CRM_ERROR,
                                         o.error if o else "not written", to_json_dict(rec)))
                else:
                    self.company_outcome[(src, sid)] = ("loaded", j.company.inn, o.bitrix_id)
                    mapped.append((src, "company", sid, j.identity))
                    loaded_keys.append((src, "company", sid))
        self._reject(failed)
        if mapped and not self.loader.dry_run:
            with self.state.transaction():
                self.state.map_sources(mapped)
                self.state.resolve_rejects(loaded_keys)
                self.state.unpark(loaded_keys)

    def _load_contacts(self, contacts: list[Contact]) -> None:
        if not contacts:
            return
        self.counts["contacts_in"] += len(contacts)
        ready: list[Contact] = []
        company_ids: dict[str, int | None] = {}
        rejected: list[Reject] = []
        parked: list[tuple[Contact, str]] = []
        for c in contacts:
            outcome = self.company_outcome.get((c.source, c.company_source_id))
            if outcome is None:
                rejected.append(Reject(c.source, c.source_id, "contact", rejects.COMPANY_MISSING,
                                       f"company {c.company_source_id} is not in this load", to_json_dict(c)))
            elif outcome[0] == "rejected":
                rejected.append(Reject(c.source, c.source_id, "contact", rejects.COMPANY_REJECTED,
                                       outcome[1], to_json_dict(c)))
            elif outcome[0] == "pending":
                parked.append((c, f"company_pending: company {c.company_source_id} is pending"))
            elif not (c.last_name or c.first_name or c.middle_name or c.phones or c.emails):
                rejected.append(Reject(c.source, c.source_id, "contact", rejects.CONTACT_EMPTY,
                                       "no name, no valid phone, no valid e-mail", to_json_dict(c)))
            else:
                inn, bitrix_id = outcome[1], outcome[2]
                company_ids[inn] = bitrix_id
                ready.append(c if c.company_inn == inn else replace(c, company_inn=inn))
        self._reject(rejected)
        self._park(parked)
        if not ready:
            return
        keys_of = [contact_keys(c, self.normalize) for c in ready]
        persons = cluster_contacts(ready, normalize=self.normalize, conflict=self.conflict,
                                   known=self._known_persons(ready, keys_of), keys=keys_of)
        self.counts["contacts_merged_away"] += len(ready) - len(persons)
        jobs: list[PersonJob] = []
        for p in persons:
            merged = p.merged()
            keys = contact_keys(merged, self.normalize)
            identity = p.identity or self.loader.person_identity(
                p.company_inn, keys, f"{merged.source}:{merged.source_id}")
            jobs.append(PersonJob(identity, p, company_ids[p.company_inn] or 0, keys))
        if not self.loader.dry_run:
            with self.state.transaction():
                self.state.put_contact_keys([(j.person.company_inn, k, v, j.identity)
                                             for j in jobs for k, v in j.keys])
                self.state.put_contact_names([(j.identity, *name_parts(j.person.merged(), self.normalize))
                                              for j in jobs])
        outcomes = self.loader.load_persons(jobs)
        failed: list[Reject] = []
        mapped, loaded_keys = [], []
        for j in jobs:
            o = outcomes.get(j.identity)
            for rec in j.person.records:
                if o is None or o.bitrix_id is None and o.action != "dry_run":
                    failed.append(Reject(rec.source, rec.source_id, "contact", rejects.CRM_ERROR,
                                         o.error if o else "not written", to_json_dict(rec)))
                else:
                    mapped.append((rec.source, "contact", rec.source_id, j.identity))
                    loaded_keys.append((rec.source, "contact", rec.source_id))
        self._reject(failed)
        if mapped and not self.loader.dry_run:
            with self.state.transaction():
                self.state.map_sources(mapped)
                self.state.resolve_rejects(loaded_keys)
                self.state.unpark(loaded_keys)

    def _known_persons(self, contacts: list[Contact], keys_of: list[list[tuple[str, str]]]) -> dict:
        """(company_inn, kind, value) -> (identity, name parts) for persons the state store knows."""
        keys = {(c.company_inn, k, v) for c, ks in zip(contacts, keys_of) for k, v in ks}
        if not keys:
            return {}
        hits = self.state.find_contact_keys(keys)
        if not hits:
            return {}
        names = self.state.get_contact_names(set(hits.values()))
        return {k: (ident, names.get(ident, ("", "", ""))) for k, ident in hits.items()}


def elapsed(t0: float) -> float:
    return round(time.monotonic() - t0, 3)
