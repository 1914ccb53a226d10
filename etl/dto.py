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


# --- (de)serialisation, for parked (pending) records and debugging output --------------------------

def to_json_dict(obj: Company | Contact) -> dict[str, Any]:
    """A JSON-safe dict of a Company/Contact, tagged with its type; inverse of `from_json_dict`."""
    out: dict[str, Any] = {"type": type(obj).__name__}
    for name in obj.__slots__:  # type: ignore[attr-defined]
        value = getattr(obj, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = [
                {"e164": v.e164, "ext": v.ext, "kind": v.kind} if isinstance(v, Phone)
                else {"bik": v.bik, "account": v.account, "corr_account": v.corr_account,
                      "bank_name": v.bank_name} if isinstance(v, BankAccount)
                else v
                for v in value
            ]
        out[name] = value
    return out


def from_json_dict(data: dict[str, Any]) -> Company | Contact:
    data = dict(data)
    kind = data.pop("type")
    cls = {"Company": Company, "Contact": Contact}[kind]
    if data.get("updated_at"):
        data["updated_at"] = datetime.fromisoformat(data["updated_at"])
    data["phones"] = tuple(Phone(**p) for p in data.get("phones") or ())
    data["emails"] = tuple(data.get("emails") or ())
    if cls is Company:
        data["bank_accounts"] = tuple(BankAccount(**b) for b in data.get("bank_accounts") or ())
    return cls(**data)
