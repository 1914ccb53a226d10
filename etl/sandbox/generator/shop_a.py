"""Shop A's rows (b2b_company, b2b_contact) as the shop holds them, written badly on purpose.

Text is returned as `str`; `ShopARow.encoding` says which bytes the shop stored: Windows-1251 for
rows the old PHP site created (before 2021), UTF-8 for rows created by the 2021+ admin panel.
Times are naive shop-local (Europe/Moscow, UTC+3 all year since 2014).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from etl.sandbox.generator import messy
from etl.sandbox.generator.records import SHOP_A, Appearance, CompanyRecord, ContactRecord
from etl.sandbox.generator.world import RealCompany

MOSCOW = timezone(timedelta(hours=3))
ADMIN_PANEL_SINCE = datetime(2021, 1, 1)
HISTORY_START = datetime(2012, 1, 1)
COMPANY_TEXT = ("name", "legal_form", "inn", "kpp", "ogrn", "phone", "email", "legal_address",
                "bank_name", "bik", "account", "corr_account")
CONTACT_TEXT = ("full_name", "position", "phone", "mobile", "email")
COMPANY_COLUMNS = ("id",) + COMPANY_TEXT + ("is_active", "created_at", "updated_at")
CONTACT_COLUMNS = ("id", "company_id") + CONTACT_TEXT + ("is_deleted", "created_at", "updated_at")

# Per-record odds of each kind of trouble.
BLOCKED = 0.04
NO_INN, INN_FORMAT, INN_CHECKSUM = 0.02, 0.02, 0.02
CONTACT_DELETED = 0.05
JUNK_CONTACT = 0.015


@dataclass(slots=True)
class ShopARow:
    table: str              # "b2b_company" | "b2b_contact"
    values: dict
    encoding: str           # "cp1251" | "utf-8"


def encoding_for(created_at: datetime) -> str:
    return "cp1251" if created_at < ADMIN_PANEL_SINCE else "utf-8"


def to_utc(local: datetime) -> datetime:
    return local.replace(tzinfo=MOSCOW).astimezone(timezone.utc)


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    span = int((end - start).total_seconds())
    return start + timedelta(seconds=rng.randrange(max(span, 1)))


class ShopA:
    """Turns real companies into shop A rows; numbers ids and keeps the clock (scope)."""

    def __init__(self, now: date, since: date) -> None:
        self.since = datetime(since.year, since.month, since.day)
        # the shop's clock when the data was taken: `now` 00:00 UTC, in Moscow time
        self.now = datetime(now.year, now.month, now.day, 3, 0, 0)
        self._company_id = 0
        self._contact_id = 0
        self._last_updated: datetime | None = None

    def updated_at(self, rng: random.Random, in_scope: bool) -> datetime:
        roll = rng.random()
        if in_scope:
            if roll < 0.005:
                ts = self.since                          # the first second in scope
            elif roll < 0.035 and self._last_updated is not None:
                ts = self._last_updated                  # changed in the same second as another row
            else:
                ts = _between(rng, self.since, self.now - timedelta(seconds=1))
            self._last_updated = ts
            return ts
        if roll < 0.03:
            return self.since - timedelta(seconds=1)     # the last second out of scope
        return _between(rng, datetime(2014, 1, 1), self.since - timedelta(seconds=1))

    def company(self, c: RealCompany, rng: random.Random, *, in_scope: bool,
                appearances: list[Appearance]) -> tuple[list[ShopARow], CompanyRecord, list[ContactRecord]]:
        self._company_id += 1 + (rng.random() < 0.05) * rng.randint(1, 3)  # ids have gaps
        cid = self._company_id
        updated = self.updated_at(rng, in_scope)
        created = _between(rng, HISTORY_START, updated) if updated > HISTORY_START else updated
        enc = encoding_for(created)

        inn_text, active = self._inn(c, rng), rng.random() >= BLOCKED
        phones = [(c.switchboard, "")] + ([(c.extra_phone, "")] if rng.random() < 0.3 else [])
        emails = list(c.emails[: 1 + (rng.random() < 0.3)]) if rng.random() < 0.85 else []
        bank = rng.random() < 0.8
        values = {
            "id": cid,
            "name": messy.spaced(self._name(c, rng), rng),
            "legal_form": self._legal_form(c, rng, enc),
            "inn": inn_text,
            "kpp": messy.kpp_text(c.kpp, rng),
            "ogrn": messy.ogrn_text(c.ogrn, rng),
            "phone": messy.phones_cell(phones, rng, junk=0.08),
            "email": messy.emails_cell(emails, rng, junk=0.06),
            "legal_address": messy.spaced(c.address, rng) if rng.random() < 0.9 else None,
            "bank_name": c.bank[0] if bank else None,
            "bik": c.bank[1] if bank else None,
            "account": c.account if bank else None,
            "corr_account": c.bank[2] if bank else None,
            "is_active": int(active),
            "created_at": created,
            "updated_at": updated,
        }
        rec = CompanyRecord(SHOP_A, str(cid), inn_text, to_utc(updated), active=active,
                            phones=frozenset(p for p, _ in phones), emails=frozenset(emails))
        rows = [ShopARow("b2b_company", values, enc)]
        contacts: list[ContactRecord] = []
        for a in appearances:
            row, crec = self._contact(c, a, rec, created, rng)
            rows.append(row)
            contacts.append(crec)
        if rng.random() < JUNK_CONTACT:
            row, crec = self._junk_contact(rec, created, rng)
            rows.append(row)
            contacts.append(crec)
        return rows, rec, contacts

    # -- pieces -------------------------------------------------------------------------------

    @staticmethod
    def _inn(c: RealCompany, rng: random.Random) -> str | None:
        roll = rng.random()
        if roll < NO_INN:
            return messy.no_inn_value(rng)
        if roll < NO_INN + INN_FORMAT:
            return messy.inn_bad_format_text(c.inn, rng)
        if roll < NO_INN + INN_FORMAT + INN_CHECKSUM:
            return messy.inn_bad_checksum_text(c.inn, rng)
        return messy.inn_valid_text(c.inn, rng)

    @staticmethod
    def _name(c: RealCompany, rng: random.Random) -> str:
        short = c.opf[2]
        if c.sole_proprietor:
            o = c.owner
            return rng.choice((f"ИП {c.core}", o.full_name, f"ИП {o.full_name}", c.core))
        return rng.choice((f'{short} "{c.core}"', c.core, f'"{c.core}"', c.long_name,
                           f"{short} {c.core}", c.core.upper(), f"{c.core} ({short})"))

    @staticmethod
    def _legal_form(c: RealCompany, rng: random.Random, enc: str) -> str | None:
        code, full, short = c.opf
        forms = [short, short, short, short.lower(), "", None]
        if len(full.encode(enc)) <= 64:      # VARCHAR(64) holds bytes
            forms.append(full)
        return rng.choice(forms)

    def _contact(self, c: RealCompany, a: Appearance, company: CompanyRecord, company_created: datetime,
                 rng: random.Random) -> tuple[ShopARow, ContactRecord]:
        self._contact_id += 1
        p = a.person
        created = _between(rng, company_created, self.now)
        updated = _between(rng, created, self.now)
        enc = encoding_for(created)
        text, parts = messy.full_name_text(p.last, p.first, p.middle, a.form, rng)
        work = ([(p.direct, "")] if p.direct else [(c.switchboard, p.ext)]) if a.work else []
        mobile = [(p.mobile, "")] if a.mobile else []
        emails = [p.email] if a.email else []
        values = {
            "id": self._contact_id, "company_id": company_id(company),
            "full_name": text,
            "position": messy.spaced(p.position, rng) if rng.random() < 0.7 else None,
            "phone": messy.phones_cell(work, rng, junk=0.05),
            "mobile": messy.phones_cell(mobile, rng, junk=0.03),
            "email": messy.emails_cell(emails, rng, junk=0.05),
            "is_deleted": int(a.deleted), "created_at": created, "updated_at": updated,
        }
        rec = ContactRecord(SHOP_A, str(self._contact_id), company, p.key, parts, to_utc(updated),
                            deleted=a.deleted, phones=frozenset(x for x, _ in work + mobile),
                            emails=frozenset(emails))
        return ShopARow("b2b_contact", values, enc), rec

    def _junk_contact(self, company: CompanyRecord, company_created: datetime,
                      rng: random.Random) -> tuple[ShopARow, ContactRecord]:
        """A row with nothing to identify a person by (rejected `contact_empty`)."""
        self._contact_id += 1
        created = _between(rng, company_created, self.now)
        values = {
            "id": self._contact_id, "company_id": company_id(company),
            "full_name": rng.choice((None, "", "  ")),
            "position": rng.choice((None, "Менеджер", "")),
            "phone": rng.choice((None, "нет", "-")), "mobile": None,
            "email": rng.choice((None, "-", "нет")),
            "is_deleted": 0, "created_at": created, "updated_at": created,
        }
        rec = ContactRecord(SHOP_A, str(self._contact_id), company, None, ("", "", ""), to_utc(created))
        return ShopARow("b2b_contact", values, encoding_for(created)), rec


def company_id(rec: CompanyRecord) -> int:
    return int(rec.source_id)
