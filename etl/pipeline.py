"""The load pipeline: extract -> transform -> offline checks -> EGRUL gate -> merge -> load.

Extraction, transformation and the offline INN check run in a process of their own
(`etl.producer`; a thread where the platform cannot fork, or for a small in-memory batch): they
cost as much CPU as the rest, and a second process gets a second core. A receiving thread takes
their chunks in order, starts the EGRUL lookups of each chunk at once (`gate.prefetch`) and
queues it; the consumer (the calling thread) collects the registry verdicts (by then mostly
ready: lookups overlap with loading), merges duplicates and loads. The bounded queue and pipe
keep memory flat whatever the input size.

The consumer writes a chunk's rejects, parked records and registry answers to the state store in
one transaction before the chunk's companies are written to the CRM, and what follows from the
companies' outcome in one more: the order of the state changes is the one of the records.

Every record ends in exactly one place: loaded (source record -> identity in the state store),
rejected with a reason, or parked as pending. Pending records of earlier runs go first.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sized
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from etl import rejects
from etl.dto import Company, Contact, Reject, evolve, from_json_dict, to_json_dict
from etl.producer import ExtractionProcess, can_fork, tuned_collector
from etl.state.base import PendingItem, StateStore, run_in_transaction
from loaders.crm_loader import CompanyJob, CrmLoader, PersonJob
from loaders.merge import NameParts, Person, cluster_contacts, contact_keys, merge_companies, name_parts
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


def offline_check(item: Item) -> Item:
    """The offline INN check (cheapest first): a company whose INN fails it becomes a Reject; a
    valid INN is carried in its normal form."""
    if isinstance(item, Company):
        inn, reason = check_inn(item.inn)
        if reason:
            return Reject(item.source, item.source_id, "company", reason, f"INN {item.inn!r}",
                          to_json_dict(item))
        if inn != item.inn:
            return evolve(item, inn=inn)
    return item


class Pipeline:
    def __init__(self, *, source: str, state: StateStore, gate: EgrulGate, loader: CrmLoader,
                 run_id: int, counts: Counter, normalize: Callable[[str], str],
                 conflict: Callable, stop: threading.Event | None = None,
                 progress: Callable[[int], None] | None = None,
                 extraction_process: bool | None = None) -> None:
        """`extraction_process`: extract and transform in a forked process (default: where the
        platform can fork). Callbacks the source itself calls while read (a byte-progress bar)
        must then be wrapped with `etl.producer.relay` to run in this process."""
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
        self.extraction_process = can_fork() if extraction_process is None else extraction_process
        # (source, company source_id) -> ("loaded", inn, bitrix id) | ("rejected", reason) | ("pending", why)
        self.company_outcome: dict[tuple[str, str], tuple] = {}
        # (source, kind, source_id) of records parked before (retried now): one that ends in a
        # reject leaves the pending list, as one that loads does
        self._was_parked: set[tuple[str, str, str]] = set()

    # --- producer -----------------------------------------------------------------------------
    @staticmethod
    def _admit(item: Item, chunk: _Chunk) -> None:
        """The offline INN check; valid companies' INNs are noted for lookup."""
        item = offline_check(item)
        if isinstance(item, Company):
            chunk.inns.append(item.inn)
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

    def _receive(self, extraction: ExtractionProcess, out: queue.Queue, limit: int | None) -> None:
        """The producer when extraction runs in its own process: parked records first (read and
        checked here: the state store is this process's), then the extraction's chunks."""
        n = 0
        try:
            chunk = _Chunk()
            for item in self.pending_items():
                if self.stop.is_set():
                    break
                self._admit(item, chunk)
                n += 1
                if len(chunk.items) >= CHUNK:
                    self._hand_on(chunk, out)
                    chunk = _Chunk()
                if limit and n >= limit:
                    break
            if chunk.items:
                self._hand_on(chunk, out)
            if not self.stop.is_set() and not (limit and n >= limit):
                for items in extraction.chunks(should_stop=self.stop.is_set):
                    if limit and n + len(items) > limit:
                        items = items[:limit - n]
                    n += len(items)
                    self._hand_on(_Chunk(items, [i.inn for i in items if isinstance(i, Company)]), out)
                    if (limit and n >= limit) or self.stop.is_set():
                        break
                if extraction.signalled:  # stopped by a signal of its own: this run is interrupted too
                    self.stop.set()
            out.put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which reports it
            out.put(e)
        finally:
            extraction.stop()

    def _hand_on(self, chunk: _Chunk, out: queue.Queue) -> None:
        self.gate.prefetch(chunk.inns)
        out.put(chunk)

    # --- consumer -----------------------------------------------------------------------------
    def run(self, items: Iterable[Item], *, limit: int | None = None) -> RunResult:
        result = RunResult(self.run_id, self.counts)
        q: queue.Queue = queue.Queue(maxsize=LOOKAHEAD)
        small = isinstance(items, Sized) and len(items) <= CHUNK
        with tuned_collector():
            extraction = None
            if self.extraction_process and not small:
                extraction = ExtractionProcess(items, prepare=offline_check, chunk_size=CHUNK, limit=limit)
                extraction.start()
                producer = threading.Thread(target=self._receive, args=(extraction, q, limit),
                                            name="extract-receive", daemon=True)
            else:
                producer = threading.Thread(target=self._produce, args=(self._with_pending(items), q, limit),
                                            name="extract", daemon=True)
            producer.start()
            try:
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
            finally:
                if extraction is not None:
                    extraction.close()
            producer.join(timeout=5)
        if self.stop.is_set():
            result.status = "interrupted"
        return result

    def _with_pending(self, items: Iterable[Item]) -> Iterator[Item]:
        """Records parked by earlier runs come first (their check is retried)."""
        yield from self.pending_items()
        yield from items

    def pending_items(self) -> Iterator[Item]:
        """Records parked by earlier runs, as items again (an unreadable one as a reject)."""
        parked = 0
        for p in self.state.iter_pending(source=self.source):
            self._was_parked.add((p.source, p.kind, p.source_id))
            try:
                yield from_json_dict(p.raw)
                parked += 1
            except Exception as e:  # noqa: BLE001 - a parked record we cannot read is a reject
                yield Reject(p.source, p.source_id, p.kind, rejects.BAD_RECORD,
                             f"parked record unreadable: {type(e).__name__}: {e}", p.raw)
        self.counts["pending_retried"] += parked

    def _reject(self, items: list[Reject]) -> None:
        if not items:
            return
        self.state.add_rejects(self.run_id, items)
        unparked = [key for r in items if (key := (r.source, r.kind, r.source_id)) in self._was_parked]
        if unparked:
            self.state.unpark(unparked)
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
        companies: list[Company] = []
        contacts: list[Contact] = []
        refused: list[Reject] = []
        for i in chunk.items:
            if isinstance(i, Contact):
                contacts.append(i)
            elif isinstance(i, Company):
                companies.append(i)
            else:
                refused.append(i)
        self.counts["records"] += len(chunk.items)
        by_inn, directors, rejected, parked = self._judge_companies(companies)
        # the source's rejects, the registry's verdicts and its answers: one transaction
        def first() -> None:
            self._reject(refused)
            self._reject(rejected)
            self._park(parked)
            self.gate.flush()
        self._atomically(first)
        failed, mapped, loaded_keys, new_inns = self._load_companies(by_inn, directors)
        if not (failed or mapped or contacts):
            return
        # what follows from the companies' outcome, and the contacts that cannot go on: one more
        sorted_out: list = []

        def second() -> None:
            self._reject(failed)
            self._map(mapped, loaded_keys)
            sorted_out[:] = self._sort_contacts(contacts)
        self._atomically(second)
        ready, company_ids = sorted_out
        self._load_persons(ready, company_ids, new_inns)

    def _atomically(self, work: Callable[[], None]) -> None:
        """Run state writes in one transaction; when another worker made it fail (a deadlock on
        a shared MySQL store) run it again, with the run's counters as they were before it."""
        before = Counter(self.counts)

        def attempt() -> None:
            if self.counts != before:
                self.counts.clear()
                self.counts.update(before)
            work()
        run_in_transaction(self.state, attempt)

    def _map(self, mapped: list[tuple[str, str, str, str]], loaded_keys: list[tuple[str, str, str]]) -> None:
        if mapped and not self.loader.dry_run:
            with self.state.transaction():
                self.state.map_sources(mapped)
                self.state.resolve_rejects(loaded_keys)
                self.state.unpark(loaded_keys)

    def _judge_companies(self, companies: list[Company]) -> tuple[dict[str, list[Company]], dict[str, str],
                                                                   list[Reject], list[tuple[Company, str]]]:
        """The registry's verdict per company: active ones by INN (enriched), the rest to reject or park."""
        by_inn: dict[str, list[Company]] = defaultdict(list)
        directors: dict[str, str] = {}
        rejected: list[Reject] = []
        parked: list[tuple[Company, str]] = []
        if not companies:
            return by_inn, directors, rejected, parked
        self.counts["companies_in"] += len(companies)
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
        return by_inn, directors, rejected, parked

    def _load_companies(self, by_inn: dict[str, list[Company]], directors: dict[str, str]
                        ) -> tuple[list[Reject], list[tuple[str, str, str, str]], list[tuple[str, str, str]], set[str]]:
        """Merge per INN and write; returns (CRM failures to reject, source map rows, loaded keys,
        INNs of the companies that were new to the state store)."""
        failed: list[Reject] = []
        mapped: list[tuple[str, str, str, str]] = []
        loaded_keys: list[tuple[str, str, str]] = []
        jobs = []
        for inn, recs in by_inn.items():
            self.counts["companies_merged_away"] += len(recs) - 1
            jobs.append(CompanyJob(company_identity(inn), merge_companies(recs), directors.get(inn, ""),
                                   [(r.source, r.source_id) for r in recs]))
        if not jobs:
            return failed, mapped, loaded_keys, set()
        outcomes = self.loader.load_companies(jobs)
        new_inns = {j.company.inn for j in jobs if j.identity in outcomes and outcomes[j.identity].new_to_store}
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
        return failed, mapped, loaded_keys, new_inns

    def _sort_contacts(self, contacts: list[Contact]) -> tuple[list[Contact], dict[str, int | None]]:
        """Contacts whose company loaded go on (with its INN); the others are rejected or parked here."""
        ready: list[Contact] = []
        company_ids: dict[str, int | None] = {}
        if not contacts:
            return ready, company_ids
        self.counts["contacts_in"] += len(contacts)
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
                ready.append(c if c.company_inn == inn else evolve(c, company_inn=inn))
        self._reject(rejected)
        self._park(parked)
        return ready, company_ids

    def _load_persons(self, ready: list[Contact], company_ids: dict[str, int | None],
                      new_inns: AbstractSet[str] = frozenset()) -> None:
        if not ready:
            return
        normalize = self.normalize
        # each record's normalised name and match keys, computed once for everything below
        names_of: list[NameParts] = [name_parts(c, normalize) for c in ready]
        keys_of = [contact_keys(c, normalize, n) for c, n in zip(ready, names_of)]
        persons = cluster_contacts(ready, normalize=normalize, conflict=self.conflict,
                                   known=self._known_persons(ready, keys_of, new_inns), keys=keys_of,
                                   names=names_of)
        self.counts["contacts_merged_away"] += len(ready) - len(persons)
        position = {id(c): i for i, c in enumerate(ready)}
        jobs: list[PersonJob] = []
        job_names: list[tuple[str, str, str]] = []
        for p in persons:
            merged = p.merged()
            if len(p.records) == 1:  # merged is the record itself
                names, keys = names_of[position[id(merged)]], keys_of[position[id(merged)]]
            else:
                names = name_parts(merged, normalize)
                keys = contact_keys(merged, normalize, names)
            identity = p.identity or self.loader.person_identity(
                p.company_inn, keys, f"{merged.source}:{merged.source_id}")
            jobs.append(PersonJob(identity, p, company_ids[p.company_inn] or 0, keys))
            job_names.append(names)
        if not self.loader.dry_run:
            # names first: whoever finds a key taken can then always see the holder's name
            self.state.put_contact_names([(j.identity, *names) for j, names in zip(jobs, job_names)])
            conflicts = self.state.put_contact_keys([(j.person.company_inn, k, v, j.identity)
                                                     for j in jobs for k, v in j.keys])
            if conflicts:
                jobs = self._adopt_winners(jobs, conflicts)
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
        if failed or (mapped and not self.loader.dry_run):
            def write() -> None:
                self._reject(failed)
                self._map(mapped, loaded_keys)
            self._atomically(write)

    def _adopt_winners(self, jobs: list[PersonJob], conflicts: dict) -> list[PersonJob]:
        """Another worker minted an identity for the same person at the same time and claimed a
        key first: fold our new identity into theirs (if the names agree), so both records become
        one card. A key held by a person whose name conflicts (a shared switchboard) stays theirs."""
        holders_of: dict[str, set[str]] = {}
        for j in jobs:
            if j.person.identity is None:
                held = {conflicts[(j.person.company_inn, k, v)] for k, v in j.keys
                        if (j.person.company_inn, k, v) in conflicts}
                held.discard(j.identity)
                if held:
                    holders_of[j.identity] = held
        if not holders_of:
            return jobs
        ours = {j.identity for j in jobs}
        # a key held by another person of this very batch was settled by clustering: not a race
        holders_of = {i: hs - ours for i, hs in holders_of.items() if hs - ours}
        names = self.state.get_contact_names({h for hs in holders_of.values() for h in hs})
        moves = []
        for j in jobs:
            mine = name_parts(j.person.merged(), self.normalize)
            for holder in sorted(holders_of.get(j.identity, ())):
                if holder in names and not self.conflict(mine, names[holder]):
                    moves.append((j.identity, holder))
                    j.identity = holder
                    self.counts["contacts_joined_other_worker"] += 1
                    break
        if moves:
            self.state.reassign_contact_keys(moves)
        merged: dict[str, PersonJob] = {}
        for j in jobs:
            if j.identity in merged:  # two of our persons turned out to be one
                first = merged[j.identity]
                first.person = Person(first.person.company_inn, first.person.records + j.person.records,
                                      first.person.identity)
                first.keys = contact_keys(first.person.merged(), self.normalize)
            else:
                merged[j.identity] = j
        return list(merged.values())

    def _known_persons(self, contacts: list[Contact], keys_of: list[list[tuple[str, str]]],
                       new_inns: AbstractSet[str] = frozenset()) -> dict:
        """(company_inn, kind, value) -> (identity, name parts) for persons the state store knows.

        Not asked for the contacts of a company this chunk has just put in the state store for the
        first time (`new_inns`): contact keys are stored only for a company already recorded there
        (a person is written after its company), so there is nothing to find; on a first load that
        is nearly every contact. A worker that raced us for such a company and lost has waited for
        our write, so for it the company is not new."""
        keys = {(c.company_inn, k, v) for c, ks in zip(contacts, keys_of) if c.company_inn not in new_inns
                for k, v in ks}
        if not keys:
            return {}
        hits = self.state.find_contact_keys(keys)
        if not hits:
            return {}
        names = self.state.get_contact_names(set(hits.values()))
        return {k: (ident, names.get(ident, ("", "", ""))) for k, ident in hits.items()}


def elapsed(t0: float) -> float:
    return round(time.monotonic() - t0, 3)
