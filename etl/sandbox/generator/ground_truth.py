"""The expected CRM for one INN: which source records load or are rejected (and why), which persons
exist, and what each card must hold — after the full loads, then after each change event.

One real company is one INN; every record that carries that INN validly is generated in the same
step, so the truth of an INN is complete when the step ends and can be written and forgotten.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from etl import rejects
from etl.sandbox.generator import registry as reg
from etl.sandbox.generator.records import CompanyRecord, ContactRecord
from etl.sandbox.generator.rules import Persons, PersonRecord, merged_name
from etl.sandbox.generator.world import RealCompany

Ref = tuple[str, str, str]      # (source, kind, source_id)
Outcome = tuple[str, str] | None  # (reason, detail) or None when loaded


@dataclass
class SeedCompany:
    key: str
    title: str
    phones: frozenset[str]
    emails: frozenset[str]


@dataclass
class CompanyTruth:
    """Truth for one real company; `copy()` before trying an event that may have to be undone."""

    company: RealCompany
    registry: dict[str, str]
    outcomes: dict[Ref, Outcome] = field(default_factory=dict)
    loaded: list[str] = field(default_factory=list)      # "shop-a:company:12", in load order
    phones: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    seed: SeedCompany | None = None
    persons: Persons = field(default_factory=Persons)
    person_keys: list[str] = field(default_factory=list)

    @property
    def inn(self) -> str:
        return self.company.inn

    @property
    def in_crm(self) -> bool:
        return bool(self.loaded) or self.seed is not None

    def copy(self) -> CompanyTruth:
        return CompanyTruth(self.company, self.registry, dict(self.outcomes), list(self.loaded),
                            set(self.phones), set(self.emails), self.seed, self.persons.copy(),
                            list(self.person_keys))

    # -- the full load --------------------------------------------------------------------------

    def judge(self, companies: Iterable[CompanyRecord], contacts: Iterable[ContactRecord]) -> list[PersonRecord]:
        """Judge the records of the full loads; return the loaded contacts of this INN."""
        for r in companies:
            self._judge_company(r)
        loaded = []
        for r in contacts:
            if self._judge_contact(r):
                loaded.append(r.person_record())
        return loaded

    def build_persons(self, records: list[PersonRecord]) -> None:
        """Group the full load's contacts (and the seed's) into persons, and name them."""
        self.persons = Persons.build(records)
        self.person_keys = []
        self._name_new_groups()

    # -- events ---------------------------------------------------------------------------------

    def apply_snapshot(self, company: CompanyRecord, contacts: Iterable[ContactRecord]) -> None:
        """One BP_CREATED/BP_CHANGED snapshot; raises rules.BridgeError (leaving self half-changed:
        use it on a copy) when a contact would join two existing persons."""
        self._judge_company(company)
        for r in contacts:
            if self._judge_contact(r):
                self.persons.add(r.person_record())
        self._name_new_groups()

    def apply_deleted(self, ref: Ref) -> None:
        self.outcomes[ref] = (rejects.SOURCE_DELETED, "BP_DELETED")

    # -- output ---------------------------------------------------------------------------------

    def company_line(self) -> dict | None:
        if not self.in_crm:
            return None
        c = self.company
        short = reg.short_with_opf(c)
        return {
            "inn": c.inn,
            "title": self.seed.title if self.seed else short,
            "short_name": short,
            "full_name": reg.full_with_opf(c),
            "kpp": c.kpp,
            "ogrn": c.ogrn,
            "is_sole_proprietor": c.sole_proprietor,
            "egrul_status": c.status,
            "phones": sorted(self.phones | (self.seed.phones if self.seed else set())),
            "emails": sorted(self.emails | (self.seed.emails if self.seed else set())),
            "seed": self.seed is not None,
            "seed_key": self.seed.key if self.seed else None,
            "sources": list(self.loaded),
        }

    def contact_lines(self) -> list[dict]:
        out = []
        for key, group in zip(self.person_keys, self.persons.groups):
            last, first, middle = merged_name(group)
            seeds = [r.key.removeprefix("seed:") for r in group if r.seed]
            out.append({
                "key": key, "company_inn": self.inn,
                "last_name": last, "first_name": first, "middle_name": middle,
                "phones": sorted(set().union(*(r.phones for r in group))),
                "emails": sorted(set().union(*(r.emails for r in group))),
                "seed": bool(seeds), "seed_key": seeds[0] if seeds else None,
                "sources": list(dict.fromkeys(r.key for r in group if not r.seed)),
            })
        return out

    def reject_lines(self) -> list[dict]:
        return [{"source": s, "kind": k, "source_id": i, "reason": o[0], "detail": o[1]}
                for (s, k, i), o in self.outcomes.items() if o is not None]

    # -- internals ------------------------------------------------------------------------------

    def _judge_company(self, r: CompanyRecord) -> None:
        r.judge(self.registry)
        if r.reason is None:
            if r.inn != self.inn:  # cannot happen: a valid INN text is always the company's own
                raise AssertionError(f"record {r.ref} carries INN {r.inn}, not {self.inn}")
            self.outcomes[r.ref] = None
            ref = ":".join(r.ref)
            if ref not in self.loaded:
                self.loaded.append(ref)
            self.phones |= r.phones
            self.emails |= r.emails
        else:
            detail = r.reason.removeprefix(rejects.INACTIVE_PREFIX) if r.reason.startswith(
                rejects.INACTIVE_PREFIX) else ""
            self.outcomes[r.ref] = (r.reason, detail)

    def _judge_contact(self, r: ContactRecord) -> bool:
        r.judge()
        if r.reason is None:
            self.outcomes[r.ref] = None
            return True
        detail = r.company.reason if r.reason == rejects.COMPANY_REJECTED else ""
        self.outcomes[r.ref] = (r.reason, detail or "")
        return False

    def _name_new_groups(self) -> None:
        """Stable keys: `INN/p<world person>`, `#2`, `#3`... when one person ended up as several
        cards (records that only linked through a rejected record)."""
        used = Counter(k.split("#")[0] for k in self.person_keys)
        for group in self.persons.groups[len(self.person_keys):]:
            person = min((r.person for r in group if r.person), default="") or min(r.key for r in group)
            base = f"{self.inn}/{person}"
            used[base] += 1
            self.person_keys.append(base if used[base] == 1 else f"{base}#{used[base]}")
