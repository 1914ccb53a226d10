"""What the CRM holds before our first load (`crm_seed.json`): companies with an INN requisite and
contacts with e-mails/phones, some of them the same companies/persons the shops have.

Seed items are Bitrix24 field maps ready for `crm.company.add`/`crm.requisite.add`/
`crm.contact.add` (etl/sandbox/seed.py applies them). A seed contact that is one of our persons
shares an e-mail with that person's loaded records and has no middle name, so it is found by
`crm.duplicate.findbycomm` and never by a name alone.
"""
from __future__ import annotations

import random
from datetime import datetime, timezone

from etl.sandbox.generator import vocabulary as V
from etl.sandbox.generator.ground_truth import SeedCompany
from etl.sandbox.generator.rules import PersonRecord
from etl.sandbox.generator.world import Person, RealCompany, World

SEED_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)  # older than every source record


class SeedMaker:
    def __init__(self, world: World) -> None:
        self.world = world
        self._companies = 0
        self._contacts = 0

    def company(self, c: RealCompany, rng: random.Random) -> tuple[dict, SeedCompany]:
        self._companies += 1
        key = f"sc{self._companies}"
        if c.sole_proprietor:
            title = rng.choice((f"ИП {c.owner.last}", c.owner.full_name, f"ИП {c.core}"))
        else:
            title = rng.choice((c.core, f'{c.opf[2]} "{c.core}"', f"{c.core} (старый клиент)",
                                f"{c.core}, {c.city}"))
        phones = [c.switchboard] if rng.random() < 0.6 else [self.world.landline(c.area_code)]
        emails = [c.emails[0]] if rng.random() < 0.5 else []
        requisite = {"RQ_INN": c.inn, "NAME": title}
        if c.sole_proprietor:
            o = c.owner
            requisite.update(PRESET="individual", RQ_OGRNIP=c.ogrn, RQ_LAST_NAME=o.last,
                             RQ_FIRST_NAME=o.first, RQ_SECOND_NAME=o.middle)
        else:
            requisite.update(PRESET="company", RQ_KPP=c.kpp, RQ_OGRN=c.ogrn, RQ_COMPANY_NAME=title)
        item = {
            "key": key, "inn": c.inn,
            "fields": {"TITLE": title, "COMPANY_TYPE": "CUSTOMER",
                       "PHONE": [{"VALUE": p, "VALUE_TYPE": "WORK"} for p in phones],
                       "EMAIL": [{"VALUE": e, "VALUE_TYPE": "WORK"} for e in emails]},
            "requisite": requisite,
        }
        return item, SeedCompany(key, title, frozenset(phones), frozenset(emails))

    def known_person(self, p: Person, company_key: str, email: str, phone: str | None) -> tuple[dict, PersonRecord]:
        """A seed card of one of our persons: first and last name, one e-mail (and phone) the
        person's loaded records carry."""
        return self._contact(p.key, company_key, (p.last, p.first, ""), [email], [phone] if phone else [])

    def new_person(self, p: Person, company_key: str | None) -> tuple[dict, PersonRecord]:
        """A seed card of someone no shop knows."""
        return self._contact(p.key, company_key, (p.last, p.first, p.middle), [p.email], [p.mobile])

    def stranger(self, rng: random.Random) -> tuple[dict, PersonRecord]:
        """A seed contact with no company at all."""
        female = rng.random() < 0.5
        last = rng.choice(V.SURNAMES)[1 if female else 0]
        first = rng.choice(V.FEMALE_FIRST if female else V.MALE_FIRST)
        middle = rng.choice(V.PATRONYMICS)[1 if female else 0]
        email = self.world.public_mail(rng, last, first)
        return self._contact("", None, (last, first, middle), [email], [self.world.mobile()])

    def _contact(self, person: str, company_key: str | None, name: tuple[str, str, str],
                 emails: list[str], phones: list[str]) -> tuple[dict, PersonRecord]:
        self._contacts += 1
        key = f"sp{self._contacts}"
        item = {
            "key": key, "company_key": company_key,
            "fields": {"NAME": name[1], "LAST_NAME": name[0], "SECOND_NAME": name[2],
                       "TYPE_ID": "CLIENT",
                       "PHONE": [{"VALUE": p, "VALUE_TYPE": "WORK"} for p in phones],
                       "EMAIL": [{"VALUE": e, "VALUE_TYPE": "WORK"} for e in emails]},
        }
        rec = PersonRecord(key=f"seed:{key}", person=person or f"seed-{key}", name=name,
                           phones=frozenset(phones), emails=frozenset(emails), updated=SEED_TIME,
                           seed=True)
        return item, rec
