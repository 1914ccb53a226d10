"""Shop A (MySQL replica, `b2b_company` / `b2b_contact`, see sources/shop_a.sql).

Raw records: one dict per row, keys = column names plus `"_table"`; text columns are the exact
stored bytes (cp1251 from the old PHP site or UTF-8 from the 2021+ admin panel), DATETIME is
naive Moscow time. The extractor yields all companies first, then their contacts; the transformer
remembers each company's INN or reject reason (~53k small entries) to resolve contacts.

Rejects owned here (truth rules, first failing reason wins):
companies: bad_record, source_inactive (is_active = 0), no_inn (blank INN; an INN made only of
separators such as "-" is already inn_format); contacts: bad_record, source_deleted
(is_deleted = 1), company_missing, company_rejected (detail: the company's reason),
contact_empty. INN shape/checksum and EGRUL are the validators' job: the compacted INN goes on.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from etl import rejects
from etl.config import ShopSettings
from etl.dto import BankAccount, Company, Contact, Phone, Reject
from transformers.base import Output
from transformers.cleaning import clean_emails, clean_phones, split_full_name
from transformers.cleaning.fields import BadField, integer, local_time_to_utc, raw_text, text
from validators.inn import compact

COMPANY_TABLE = "b2b_company"
CONTACT_TABLE = "b2b_contact"
_COMPANY_COLUMNS = ("id, name, legal_form, inn, kpp, ogrn, phone, email, legal_address, bank_name, "
                    "bik, account, corr_account, is_active, created_at, updated_at")
_CONTACT_COLUMNS = ("c.id, c.company_id, c.full_name, c.position, c.phone, c.mobile, c.email, "
                    "c.is_deleted, c.created_at, c.updated_at")

# Full load: companies changed since `since` (current and previous year by default), then every
# contact of those companies, and the contacts whose company does not exist at all (they become
# company_missing rejects instead of vanishing; contacts of out-of-scope companies are not read).
# Run in this order; the extractor adds "_table".
SQL_FULL: list[tuple[str, str]] = [
    (COMPANY_TABLE,
     f"SELECT {_COMPANY_COLUMNS} FROM b2b_company WHERE updated_at >= %(since)s ORDER BY id"),
    (CONTACT_TABLE,
     f"SELECT {_CONTACT_COLUMNS} FROM b2b_contact c LEFT JOIN b2b_company co ON co.id = c.company_id "
     "WHERE co.updated_at >= %(since)s OR co.id IS NULL ORDER BY c.id"),
]

# Delta from the replica past the cursor (ts, id) = the last (updated_at, id) of b2b_company that
# was loaded. Companies: those changed past the cursor, plus those whose contacts changed since
# `ts` (a contact needs its company's INN). Contacts: those changed since `ts` and all contacts of
# changed companies (a company that became inactive takes its contacts with it). Re-reading rows
# changed exactly at `ts` is harmless: loads are idempotent. The cursor comparison is written out
# (not as a row value) so MySQL can use ix_company_updated (updated_at, id).
_COMPANY_PAST_CURSOR = "(co.updated_at > %(ts)s OR (co.updated_at = %(ts)s AND co.id > %(id)s))"
SQL_DELTA: list[tuple[str, str]] = [
    (COMPANY_TABLE,
     f"SELECT {_COMPANY_COLUMNS} FROM b2b_company WHERE id IN ("
     f"SELECT co.id FROM b2b_company co WHERE {_COMPANY_PAST_CURSOR} "
     "UNION SELECT c.company_id FROM b2b_contact c WHERE c.updated_at >= %(ts)s"
     ") ORDER BY updated_at, id"),
    (CONTACT_TABLE,
     f"SELECT {_CONTACT_COLUMNS} FROM b2b_contact c LEFT JOIN b2b_company co ON co.id = c.company_id "
     f"WHERE c.updated_at >= %(ts)s OR {_COMPANY_PAST_CURSOR} ORDER BY c.id"),
]


class ShopATransformer:
    """Rows of b2b_company and b2b_contact -> Company / Contact / Reject (see the module docstring).

    One instance per run: it remembers the companies it saw, so contacts must come after their
    companies in the same `transform` stream (or in an earlier call on the same instance).
    """

    def __init__(self, source: str = "shop-a") -> None:
        self.source = source
        # company id -> (compacted INN, "") when handed on, or ("", reject reason)
        self._companies: dict[int, tuple[str, str]] = {}

    def transform(self, records: Iterable[Mapping[str, Any]]) -> Iterator[Output]:
        for n, record in enumerate(records):
            if not isinstance(record, Mapping):
                yield Reject(self.source, f"#{n}", "record", rejects.BAD_RECORD,
                             f"record #{n} is a {type(record).__name__}, not a row", raw=record)
                continue
            table = record.get("_table")
            if table == COMPANY_TABLE:
                yield self.company(record)
            elif table == CONTACT_TABLE:
                yield self.contact(record)
            else:
                yield Reject(self.source, _id_of(record, n), "record", rejects.BAD_RECORD,
                             f"_table: expected {COMPANY_TABLE!r} or {CONTACT_TABLE!r}, got {table!r}",
                             raw=record)

    def company(self, row: Mapping[str, Any]) -> Company | Reject:
        """One b2b_company row (also remembered for its contacts)."""
        company_id: int | None = None
        try:
            company_id = integer(row, "id")
            is_active = integer(row, "is_active")
            inn_text = text(row, "inn")
            name = text(row, "name")
            kpp = compact(text(row, "kpp"))
            ogrn = compact(text(row, "ogrn"))
            legal_form = text(row, "legal_form")
            phones = clean_phones(raw_text(row.get("phone"), "phone"), "WORK")
            emails = clean_emails(raw_text(row.get("email"), "email"))
            address = text(row, "legal_address")
            bank_accounts = _bank_account(row)
            updated_at = local_time_to_utc(row.get("updated_at"), "updated_at")
        except BadField as e:
            return self._reject_company(company_id, row, rejects.BAD_RECORD, str(e))
        if not is_active:
            return self._reject_company(company_id, row, rejects.SOURCE_INACTIVE, "is_active = 0")
        if not inn_text:
            return self._reject_company(company_id, row, rejects.NO_INN, "inn is empty")
        inn = compact(inn_text)
        if not inn:
            return self._reject_company(company_id, row, rejects.INN_FORMAT,
                                        f"inn holds only separators: {inn_text!r}")
        self._companies[company_id] = (inn, "")
        return Company(
            source=self.source, source_id=str(company_id), inn=inn, name=name, kpp=kpp, ogrn=ogrn,
            legal_form=legal_form, is_sole_proprietor=len(inn) == 12 and inn.isdigit(),
            phones=phones, emails=emails, address=address, bank_accounts=bank_accounts,
            updated_at=updated_at,
        )

    def contact(self, row: Mapping[str, Any]) -> Contact | Reject:
        """One b2b_contact row, resolved against the companies seen so far."""
        contact_id: int | None = None
        try:
            contact_id = integer(row, "id")
            company_id = integer(row, "company_id")
            is_deleted = integer(row, "is_deleted")
            name = split_full_name(text(row, "full_name"))
            position = text(row, "position")
            phones = clean_phones(raw_text(row.get("phone"), "phone"), "WORK")
            mobiles = clean_phones(raw_text(row.get("mobile"), "mobile"), "MOBILE")
            emails = clean_emails(raw_text(row.get("email"), "email"))
            updated_at = local_time_to_utc(row.get("updated_at"), "updated_at")
        except BadField as e:
            return self._reject_contact(contact_id, row, rejects.BAD_RECORD, str(e))
        if is_deleted:
            return self._reject_contact(contact_id, row, rejects.SOURCE_DELETED, "is_deleted = 1")
        known = self._companies.get(company_id)
        if known is None:
            return self._reject_contact(contact_id, row, rejects.COMPANY_MISSING,
                                        f"company_id {company_id} is not among the extracted companies")
        inn, reason = known
        if reason:
            return self._reject_contact(contact_id, row, rejects.COMPANY_REJECTED, reason)
        if mobiles:
            phones = _merge_phones(phones, mobiles)
        if not (name.last or name.first or name.middle or phones or emails):
            return self._reject_contact(contact_id, row, rejects.CONTACT_EMPTY,
                                        "no name, no valid phone, no valid e-mail")
        return Contact(
            source=self.source, source_id=str(contact_id), company_source_id=str(company_id),
            company_inn=inn, last_name=name.last, first_name=name.first, middle_name=name.middle,
            position=position, phones=phones, emails=emails, updated_at=updated_at,
        )

    def _reject_company(self, company_id: int | None, row: Mapping[str, Any], reason: str,
                        detail: str) -> Reject:
        if company_id is not None:
            self._companies[company_id] = ("", reason)
        sid = str(company_id) if company_id is not None else _id_of(row)
        return Reject(self.source, sid, "company", reason, detail, raw=row)

    def _reject_contact(self, contact_id: int | None, row: Mapping[str, Any], reason: str,
                        detail: str) -> Reject:
        sid = str(contact_id) if contact_id is not None else _id_of(row)
        return Reject(self.source, sid, "contact", reason, detail, raw=row)


def create(shop: ShopSettings) -> ShopATransformer:
    return ShopATransformer(shop.name)


def _bank_account(row: Mapping[str, Any]) -> tuple[BankAccount, ...]:
    bik = compact(text(row, "bik"))
    account = compact(text(row, "account"))
    if not (bik or account):
        return ()
    return (BankAccount(bik=bik, account=account, corr_account=compact(text(row, "corr_account")),
                        bank_name=text(row, "bank_name")),)


def _merge_phones(first: tuple[Phone, ...], second: tuple[Phone, ...]) -> tuple[Phone, ...]:
    """Both columns' phones; a number already in the first keeps its first kind."""
    seen = {(p.e164, p.ext) for p in first}
    return first + tuple(p for p in second if (p.e164, p.ext) not in seen)


def _id_of(row: Mapping[str, Any], n: int | None = None) -> str:
    value = row.get("id")
    if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value).strip():
        return str(value)[:40]
    return f"#{n}" if n is not None else "?"
