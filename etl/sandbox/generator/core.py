"""`generate()`: one real company at a time — its people, the records each shop holds about it, its
registry lines, maybe a seed card and some change events, and the ground truth for its INN — all
written out before the next company is made, so memory stays flat at any scale.
"""
from __future__ import annotations

import contextlib
import json
import random
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from etl.sandbox.generator import registry as reg
from etl.sandbox.generator.crm_seed import SeedMaker
from etl.sandbox.generator.events import PARTNER_EVENT_SHARE, EventMaker, Partner
from etl.sandbox.generator.ground_truth import CompanyTruth
from etl.sandbox.generator.manifest import MANIFEST, Manifest
from etl.sandbox.generator.output import JsonLinesWriter, YearlyExport, sha256_of
from etl.sandbox.generator.records import (SHOP_A, SHOP_B, Appearance, CompanyRecord, ContactRecord,
                                           plan_appearances)
from etl.sandbox.generator.rules import Persons, PersonRecord
from etl.sandbox.generator.shop_a import ShopA
from etl.sandbox.generator.shop_a import CONTACT_DELETED as A_CONTACT_DELETED
from etl.sandbox.generator.shop_a_sink import GeneratorError, ShopASink
from etl.sandbox.generator.shop_b import CONTACT_DELETED as B_CONTACT_DELETED
from etl.sandbox.generator.shop_b import ShopB
from etl.sandbox.generator.world import RealCompany, World

__all__ = ["generate", "GeneratorError", "ScalePlan"]

Progress = Callable[[int, int], None]

# The reference case at scale 1.0 (DESIGN.md).
SHOP_A_COMPANIES, SHOP_B_PARTNERS = 53_000, 125_000
BOTH_SHOPS, EVENTS_ONLY, SEED_ONLY = 0.06, 0.004, 0.008
DUP_A, DUP_B = 0.03, 0.04          # the same company twice within one shop
A_IN_SCOPE = 0.85
NEW_PARTNER_LATER = 0.004          # an existing company that SAP creates a new partner for
SEED_MATCH, SEED_REJECTED, SEED_STRANGER = 0.05, 0.03, 0.003
# Persons per record: shop A ~1.4 contacts per company row, shop B ~4.8 per partner.
A_PERSONS = ((0, 25), (1, 40), (2, 19), (3, 9), (4, 4), (5, 3))
B_PERSONS = ((1, 10), (2, 13), (3, 15), (4, 15), (5, 13), (6, 10), (7, 8), (8, 6), (9, 4), (10, 3),
             (11, 2), (12, 1))
A_SAME_PERSON_TWICE, B_SAME_PERSON_TWICE = 0.05, 0.04
MIN_COMPANIES = 20


@dataclass(frozen=True)
class Presence:
    a: tuple[bool, ...] = ()        # one entry per shop A row: in scope?
    b: int = 0                      # shop B partners in the export
    created_later: bool = False     # a BP_CREATED partner after the export
    seed_only: bool = False


class ScalePlan:
    """How many real companies, and in which shop(s) each appears, for a scale (1.0 = reference)."""

    def __init__(self, scale: float) -> None:
        if scale <= 0:
            raise GeneratorError(f"--scale must be positive, got {scale}")
        a = SHOP_A_COMPANIES / (1 + DUP_A)
        b = SHOP_B_PARTNERS / (1 + DUP_B)
        per_company = 1 - EVENTS_ONLY - SEED_ONLY + BOTH_SHOPS
        n_at_1 = (a + b) / per_company
        self.companies = max(MIN_COMPANIES, round(n_at_1 * scale))
        self.p_a = a / n_at_1 - BOTH_SHOPS
        self.p_b = b / n_at_1 - BOTH_SHOPS

    def presence(self, rng: random.Random) -> Presence:
        x = rng.random()
        if x < SEED_ONLY:
            return Presence(seed_only=True)
        x -= SEED_ONLY
        if x < EVENTS_ONLY:
            return Presence(created_later=True)
        x -= EVENTS_ONLY
        in_a = x < self.p_a + BOTH_SHOPS
        in_b = x >= self.p_a
        a = tuple(rng.random() < A_IN_SCOPE for _ in range(1 + (rng.random() < DUP_A))) if in_a else ()
        b = 1 + (rng.random() < DUP_B) if in_b else 0
        return Presence(a=a, b=b, created_later=rng.random() < NEW_PARTNER_LATER)


def _pick(rng: random.Random, weights) -> int:
    total = sum(w for _, w in weights)
    x = rng.random() * total
    for v, w in weights:
        x -= w
        if x < 0:
            return v
    return weights[-1][0]


class _Outputs:
    """Every file of one data set, open for streaming."""

    def __init__(self, out: Path, *, bom: bool, mysql_dsn: str | None, replace: bool) -> None:
        self.out = out
        for d in ("shop_b", "truth", "truth_after_events"):
            (out / d).mkdir(parents=True, exist_ok=True)
        self.shop_a = ShopASink(out / "shop_a.sqlite", mysql_dsn, replace=replace)
        self.export = YearlyExport(out / "shop_b", bom=bom)
        self.events = JsonLinesWriter(out / "shop_b" / "events.jsonl")
        self.registry = JsonLinesWriter(out / "egrul_registry.jsonl")
        self.truth = {name: JsonLinesWriter(out / "truth" / f"{name}.jsonl")
                      for name in ("companies", "contacts", "rejects")}
        self.after = {name: JsonLinesWriter(out / "truth_after_events" / f"{name}.jsonl")
                      for name in ("companies", "contacts", "rejects")}
        self.seed_companies = JsonLinesWriter(out / ".crm_seed_companies.tmp")
        self.seed_contacts = JsonLinesWriter(out / ".crm_seed_contacts.tmp")

    def close(self) -> list[Path]:
        self.shop_a.close()
        self.export.close()
        for w in (self.events, self.registry, *self.truth.values(), *self.after.values(),
                  self.seed_companies, self.seed_contacts):
            w.close()
        seed = self.out / "crm_seed.json"
        with open(seed, "w", encoding="utf-8", newline="\n") as f:
            for i, (name, tmp) in enumerate((("companies", self.seed_companies.path),
                                             ("contacts", self.seed_contacts.path))):
                f.write(("{" if i == 0 else ",\n") + f'"{name}": [')
                with open(tmp, encoding="utf-8") as src:
                    for n, line in enumerate(src):
                        f.write(("\n" if n == 0 else ",\n") + line.rstrip("\n"))
                f.write("\n]")
                tmp.unlink()
            f.write("}\n")
        return [self.out / "shop_a.sqlite", *self.export.paths, self.events.path, self.registry.path,
                seed, *(w.path for w in self.truth.values()), *(w.path for w in self.after.values())]


class _Tally:
    """Counts for the manifest and the truth summaries."""

    def __init__(self) -> None:
        self.records: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.outcomes_after: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.registry: Counter[str] = Counter()
        self.seed: Counter[str] = Counter()
        self.truth: Counter[str] = Counter()
        self.truth_after: Counter[str] = Counter()

    @staticmethod
    def count_outcomes(counter: Counter[str], truth: CompanyTruth) -> None:
        for (source, kind, _), outcome in truth.outcomes.items():
            counter[f"{source}/{kind}/{outcome[0] if outcome else 'loaded'}"] += 1

    @staticmethod
    def summary(counter: Counter[str], outcomes: Counter[str]) -> dict:
        by_reason: Counter[str] = Counter()
        by_source: Counter[str] = Counter()
        for key, n in outcomes.items():
            source, kind, reason = key.split("/", 2)
            if reason != "loaded":
                by_reason[reason] += n
                by_source[f"{source}/{kind}"] += n
        return {"companies": counter["companies"], "seed_companies": counter["seed_companies"],
                "contacts": counter["contacts"], "seed_contacts": counter["seed_contacts"],
                "rejects": sum(by_reason.values()),
                "rejects_by_reason": dict(sorted(by_reason.items())),
                "rejects_by_source": dict(sorted(by_source.items())),
                "outcomes": dict(sorted(outcomes.items()))}


class Generator:
    def __init__(self, out: Path, *, seed: int, scale: float, now: date, bom: bool,
                 mysql_dsn: str | None, replace: bool) -> None:
        self.out, self.seed_value, self.scale, self.now = out, seed, scale, now
        self.since = date(now.year - 1, 1, 1)
        self.now_utc = datetime(now.year, now.month, now.day, tzinfo=timezone.utc)
        self.plan = ScalePlan(scale)
        self.world = World(now)
        self.shop_a = ShopA(now, self.since)
        self.shop_b = ShopB(self.now_utc)
        self.events = EventMaker(self.world, self.shop_b, self.now_utc)
        self.seeds = SeedMaker(self.world)
        self.files = _Outputs(out, bom=bom, mysql_dsn=mysql_dsn, replace=replace)
        self.tally = _Tally()

    # -- one real company -----------------------------------------------------------------------

    def step(self, idx: int) -> None:
        rng = random.Random(f"crm-etl/{self.seed_value}/{idx}")
        presence = self.plan.presence(rng)
        c = self.world.company(idx, rng, status="ACTIVE" if presence.seed_only else None)
        self._write_registry(c)
        truth = CompanyTruth(c, {c.inn: c.status} if c.status != "NOT_FOUND" else {})
        # record slots, in this order: shop A rows in scope, shop B partners, the partner created
        # after the export, shop A rows out of scope
        n_in = sum(presence.a)
        slots = self._slots(c, rng, presence)
        plans = plan_appearances(slots, rng, {SHOP_A: A_CONTACT_DELETED, SHOP_B: B_CONTACT_DELETED})
        later = plans[n_in + presence.b] if presence.created_later else None
        out_of_scope = plans[n_in + presence.b + presence.created_later:]

        companies, contacts = self._shop_a(c, rng, plans[:n_in], in_scope=True)
        self._shop_a(c, rng, out_of_scope, in_scope=False)
        partners = self._shop_b(c, rng, plans[n_in:n_in + presence.b])
        for p in partners:
            companies.append(p.company)
            contacts.extend(p.contacts)

        loaded = truth.judge(companies, contacts)
        seed_records = self._seed(c, rng, truth, loaded, presence, companies)
        truth.build_persons(loaded + seed_records)
        self._write_truth(truth, self.files.truth, self.tally.truth)
        self.tally.count_outcomes(self.tally.outcomes, truth)

        after = self._events(c, rng, partners, later, truth)
        self._write_truth(after, self.files.after, self.tally.truth_after)
        self.tally.count_outcomes(self.tally.outcomes_after, after)
        if rng.random() < SEED_STRANGER:
            self._seed_stranger(rng)

    def _shop_a(self, c: RealCompany, rng: random.Random, plans: list[list[Appearance]], *,
                in_scope: bool) -> tuple[list[CompanyRecord], list[ContactRecord]]:
        companies: list[CompanyRecord] = []
        contacts: list[ContactRecord] = []
        for plan in plans:
            rows, rec, recs = self.shop_a.company(c, rng, in_scope=in_scope, appearances=plan)
            for row in rows:
                self.files.shop_a.add(row)
            self.tally.records[f"{SHOP_A}/company"] += 1
            self.tally.records[f"{SHOP_A}/contact"] += len(recs)
            if not in_scope:
                self.tally.records[f"{SHOP_A}/company/out_of_scope"] += 1
                self.tally.records[f"{SHOP_A}/contact/out_of_scope"] += len(recs)
            companies.append(rec)
            contacts.extend(recs)
        return companies, contacts

    def _shop_b(self, c: RealCompany, rng: random.Random, plans: list[list[Appearance]]) -> list[Partner]:
        partners = []
        for plan in plans:
            element, rec, recs = self.shop_b.partner(c, rng, plan)
            self.files.export.write(element)
            partners.append(Partner(element, rec, recs))
            self.tally.records[f"{SHOP_B}/company"] += 1
            self.tally.records[f"{SHOP_B}/contact"] += len(recs)
        return partners

    def _events(self, c: RealCompany, rng: random.Random, partners: list[Partner],
                later: list[Appearance] | None, truth: CompanyTruth) -> CompanyTruth:
        """Write the company's change events; return the truth after them."""
        after = truth
        events: list[dict] = []
        for partner in partners:
            if rng.random() < PARTNER_EVENT_SHARE:
                evs, after = self.events.changes(c, rng, partner, after)
                events.extend(evs)
                self.tally.events["partners"] += 1
        if later is not None:
            evs, after = self.events.created(c, rng, later, after)
            events.extend(evs)
            self.tally.events["partners"] += 1
        for line in self.events.topic_lines(events, rng):
            self.files.events.write_line(line)
            self.tally.events["lines"] += 1
        for e in events:
            self.tally.events[e["event_type"]] += 1
        return after

    def _seed_stranger(self, rng: random.Random) -> None:
        """A seed contact of no company: in the truth before and after events, untouched."""
        item, rec = self.seeds.stranger(rng)
        self._write_seed_contact(item)
        line = _person_line(f"seed/{item['key']}", "", rec)
        for writers, counter in ((self.files.truth, self.tally.truth), (self.files.after, self.tally.truth_after)):
            writers["contacts"].write(line)
            counter["contacts"] += 1
            counter["seed_contacts"] += 1

    def _slots(self, c: RealCompany, rng: random.Random, presence: Presence):
        """(shop, persons) per record, in planning order (see `step`)."""
        def persons(weights, twice: float = 0.0):
            k = _pick(rng, weights)
            while len(c.persons) < k:
                self.world.person(c, rng)
            chosen = rng.sample(c.persons, k)
            out = []
            for p in chosen:
                out.append(p)
                if twice and rng.random() < twice:
                    out.append(p)
            return out

        in_scope = [s for s in presence.a if s]
        out_scope = [s for s in presence.a if not s]
        slots = [(SHOP_A, persons(A_PERSONS, A_SAME_PERSON_TWICE)) for _ in in_scope]
        slots += [(SHOP_B, persons(B_PERSONS, B_SAME_PERSON_TWICE)) for _ in range(presence.b)]
        if presence.created_later:
            slots.append((SHOP_B, persons(B_PERSONS)))
        slots += [(SHOP_A, persons(A_PERSONS, A_SAME_PERSON_TWICE)) for _ in out_scope]
        return slots

    # -- seed -----------------------------------------------------------------------------------

    def _seed(self, c: RealCompany, rng: random.Random, truth: CompanyTruth, loaded: list[PersonRecord],
              presence: Presence, companies: list[CompanyRecord]) -> list[PersonRecord]:
        if presence.seed_only:
            chance = 1.0
        elif truth.loaded:
            chance = SEED_MATCH
        elif any(r.inn for r in companies):
            chance = SEED_REJECTED
        else:
            return []
        if rng.random() >= chance:
            return []
        item, seed_company = self.seeds.company(c, rng)
        self._write_seed_company(item, matching=bool(truth.loaded))
        truth.seed = seed_company
        records: list[PersonRecord] = []
        if truth.loaded and rng.random() < 0.5:
            groups = [g for g in Persons.build(loaded).groups if any(r.emails for r in g)]
            if groups:
                group = rng.choice(groups)
                person = c.persons[int(min(r.person for r in group)[1:])]
                email = sorted(set().union(*(r.emails for r in group)))[0]
                phones = set().union(*(r.phones for r in group))
                contact, rec = self.seeds.known_person(person, seed_company.key, email,
                                                       person.mobile if person.mobile in phones else None)
                self._write_seed_contact(contact, matching=True)
                records.append(rec)
        extra = rng.randint(1, 2) if presence.seed_only else int(rng.random() < 0.3)
        for _ in range(extra):
            contact, rec = self.seeds.new_person(self.world.person(c, rng), seed_company.key)
            self._write_seed_contact(contact)
            records.append(rec)
        return records

    def _write_seed_company(self, item: dict, matching: bool) -> None:
        self.files.seed_companies.write(item)
        self.tally.seed["companies"] += 1
        self.tally.seed["matching_companies"] += matching

    def _write_seed_contact(self, item: dict, matching: bool = False) -> None:
        self.files.seed_contacts.write(item)
        self.tally.seed["contacts"] += 1
        self.tally.seed["matching_contacts"] += matching

    # -- writing --------------------------------------------------------------------------------

    def _write_registry(self, c: RealCompany) -> None:
        lines = reg.registry_lines(c, self.now)
        for line in lines:
            self.files.registry.write(line)
        self.tally.registry["lines"] += len(lines)
        self.tally.registry["branches"] += max(0, len(lines) - 1)
        self.tally.registry[c.status] += 1

    @staticmethod
    def _write_truth(truth: CompanyTruth, writers: dict[str, JsonLinesWriter], counter: Counter[str]) -> None:
        line = truth.company_line()
        if line:
            writers["companies"].write(line)
            counter["companies"] += 1
            counter["seed_companies"] += line["seed"]
        for person in truth.contact_lines():
            writers["contacts"].write(person)
            counter["contacts"] += 1
            counter["seed_contacts"] += person["seed"]
        for reject in truth.reject_lines():
            writers["rejects"].write(reject)

    def finish(self) -> Manifest:
        paths = self.files.close()
        summaries = {
            "truth": _Tally.summary(self.tally.truth, self.tally.outcomes),
            "truth_after_events": _Tally.summary(self.tally.truth_after, self.tally.outcomes_after),
        }
        for name, summary in summaries.items():
            (self.out / name / "summary.json").write_text(
                json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            paths.append(self.out / name / "summary.json")
        files = {str(p.relative_to(self.out)): {"bytes": p.stat().st_size, "sha256": sha256_of(p)}
                 for p in paths}
        counts = {
            "real_companies": self.plan.companies,
            "records": dict(sorted(self.tally.records.items())),
            "events": dict(sorted(self.tally.events.items())),
            "registry": dict(sorted(self.tally.registry.items())),
            "seed": dict(sorted(self.tally.seed.items())),
            "shop_a_rows": dict(self.files.shop_a.rows),
            **summaries,
        }
        manifest = Manifest(out_dir=str(self.out), seed=self.seed_value, scale=self.scale,
                            now=self.now.isoformat(), since=self.since.isoformat(), counts=counts,
                            files=files, mysql_database=self.files.shop_a.mysql_database)
        manifest.write(self.out)
        return manifest


def _person_line(key: str, inn: str, rec: PersonRecord) -> dict:
    return {"key": key, "company_inn": inn, "last_name": rec.name[0], "first_name": rec.name[1],
            "middle_name": rec.name[2], "phones": sorted(rec.phones), "emails": sorted(rec.emails),
            "seed": True, "seed_key": rec.key.removeprefix("seed:"), "sources": []}


def generate(out_dir: str | Path, *, seed: int = 1, scale: float = 0.01, now: date | None = None,
             mysql_dsn: str | None = None, bom: bool = False, progress: Progress | None = None,
             replace: bool = False) -> Manifest:
    """Write a sandbox data set into `out_dir` and return its manifest.

    Same `seed`, `scale` and `now` give byte-identical files. `mysql_dsn` (`mysql://...`) also
    fills shop A's tables into that database (refused if they exist, unless `replace`).
    `progress(done, total)` is called after each real company.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)   # written last: its presence means "complete"
    for stale in ("shop_b", "truth", "truth_after_events"):
        if (out / stale).is_dir():
            shutil.rmtree(out / stale)
    gen = Generator(out, seed=seed, scale=scale, now=now or date.today(), bom=bom,
                    mysql_dsn=mysql_dsn, replace=replace)
    total = gen.plan.companies
    try:
        for idx in range(total):
            gen.step(idx)
            if progress:
                progress(idx + 1, total)
    except BaseException:
        with contextlib.suppress(Exception):  # the original error matters more
            gen.files.close()
        raise
    return gen.finish()
