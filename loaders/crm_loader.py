"""The deduplicating, idempotent Bitrix24 loader.

Given merged companies (one per INN, registry-verified) and persons (one per real contact), it
decides per entity: create, enrich an existing CRM entity, or do nothing; and writes only through
`batch`, full batches, with an intent recorded in the state store before every create.

How an entity is matched to the CRM, cheapest first:
1. the state store (identity -> Bitrix24 id, with the hash of what we last wrote: equal hash ->
   nothing is sent);
2. an identity with an intent but no id (we died mid-write) -> the CRM is searched by ORIGIN_ID;
3. otherwise the CRM is searched for the same company (requisite RQ_INN) or the same person
   (`crm.duplicate.findbycomm` by e-mail/phone, same company, names that do not conflict) —
   skipped when the CRM had none at start, prefetched in bulk when that costs fewer requests.
A matched entity is enriched (blank fields filled, new phones/e-mails added), never overwritten.
"""
from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from datetime import datetime, timezone
from concurrent.futures import ThreadPoolExecutor
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from etl.dto import Company
from etl.state.base import INTENT, WRITTEN, StateStore
from etl.state.sql import pid_alive
from loaders import payloads as P
from loaders.bitrix24.client import Bitrix24Client
from loaders.bitrix24.errors import OutcomeUnknown
from loaders.merge import NameParts, Person, name_parts

log = logging.getLogger(__name__)

BATCH_MAX = 50
INN_PER_LIST = 25        # RQ_INN values per requisite list command (results stay within one page)
IDS_PER_LIST = 50        # IDs per `@ID` / `@ORIGIN_ID` list command (one page)
VALUES_PER_FINDBYCOMM = 20
CLAIM_STALE_S = 120.0    # another worker's intent older than this is taken as abandoned
CLAIM_WAIT_S = 60.0      # how long to wait for another worker's write before looking ourselves
UNKNOWN_ROUNDS = 4       # a batch's outcome lost this many times in a row: left to the next run


@dataclass
class CompanyJob:
    identity: str
    company: Company                      # merged + enriched from the registry
    director: str = ""
    sources: list[tuple[str, str]] = field(default_factory=list)  # (source, source_id) of its records
    # card, requisite and bank details without references, built once for the hash and the writes
    payload: tuple[dict, dict, list[dict]] | None = field(default=None, repr=False, compare=False)


@dataclass
class PersonJob:
    identity: str
    person: Person
    company_id: int                       # Bitrix24 id of the person's company
    keys: list[tuple[str, str]] = field(default_factory=list)
    fields: dict[str, Any] | None = field(default=None, repr=False, compare=False)  # built once (hash, writes)


@dataclass
class Outcome:
    """What happened to one identity: its Bitrix24 id, or the portal's error."""

    identity: str
    bitrix_id: int | None = None
    action: str = ""                      # created | enriched | unchanged | found | failed | dry_run
    error: str = ""
    # the state store had no entity for this identity before, and this worker claimed it (so
    # nothing keyed on it, e.g. a company's contact keys, can be in the store from earlier)
    new_to_store: bool = False


@dataclass
class _Group:
    """Commands that belong to one entity; `main` is the key whose result is the entity id."""

    identity: str
    entity_type: str
    commands: list[tuple[str, str, dict[str, Any]]]   # (key, method, params)
    main: str | None
    payload_hash: str
    create: bool
    action: str
    main_id: int | None = None    # for updates: the CRM id the commands act on
    job: Any = None               # the CompanyJob / PersonJob it was built from


def _chunks(seq: Sequence, n: int) -> Iterator[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _list_rows(result: Any) -> list[dict]:
    """A list command's result inside a batch: a list of rows (PHP may give `[]` or a dict)."""
    if isinstance(result, list):
        return [r for r in result if isinstance(r, dict)]
    if isinstance(result, dict):
        return [r for r in result.values() if isinstance(r, dict)]
    return []


class CrmLoader:
    def __init__(self, client: Bitrix24Client, state: StateStore, run_id: int, *,
                 counts: Counter | None = None, dry_run: bool = False, senders: int = 4,
                 normalize: Callable[[str], str], conflict: Callable[[NameParts, NameParts], bool]) -> None:
        self.client = client
        self.state = state
        self.run_id = run_id
        self.counts = counts if counts is not None else Counter()
        self.dry_run = dry_run
        self.normalize = normalize
        self.conflict = conflict
        self.presets: dict[str, int] = {}
        self.crm_has_companies = True
        self.crm_has_contacts = True
        self.requisite_index: dict[str, int] | None = None  # prefetched RQ_INN -> company id
        self._seq = 0
        self._count_lock = threading.Lock()
        self._claimed: set[str] = set()   # identities whose intent _claim recorded (this run)
        self._pool = ThreadPoolExecutor(senders, thread_name_prefix="crm-write") if senders > 1 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _count(self, key: str, n: int = 1) -> None:
        with self._count_lock:
            self.counts[key] += n

    # --- set-up ---------------------------------------------------------------------------------
    def prepare(self, expected_companies: int | None = None) -> None:
        """Note the run's expected size; the CRM is asked (presets, counts) only when something
        has to be written or looked up, so a run with nothing to do sends no request at all."""
        self._expected = expected_companies
        self._prepared = False

    def _ensure_prepared(self) -> None:
        if getattr(self, "_prepared", True):
            return
        self._prepared = True
        expected_companies = self._expected
        for row in self.client.list_all("crm.requisite.preset.list", select=["ID", "XML_ID"]):
            if row.get("XML_ID"):
                self.presets[row["XML_ID"]] = int(row["ID"])
        missing = [x for x in (P.PRESET_XML_COMPANY, P.PRESET_XML_INDIVIDUAL) if x not in self.presets]
        if missing:
            log.warning("requisite presets %s not found on the portal; using ids 1/2", ", ".join(missing))
            self.presets.setdefault(P.PRESET_XML_COMPANY, 1)
            self.presets.setdefault(P.PRESET_XML_INDIVIDUAL, 2)
        req_total = self._total("crm.requisite.list", {"ENTITY_TYPE_ID": P.ENTITY_COMPANY})
        contacts_total = self._total("crm.contact.list", {})
        self.crm_has_companies = req_total > 0
        self.crm_has_contacts = contacts_total > 0
        # Prefetching all requisites costs ~1 request per 2 500 rows; looking INNs up per batch costs
        # ~1 request per INN_PER_LIST*50 INNs. Prefetch when that is cheaper for this run.
        if req_total and expected_companies and req_total / 2500 <= expected_companies / (INN_PER_LIST * BATCH_MAX):
            self.requisite_index = {}
            for row in self.client.list_all("crm.requisite.list", filter={"ENTITY_TYPE_ID": P.ENTITY_COMPANY},
                                            select=["ID", "ENTITY_ID", "RQ_INN"]):
                inn = (row.get("RQ_INN") or "").strip()
                if inn and inn not in self.requisite_index:
                    self.requisite_index[inn] = int(row["ENTITY_ID"])
            self.counts["crm_requisites_prefetched"] += len(self.requisite_index)
        log.info("CRM at start: %d company requisites, %d contacts; duplicate lookup: %s",
                 req_total, contacts_total,
                 "none needed" if not req_total else "prefetched" if self.requisite_index is not None else "per batch")

    def _total(self, method: str, filter: dict) -> int:
        resp = self.client.call(method, {"filter": filter, "select": ["ID"], "start": 0})
        return int(resp.total or 0)

    # --- batching -------------------------------------------------------------------------------
    def _key(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq}"

    def _read(self, commands: list[tuple[str, str, dict]]) -> dict[str, Any]:
        """Run read-only commands in full batches; returns key -> result (errors logged, absent)."""
        out: dict[str, Any] = {}
        for chunk in _chunks(commands, BATCH_MAX):
            res = self.client.batch({k: (m, p) for k, m, p in chunk}, idempotent=True)
            out.update(res.results)
            for key, err in res.errors.items():
                log.warning("CRM lookup %s failed: %s", key, err)
        return out

    @staticmethod
    def _pack(groups: list[_Group]) -> list[list[_Group]]:
        """Groups in full batches (a group's commands never split: they reference each other)."""
        batches: list[list[_Group]] = []
        batch: list[_Group] = []
        size = 0
        for g in groups:
            if size + len(g.commands) > BATCH_MAX and batch:
                batches.append(batch)
                batch, size = [], 0
            batch.append(g)
            size += len(g.commands)
        if batch:
            batches.append(batch)
        return batches

    def _execute(self, groups: list[_Group]) -> dict[str, Outcome]:
        """Write groups packed into full batches; intents before creates; outcome per identity.

        Batches go out on `senders` threads: a real portal takes seconds for 50 writes, so one
        thread could not keep the request budget busy (the client's leaky bucket paces them all).
        """
        batches = self._pack(groups)
        outcomes: dict[str, Outcome] = {}
        if len(batches) <= 1 or self._pool is None:
            for b in batches:
                outcomes.update(self._send(b))
            return outcomes
        for result in self._pool.map(self._send, batches):
            outcomes.update(result)
        return outcomes

    def _send(self, groups: list[_Group], rounds: int = 0) -> dict[str, Outcome]:
        if self.dry_run:
            return {g.identity: Outcome(g.identity, None, "dry_run") for g in groups}
        # identities claimed by _claim already carry this run's intent; record only the others
        creates = [(g.identity, g.entity_type, g.payload_hash) for g in groups
                   if g.create and g.identity not in self._claimed]
        self._claimed.difference_update(g.identity for g in groups)
        if creates:
            self.state.record_intents(creates, run_id=self.run_id)
        commands = {k: (m, p) for g in groups for k, m, p in g.commands}
        self._count("crm_write_requests")
        self._count("crm_write_commands", len(commands))
        try:
            res = self.client.batch(commands)
        except OutcomeUnknown as e:
            self._count("crm_outcome_unknown")
            log.warning("batch of %d entities: outcome unknown (%s); reconciling", len(groups), e.cause)
            return self._reconcile_unknown(groups, e, rounds + 1)
        outcomes: dict[str, Outcome] = {}
        written = []
        for g in groups:
            main_err = res.errors.get(g.main) if g.main else None
            if main_err is not None:
                outcomes[g.identity] = Outcome(g.identity, None, "failed", _describe(main_err))
                continue
            sub_errors = [(k, res.errors[k]) for k, _, _ in g.commands if k in res.errors]
            bitrix_id = _as_int(res.results.get(g.main)) if g.create else g.main_id
            if bitrix_id is None:
                outcomes[g.identity] = Outcome(g.identity, None, "failed", "the portal returned no id")
                continue
            h = g.payload_hash
            if sub_errors:
                # the entity exists but part of it (requisite, bank detail, ...) was refused: keep a
                # hash that differs from any real one, so the next run looks at it again
                h = "partial:" + g.payload_hash
                for k, err in sub_errors:
                    log.warning("%s: command %s refused: %s", g.identity, k, _describe(err))
                self._count("crm_partial")
            written.append((g.identity, g.entity_type, bitrix_id, h))
            outcomes[g.identity] = Outcome(g.identity, bitrix_id, g.action)
        if written:
            self.state.record_written(written, run_id=self.run_id)
        return outcomes

    def _reconcile_unknown(self, groups: list[_Group], err: OutcomeUnknown, rounds: int) -> dict[str, Outcome]:
        """The batch may have run wholly, in part (the portal runs its commands one by one) or not
        at all. Once it can no longer be running, every entity is looked at again: a create found
        by ORIGIN_ID, and every update, go through enrichment (what is still missing is sent,
        nothing twice); a create not found is sent again."""
        self._settle(err)
        if rounds >= UNKNOWN_ROUNDS:
            why = f"outcome unknown {rounds} times in a row ({err.cause}); the next run looks it up again"
            return {g.identity: Outcome(g.identity, None, "failed", why) for g in groups}
        found = {**self._find_by_origin("crm.company.list", [g.identity for g in groups if g.create and g.entity_type == "company"]),
                 **self._find_by_origin("crm.contact.list", [g.identity for g in groups if g.create and g.entity_type == "contact"])}
        self._count("crm_reconciled_found", len(found))
        again = [g for g in groups if g.create and g.identity not in found]
        companies, persons = [], []
        for g in groups:
            if not g.create or g.identity in found:
                item = (g.job, found.get(g.identity, g.main_id), g.action)
                (companies if g.entity_type == "company" else persons).append(item)
        hashes = {g.identity: g.payload_hash for g in groups}
        outcomes: dict[str, Outcome] = {}
        again += self._company_enrich_groups(companies, hashes, outcomes)
        again += self._contact_enrich_groups(persons, hashes, outcomes)
        for batch in self._pack(again):  # on this thread: the pool's threads may all be here
            outcomes.update(self._send(batch, rounds))
        action = {g.identity: g.action for g in groups}
        for identity, o in outcomes.items():
            if o.bitrix_id is not None:
                o.action = action[identity]  # "unchanged" by enrichment: the lost write did it
        return outcomes

    def _settle(self, err: OutcomeUnknown) -> None:
        """Wait until the lost request can no longer be running on the portal (it cuts a request
        after `request_time_limit`), so that what it did is visible to the lookups."""
        limit = getattr(self.client, "request_time_limit", 0.0)
        if err.sent_at is None or not limit:
            return
        wait = err.sent_at + limit - time.monotonic()
        if wait > 0:
            self._count("crm_settle_wait_ms", round(wait * 1000))
            time.sleep(wait)

    def _find_by_origin(self, method: str, identities: list[str]) -> dict[str, int]:
        if not identities:
            return {}
        cmds = [(self._key("o"), method, {"filter": {"=ORIGINATOR_ID": P.ORIGINATOR_ID, "@ORIGIN_ID": list(chunk)},
                                          "select": ["ID", "ORIGIN_ID"], "order": {"ID": "ASC"}})
                for chunk in _chunks(identities, IDS_PER_LIST)]
        found: dict[str, int] = {}
        for rows in self._read(cmds).values():
            for row in _list_rows(rows):
                found.setdefault(row.get("ORIGIN_ID", ""), int(row["ID"]))
        self._count("crm_lookup_origin", len(cmds))
        return found

    # --- several workers on one state store -----------------------------------------------------
    def _claim(self, fresh: list, reconcile: list, known: dict, hashes: dict[str, str],
               entity_type: str) -> tuple[list, list, list]:
        """Claim new identities before creating them (the database lets exactly one worker win);
        identities another live worker is writing right now are waited for, not created again."""
        waiting = []
        if self.dry_run:
            return fresh, reconcile, waiting
        keep = []
        for j in reconcile:
            e = known[j.identity]
            (waiting if self._in_flight_elsewhere(e) else keep).append(j)
        if fresh:
            created = self.state.record_intents([(j.identity, entity_type, hashes[j.identity]) for j in fresh],
                                                run_id=self.run_id)
            self._claimed.update(created)
            waiting += [j for j in fresh if j.identity not in created]
            fresh = [j for j in fresh if j.identity in created]
        return fresh, keep, waiting

    def _in_flight_elsewhere(self, e) -> bool:
        """An intent of another run that is still alive (recent, and its process exists)."""
        if e.run_id is None or e.run_id == self.run_id:
            return False
        if (datetime.now(timezone.utc) - e.updated_at).total_seconds() > CLAIM_STALE_S:
            return False
        run = self.state.get_run(e.run_id)
        if run is None or run.status != "running":
            return False
        return not (run.host == socket.gethostname() and not pid_alive(run.pid))

    def _wait_for_others(self, jobs: list) -> list[tuple[Any, int | None]]:
        """Wait until other workers have written these identities; (job, id or None if they gave up)."""
        if not jobs:
            return []
        self._count("crm_waited_for_other_worker", len(jobs))
        deadline = time.monotonic() + CLAIM_WAIT_S
        ids = {j.identity for j in jobs}
        found: dict[str, int] = {}
        while True:
            for identity, e in self.state.get_entities(ids - set(found)).items():
                if e.bitrix_id is not None and e.status == WRITTEN:
                    found[identity] = e.bitrix_id
            if len(found) == len(ids) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return [(j, found.get(j.identity)) for j in jobs]

    # --- companies ------------------------------------------------------------------------------
    def _company_payload(self, job: CompanyJob) -> tuple[dict, dict, list[dict]]:
        """Card, requisite (no company/preset reference) and bank details (no requisite reference)."""
        if job.payload is None:
            c = job.company
            job.payload = (P.company_fields(c, job.identity), P.requisite_fields(c, 0, 0, job.director),
                           [P.bankdetail_fields(b, 0) for b in c.bank_accounts])
        return job.payload

    def _company_hash(self, job: CompanyJob) -> str:
        card, requisite, banks = self._company_payload(job)
        return P.payload_hash(card, requisite, banks, job.company.address)

    def _preset(self, c: Company) -> int:
        return self.presets[P.PRESET_XML_INDIVIDUAL if c.is_sole_proprietor else P.PRESET_XML_COMPANY]

    def _create_company_group(self, job: CompanyJob, h: str) -> _Group:
        c = job.company
        card, requisite, banks = self._company_payload(job)
        ck, rk = self._key("c"), self._key("r")
        # the same maps as requisite_fields / bankdetail_fields with the references filled in
        cmds = [(ck, "crm.company.add", {"fields": card, "params": {"REGISTER_SONET_EVENT": "N"}}),
                (rk, "crm.requisite.add", {"fields": {**requisite, "ENTITY_ID": f"$result[{ck}]",
                                                     "PRESET_ID": self._preset(c)}})]
        cmds += [(self._key("b"), "crm.requisite.bankdetail.add", {"fields": {**b, "ENTITY_ID": f"$result[{rk}]"}})
                 for b in banks]
        if c.address:
            cmds.append((self._key("a"), "crm.address.add", {"fields": P.address_fields(c.address, f"$result[{rk}]")}))
        return _Group(job.identity, "company", cmds, ck, h, True, "created", job=job)

    def _find_companies_by_inn(self, inns: list[str]) -> dict[str, int]:
        if not inns or not self.crm_has_companies:
            return {}
        if self.requisite_index is not None:
            return {inn: self.requisite_index[inn] for inn in inns if inn in self.requisite_index}
        cmds = [(self._key("q"), "crm.requisite.list",
                 {"filter": {"ENTITY_TYPE_ID": P.ENTITY_COMPANY, "@RQ_INN": list(chunk)},
                  "select": ["ID", "ENTITY_ID", "RQ_INN"], "order": {"ID": "ASC"}})
                for chunk in _chunks(inns, INN_PER_LIST)]
        self.counts["crm_lookup_inn"] += len(cmds)
        found: dict[str, int] = {}
        for rows in self._read(cmds).values():
            for row in _list_rows(rows):
                inn = (row.get("RQ_INN") or "").strip()
                if inn and inn not in found:
                    found[inn] = int(row["ENTITY_ID"])
        return found

    def _triage(self, jobs: list, hashes: dict[str, str], entity_type: str, list_method: str
                ) -> tuple[dict[str, Outcome], list, list[tuple[Any, int, str]], list[str]]:
        """Sort jobs by what the state store (and, for interrupted creates, the CRM by ORIGIN_ID)
        knows: unchanged (outcome at once), to enrich (with their CRM id), or to create. New
        identities are claimed first; ones another live worker is creating are waited for.
        Returns (outcomes, to_create, to_enrich, identities this worker claimed as new)."""
        outcomes: dict[str, Outcome] = {}
        known = self.state.get_entities(hashes)
        to_create: list = []
        to_enrich: list[tuple[Any, int, str]] = []   # job, CRM id, action
        reconcile: list = []
        for j in jobs:
            e = known.get(j.identity)
            if e is not None and e.bitrix_id is not None:
                if e.status == WRITTEN and e.payload_hash == hashes[j.identity]:
                    outcomes[j.identity] = Outcome(j.identity, e.bitrix_id, "unchanged")
                else:
                    to_enrich.append((j, e.bitrix_id, "enriched"))
            elif e is not None and e.status == INTENT:
                reconcile.append(j)
            else:
                to_create.append(j)
        to_create, reconcile, waiting = self._claim(to_create, reconcile, known, hashes, entity_type)
        claimed = [j.identity for j in to_create]
        for j, bitrix_id in self._wait_for_others(waiting):
            (to_enrich.append((j, bitrix_id, "enriched")) if bitrix_id else reconcile.append(j))
        if to_create or to_enrich or reconcile:
            self._ensure_prepared()
        if reconcile:
            found = self._find_by_origin(list_method, [j.identity for j in reconcile])
            for j in reconcile:
                (to_enrich.append((j, found[j.identity], "enriched")) if j.identity in found else to_create.append(j))
        return outcomes, to_create, to_enrich, claimed

    def load_companies(self, jobs: list[CompanyJob]) -> dict[str, Outcome]:
        hashes = {j.identity: self._company_hash(j) for j in jobs}
        outcomes, to_create, to_enrich, new_to_store = self._triage(jobs, hashes, "company", "crm.company.list")
        in_crm = self._find_companies_by_inn([j.company.inn for j in to_create])
        if in_crm:
            still = []
            for j in to_create:
                if j.company.inn in in_crm:
                    to_enrich.append((j, in_crm[j.company.inn], "found"))
                else:
                    still.append(j)
            to_create = still
        groups = [self._create_company_group(j, hashes[j.identity]) for j in to_create]
        groups += self._company_enrich_groups(to_enrich, hashes, outcomes)
        outcomes.update(self._execute(groups))
        for identity in new_to_store:
            if identity in outcomes:
                outcomes[identity].new_to_store = True
        for action, n in Counter(o.action for o in outcomes.values()).items():
            self.counts[f"companies_{action}"] += n
        return outcomes

    def _company_enrich_groups(self, items: list[tuple[CompanyJob, int, str]], hashes: dict[str, str],
                               outcomes: dict[str, Outcome]) -> list[_Group]:
        if not items:
            return []
        reads = []
        for j, cid, _ in items:
            reads.append((f"g{cid}", "crm.company.get", {"id": cid}))
            reads.append((f"rq{cid}", "crm.requisite.list",
                          {"filter": {"ENTITY_TYPE_ID": P.ENTITY_COMPANY, "ENTITY_ID": cid}, "order": {"ID": "ASC"}}))
        current = self._read(reads)
        req_ids = [int(r["ID"]) for j, cid, _ in items for r in _list_rows(current.get(f"rq{cid}"))]
        banks: dict[int, list[dict]] = {}
        if req_ids:
            cmds = [(self._key("bd"), "crm.requisite.bankdetail.list",
                     {"filter": {"@ENTITY_ID": list(chunk)}, "order": {"ID": "ASC"}})
                    for chunk in _chunks(req_ids, IDS_PER_LIST)]
            for rows in self._read(cmds).values():
                for row in _list_rows(rows):
                    banks.setdefault(int(row["ENTITY_ID"]), []).append(row)
        groups: list[_Group] = []
        for j, cid, action in items:
            company = current.get(f"g{cid}")
            h = hashes[j.identity]
            if not isinstance(company, dict):
                # gone from the CRM (deleted by a person): create it again
                groups.append(self._create_company_group(j, h))
                continue
            c = j.company
            desired = self._company_payload(j)[0]
            fill = P.COMPANY_FILL + (("ORIGINATOR_ID", "ORIGIN_ID") if not company.get("ORIGIN_ID") else ())
            cmds: list[tuple[str, str, dict]] = []
            upd = P.enrichment(company, desired, fill)
            if upd:
                cmds.append((self._key("u"), "crm.company.update", {"id": cid, "fields": upd}))
            reqs = _list_rows(current.get(f"rq{cid}"))
            req = next((r for r in reqs if (r.get("RQ_INN") or "").strip() == c.inn), None)
            if req is None:
                rk = self._key("r")
                cmds.append((rk, "crm.requisite.add",
                             {"fields": P.requisite_fields(c, cid, self._preset(c), j.director)}))
                cmds += [(self._key("b"), "crm.requisite.bankdetail.add",
                          {"fields": P.bankdetail_fields(b, f"$result[{rk}]")}) for b in c.bank_accounts]
                if c.address:
                    cmds.append((self._key("a"), "crm.address.add",
                                 {"fields": P.address_fields(c.address, f"$result[{rk}]")}))
            else:
                rid = int(req["ID"])
                rupd = P.enrichment(req, P.requisite_fields(c, cid, 0, j.director), P.REQUISITE_FILL)
                if rupd:
                    cmds.append((self._key("ru"), "crm.requisite.update", {"id": rid, "fields": rupd}))
                have = {(b.get("RQ_ACC_NUM") or "").strip() for b in banks.get(rid, [])}
                cmds += [(self._key("b"), "crm.requisite.bankdetail.add", {"fields": P.bankdetail_fields(b, rid)})
                         for b in c.bank_accounts if b.account not in have]
            if not cmds:
                # nothing to add: remember the hash so the next run sends nothing at all
                if not self.dry_run:
                    self.state.record_written([(j.identity, "company", cid, h)], run_id=self.run_id)
                outcomes[j.identity] = Outcome(j.identity, cid, "unchanged" if action == "enriched" else action)
                continue
            groups.append(_Group(j.identity, "company", cmds, None, h, False, action, main_id=cid, job=j))
        return groups

    # --- contacts -------------------------------------------------------------------------------
    def person_identity(self, company_inn: str, keys: list[tuple[str, str]], fallback: str) -> str:
        basis = min(f"{k}:{v}" for k, v in keys) if keys else fallback
        return "contact:" + hashlib.sha1(f"{company_inn}|{basis}".encode()).hexdigest()[:24]

    def _contact_fields(self, job: PersonJob) -> dict[str, Any]:
        if job.fields is None:
            job.fields = P.contact_fields(job.person.merged(), job.identity, job.company_id)
        return job.fields

    def _contact_hash(self, job: PersonJob) -> str:
        return P.payload_hash(self._contact_fields(job))

    def _find_contacts_in_crm(self, jobs: list[PersonJob]) -> dict[str, int]:
        """identity -> CRM contact id of the same person already in the CRM (not ours yet)."""
        if not jobs or not self.crm_has_contacts:
            return {}
        emails = sorted({e for j in jobs for e in j.person.merged().emails})
        phones = sorted({p.e164 for j in jobs for p in j.person.merged().phones})
        cmds = [(self._key("d"), "crm.duplicate.findbycomm", {"type": "EMAIL", "values": list(ch), "entity_type": "CONTACT"})
                for ch in _chunks(emails, VALUES_PER_FINDBYCOMM)]
        cmds += [(self._key("d"), "crm.duplicate.findbycomm", {"type": "PHONE", "values": list(ch), "entity_type": "CONTACT"})
                 for ch in _chunks(phones, VALUES_PER_FINDBYCOMM)]
        self.counts["crm_lookup_findbycomm"] += len(cmds)
        ids: set[int] = set()
        for res in self._read(cmds).values():
            if isinstance(res, dict):
                ids.update(int(i) for i in res.get("CONTACT") or [])
        if not ids:
            return {}
        cmds = [(self._key("cl"), "crm.contact.list",
                 {"filter": {"@ID": list(ch)}, "order": {"ID": "ASC"},
                  "select": ["ID", "NAME", "LAST_NAME", "SECOND_NAME", "COMPANY_ID", "PHONE", "EMAIL"]})
                for ch in _chunks(sorted(ids), IDS_PER_LIST)]
        candidates = [row for rows in self._read(cmds).values() for row in _list_rows(rows)]
        by_key: dict[tuple[int, str, str], list[dict]] = {}
        for row in candidates:
            company = _as_int(row.get("COMPANY_ID"))
            for e in row.get("EMAIL") or []:
                by_key.setdefault((company, "email", (e.get("VALUE") or "").strip().lower()), []).append(row)
            for p in row.get("PHONE") or []:
                by_key.setdefault((company, "phone", P._phone_key(p.get("VALUE") or "")), []).append(row)
        found: dict[str, int] = {}
        for j in jobs:
            merged = j.person.merged()
            mine = name_parts(merged, self.normalize)
            keys = [("email", e) for e in merged.emails] + [("phone", P._phone_key(p.e164)) for p in merged.phones]
            for kind, value in keys:
                for row in by_key.get((j.company_id, kind, value), ()):
                    theirs = (self.normalize(row.get("LAST_NAME") or ""), self.normalize(row.get("NAME") or ""),
                              self.normalize(row.get("SECOND_NAME") or ""))
                    if not self.conflict(mine, theirs):
                        found[j.identity] = int(row["ID"])
                        break
                if j.identity in found:
                    break
        return found

    def load_persons(self, jobs: list[PersonJob]) -> dict[str, Outcome]:
        hashes = {j.identity: self._contact_hash(j) for j in jobs}
        outcomes, to_create, to_enrich, _ = self._triage(jobs, hashes, "contact", "crm.contact.list")
        in_crm = self._find_contacts_in_crm(to_create)
        if in_crm:
            to_enrich += [(j, in_crm[j.identity], "found") for j in to_create if j.identity in in_crm]
            to_create = [j for j in to_create if j.identity not in in_crm]
        groups = []
        for j in to_create:
            k = self._key("p")
            groups.append(_Group(j.identity, "contact",
                                 [(k, "crm.contact.add", {"fields": self._contact_fields(j),
                                                          "params": {"REGISTER_SONET_EVENT": "N"}})],
                                 k, hashes[j.identity], True, "created", job=j))
        groups += self._contact_enrich_groups(to_enrich, hashes, outcomes)
        outcomes.update(self._execute(groups))
        for action, n in Counter(o.action for o in outcomes.values()).items():
            self.counts[f"contacts_{action}"] += n
        return outcomes

    def _contact_enrich_groups(self, items: list[tuple[PersonJob, int, str]], hashes: dict[str, str],
                               outcomes: dict[str, Outcome]) -> list[_Group]:
        if not items:
            return []
        reads = [(f"g{cid}", "crm.contact.get", {"id": cid}) for _, cid, _ in items]
        reads += [(f"l{cid}", "crm.contact.company.items.get", {"id": cid}) for _, cid, _ in items]
        current = self._read(reads)
        groups = []
        for j, cid, action in items:
            contact = current.get(f"g{cid}")
            h = hashes[j.identity]
            if not isinstance(contact, dict):
                k = self._key("p")
                groups.append(_Group(j.identity, "contact",
                                     [(k, "crm.contact.add", {"fields": self._contact_fields(j)})],
                                     k, h, True, "created", job=j))
                continue
            desired = self._contact_fields(j)
            fill = P.CONTACT_FILL + (("ORIGINATOR_ID", "ORIGIN_ID") if not contact.get("ORIGIN_ID") else ())
            cmds: list[tuple[str, str, dict]] = []
            upd = P.enrichment(contact, desired, fill)
            upd.pop("COMPANY_ID", None)  # links are added below, never replaced
            if upd:
                cmds.append((self._key("u"), "crm.contact.update", {"id": cid, "fields": upd}))
            links = current.get(f"l{cid}")
            linked = {_as_int(x.get("COMPANY_ID")) for x in (links if isinstance(links, list) else [])}
            if _as_int(contact.get("COMPANY_ID")) is not None:
                linked.add(_as_int(contact.get("COMPANY_ID")))
            if j.company_id not in linked:
                cmds.append((self._key("lk"), "crm.contact.company.add",
                             {"id": cid, "fields": {"COMPANY_ID": j.company_id}}))
            if not cmds:
                if not self.dry_run:
                    self.state.record_written([(j.identity, "contact", cid, h)], run_id=self.run_id)
                outcomes[j.identity] = Outcome(j.identity, cid, "unchanged" if action == "enriched" else action)
                continue
            groups.append(_Group(j.identity, "contact", cmds, None, h, False, action, main_id=cid, job=j))
        return groups


def _describe(err: Any) -> str:
    code = getattr(err, "code", None)
    desc = getattr(err, "description", None)
    if code is None and isinstance(err, dict):
        code, desc = err.get("error"), err.get("error_description")
    return f"{code or 'error'}: {desc or err}".strip()
