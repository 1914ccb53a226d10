"""What the generator knows about each source record it writes: the meaning behind the mess.

A `CompanyRecord`/`ContactRecord` pairs a written row/element with the values a careful reader
takes from it (INN text, valid E.164 phones, valid e-mails, name parts, time). `judge` applies the
rules; the ground truth is then built from these judgements.
"""
from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from etl.sandbox.generator import messy
from etl.sandbox.generator.rules import PersonRecord, company_reason, contact_reason
from etl.sandbox.generator.world import Person

PARTIAL_NAME = 0.45   # a repeated record of a person writes the name partially

SHOP_A = "shop-a"
SHOP_B = "shop-b"
COMPANY = "company"
CONTACT = "contact"


@dataclass(slots=True)
class CompanyRecord:
    source: str
    source_id: str
    inn_text: str | None
    updated: datetime                     # UTC
    active: bool = True
    deleted: bool = False
    phones: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    inn: str | None = None
    reason: str | None = None

    @property
    def ref(self) -> tuple[str, str, str]:
        return (self.source, COMPANY, self.source_id)

    def judge(self, registry: Mapping[str, str]) -> None:
        self.inn, self.reason = company_reason(deleted=self.deleted, active=self.active,
                                               inn_text=self.inn_text, registry=registry)


@dataclass(slots=True)
class ContactRecord:
    source: str
    source_id: str
    company: CompanyRecord
    person: str | None                    # world person key, None for a junk record
    name: tuple[str, str, str]
    updated: datetime
    deleted: bool = False
    phones: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    reason: str | None = None

    @property
    def ref(self) -> tuple[str, str, str]:
        return (self.source, CONTACT, self.source_id)

    def judge(self) -> None:
        self.reason = contact_reason(deleted=self.deleted, company_reason=self.company.reason,
                                     has_name=any(self.name), has_phone=bool(self.phones),
                                     has_email=bool(self.emails))

    def person_record(self) -> PersonRecord:
        return PersonRecord(key=f"{self.source}:{CONTACT}:{self.source_id}", person=self.person or "",
                            name=self.name, phones=self.phones, emails=self.emails,
                            updated=self.updated)


@dataclass(slots=True)
class Appearance:
    """One written record of a person: which of the person's identifiers it carries and how the
    name is written. The generator's guarantee (RULES.md): a record whose name is not the exact
    full name always carries the person's e-mail or mobile, as the person's first record does."""

    person: Person
    form: str = messy.NAME_FULL
    email: bool = True
    mobile: bool = True
    work: bool = True
    deleted: bool = False


def plan_appearances(slots: list[tuple[str, list[Person]]], rng: random.Random,
                     deleted_share: Mapping[str, float]) -> list[list[Appearance]]:
    """For each record slot (shop, persons in it): how each person is written there.

    One appearance of each person (chosen at random) is the anchor: exact full name, e-mail and
    mobile; so is the first of several appearances of a person within one slot, so that each slot
    is connected on its own. The others may write the name partially (`Иван Иванов`, `ИВАНОВ И.И.`, no middle
    name), and then carry the e-mail or the mobile too.
    """
    where: dict[int, list[tuple[int, int]]] = {}
    for si, (_, persons) in enumerate(slots):
        for pi, p in enumerate(persons):
            where.setdefault(p.idx, []).append((si, pi))
    anchors = {rng.choice(places) for places in where.values()}
    # A person written twice in one record slot (one partner / one shop A company) must be
    # connected within that slot too: slots are loaded in any order (Kafka partitions, chunks,
    # several consumers), and a later slot cannot join two cards an earlier one created.
    for places in where.values():
        by_slot: dict[int, list[tuple[int, int]]] = {}
        for place in places:
            by_slot.setdefault(place[0], []).append(place)
        for in_slot in by_slot.values():
            if len(in_slot) > 1 and not anchors.intersection(in_slot):
                anchors.add(in_slot[0])
    out: list[list[Appearance]] = []
    for si, (shop, persons) in enumerate(slots):
        row = []
        for pi, p in enumerate(persons):
            if (si, pi) in anchors:
                a = Appearance(p, messy.NAME_FULL, True, True, rng.random() < 0.6)
            else:
                partial = rng.random() < PARTIAL_NAME
                forms = messy.PARTIAL_FORMS_A if shop == SHOP_A else messy.PARTIAL_FORMS_B
                form = rng.choice(forms) if partial else messy.NAME_FULL
                a = Appearance(p, form, rng.random() < 0.75, rng.random() < 0.5, rng.random() < 0.6)
                if partial and not (a.email or a.mobile):
                    if rng.random() < 0.5:
                        a.email = True
                    else:
                        a.mobile = True
            a.deleted = rng.random() < deleted_share[shop]
            row.append(a)
        out.append(row)
    return out
