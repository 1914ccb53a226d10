"""The common records every shop transformer hands on.

Plain frozen, slotted dataclasses: immutable, cheap to create, hashable. Collections are tuples.
Timestamps are timezone-aware UTC datetimes (or None when the source has none).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone in E.164 (`+74951234567`) with its extension kept apart (E.164 has no room for it)."""

    e164: str
    ext: str = ""
    kind: str = "WORK"  # Bitrix24 VALUE_TYPE: WORK, MOBILE, FAX, HOME, OTHER


@dataclass(frozen=True, slots=True)
class BankAccount:
    bik: str
    account: str
    corr_account: str = ""
    bank_name: str = ""


@dataclass(frozen=True, slots=True)
class Company:
    source: str
    source_id: str
    inn: str
    name: str
    kpp: str = ""
    ogrn: str = ""
    full_name: str = ""
    legal_form: str = ""
    is_sole_proprietor: bool = False
    phones: tuple[Phone, ...] = ()
    emails: tuple[str, ...] = ()
    address: str = ""
    bank_accounts: tuple[BankAccount, ...] = ()
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    source: str
    source_id: str
    company_source_id: str
    company_inn: str = ""
    first_name: str = ""
    last_name: str = ""
    middle_name: str = ""
    position: str = ""
    phones: tuple[Phone, ...] = ()
    emails: tuple[str, ...] = ()
    updated_at: datetime | None = None

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.last_name, self.first_name, self.middle_name) if p)


@dataclass(frozen=True, slots=True)
class Reject:
    """A source record that will not reach the CRM, and why (a code from etl.rejects plus a human detail)."""

    source: str
    source_id: str
    kind: str  # "company" | "contact" | "record"
    reason: str
    detail: str = ""
    raw: Any = field(default=None, compare=False)
