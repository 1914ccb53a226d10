"""The real world behind the shops: companies and the people who work there, in clean form.

The shops then write these down badly (shop_a.py, shop_b.py); the ground truth is derived from
what they wrote. Everything here is proper UTF-8 text, E.164 phones, lower-case e-mails.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from etl.sandbox.generator import identifiers as ids
from etl.sandbox.generator import vocabulary as V
from etl.sandbox.generator.rules import normalise

# EGRUL states of real companies, with their weights (per mille).
STATUS_WEIGHTS = (("ACTIVE", 880), ("LIQUIDATED", 30), ("LIQUIDATING", 20), ("BANKRUPT", 15),
                  ("REORGANIZING", 15), ("NOT_FOUND", 40))
SOLE_PROPRIETOR_SHARE = 0.12
BRANCH_SHARE = 0.03


@dataclass(slots=True)
class Person:
    idx: int
    last: str
    first: str
    middle: str
    female: bool
    email: str
    mobile: str
    direct: str | None      # own landline, else reached at the switchboard
    ext: str                # extension at the switchboard
    position: str
    alt_email: str          # an address the person starts using later (events)

    @property
    def key(self) -> str:
        return f"p{self.idx}"

    @property
    def full_name(self) -> str:
        return f"{self.last} {self.first} {self.middle}"


@dataclass(slots=True)
class RealCompany:
    idx: int
    inn: str
    sole_proprietor: bool
    opf: tuple[str, str, str]
    core: str                   # the distinctive part of the name: `Вектор-Трейд`
    long_name: str              # how some people write it in full: `Торговый дом "Вектор-Трейд" Урал`
    kpp: str
    ogrn: str
    registered: date
    status: str
    status_changed: date
    branches: int
    city: str
    post_code: str
    area_code: str
    street: str
    house: str
    domain: str
    switchboard: str
    extra_phone: str
    emails: tuple[str, ...]
    bank: tuple[str, str, str]
    account: str
    persons: list[Person] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.post_code}, г. {self.city}, {self.street}, д. {self.house}"

    @property
    def owner(self) -> Person:
        return self.persons[0]


class World:
    """Makes real companies and people. Holds only counters, so memory stays flat."""

    def __init__(self, now: date) -> None:
        self.now = now
        self._legal = 0
        self._personal = 0
        self._ogrn = 0
        self._mobile = 0
        self._landline: dict[str, int] = {}
        self._public_mail = 0

    # -- numbers ------------------------------------------------------------------------------

    def next_legal_inn(self) -> str:
        self._legal += 1
        return ids.legal_inn(self._legal)

    def next_personal_inn(self) -> str:
        self._personal += 1
        return ids.personal_inn(self._personal)

    def landline(self, area_code: str) -> str:
        n = self._landline.get(area_code, 0) + 1
        self._landline[area_code] = n
        digits = 10 - len(area_code)
        return f"+7{area_code}{ids.scramble(n, 10 ** digits, 7_654_321):0{digits}d}"

    def mobile(self) -> str:
        self._mobile += 1
        prefix = V.MOBILE_PREFIXES[self._mobile % len(V.MOBILE_PREFIXES)]
        serial = ids.scramble(self._mobile // len(V.MOBILE_PREFIXES), 10_000_000, 3_141_593)
        return f"+7{prefix}{serial:07d}"

    def public_mail(self, rng: random.Random, last: str, first: str) -> str:
        self._public_mail += 1
        local = f"{V.translit(last)}.{V.translit(first)[:1]}{self._public_mail}"
        return f"{local}@{rng.choice(V.PUBLIC_MAIL)}"

    # -- companies ----------------------------------------------------------------------------

    def company(self, idx: int, rng: random.Random, *, status: str | None = None) -> RealCompany:
        sole = rng.random() < SOLE_PROPRIETOR_SHARE
        city, post_code, area = rng.choice(V.CITIES)
        registered = date(rng.randint(2003, self.now.year - 1), rng.randint(1, 12), rng.randint(1, 28))
        region = rng.choice(ids.REGIONS)
        self._ogrn += 1
        status = status or _weighted(rng, STATUS_WEIGHTS)
        changed = date(rng.randint(max(registered.year, self.now.year - 3), self.now.year - 1),
                       rng.randint(1, 12), rng.randint(1, 28))
        bank = rng.choice(V.BANKS)
        if sole:
            inn, opf, kpp = self.next_personal_inn(), V.OPF_IP, ""
            ogrn = ids.ogrnip(self._ogrn, registered.year, region)
            core = long_name = ""  # named after the owner, below
            branches = 0
        else:
            inn, opf = self.next_legal_inn(), _weighted(rng, V.LEGAL_OPFS)
            kpp = ids.kpp_for(inn)
            ogrn = ids.ogrn(self._ogrn, registered.year, region)
            core = rng.choice(V.COMPANY_CORES) + _suffix(rng)
            long_name = f'{rng.choice(V.COMPANY_PREFIXES)} "{core}"'
            if rng.random() < 0.5:
                long_name += " " + rng.choice(V.REGION_WORDS)
            branches = 1 if rng.random() < BRANCH_SHARE else 0
        slug = V.translit(core) or "ip"
        domain = f"{slug}-{_base36(idx)}.ru"
        c = RealCompany(
            idx=idx, inn=inn, sole_proprietor=sole, opf=opf, core=core, long_name=long_name, kpp=kpp,
            ogrn=ogrn, registered=registered, status=status, status_changed=changed,
            branches=branches, city=city, post_code=post_code, area_code=area,
            street=rng.choice(V.STREETS), house=str(rng.randint(1, 120)), domain=domain,
            switchboard=self.landline(area), extra_phone=self.landline(area),
            emails=(f"info@{domain}", f"{rng.choice(('sales', 'zakaz', 'office', 'opt'))}@{domain}"),
            bank=bank, account=f"40702810{rng.randrange(10**12):012d}",
        )
        owner = self.person(c, rng)
        if sole:
            c.core = f"{owner.last} {owner.first[0]}.{owner.middle[0]}."
            c.long_name = f"Индивидуальный предприниматель {owner.full_name}"
            owner.position = "Индивидуальный предприниматель"
        return c

    def person(self, company: RealCompany, rng: random.Random) -> Person:
        """A new person of `company`: a surname no colleague has (so people who share the
        switchboard never share a last name), own e-mail and mobile."""
        used = {normalise(p.last) for p in company.persons}
        female = rng.random() < 0.45
        while True:
            male_form, female_form = rng.choice(V.SURNAMES)
            if normalise(male_form) not in used and normalise(female_form) not in used:
                break
        last = female_form if female else male_form
        first = rng.choice(V.FEMALE_FIRST if female else V.MALE_FIRST)
        middle = rng.choice(V.PATRONYMICS)[1 if female else 0]
        idx = len(company.persons)
        if rng.random() < 0.12:
            email = self.public_mail(rng, last, first)
        else:
            email = f"{V.translit(first)[:1]}.{V.translit(last)}@{company.domain}"
        roll = rng.random()
        direct = self.landline(company.area_code) if roll < 0.25 else None
        p = Person(idx=idx, last=last, first=first, middle=middle, female=female, email=email,
                   mobile=self.mobile(), direct=direct, ext=str(100 + idx * 7 + rng.randrange(7)),
                   position=rng.choice(V.POSITIONS) if idx else "Генеральный директор",
                   alt_email=f"{V.translit(last)}.{V.translit(first)}.{idx}@{company.domain}")
        company.persons.append(p)
        return p


def _weighted(rng: random.Random, choices):
    total = sum(w for _, w in choices)
    x = rng.random() * total
    for value, w in choices:
        x -= w
        if x < 0:
            return value
    return choices[-1][0]


def _suffix(rng: random.Random) -> str:
    s = rng.choice(V.COMPANY_SUFFIXES)
    if not s or s.startswith("-"):
        return s
    return "-" + s if rng.random() < 0.5 else " " + s


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def weighted(rng: random.Random, choices):
    """Pick a value from ((value, weight), ...)."""
    return _weighted(rng, choices)
