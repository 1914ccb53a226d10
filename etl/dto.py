"""The common records every shop transformer hands on.

Plain frozen, slotted dataclasses: immutable, cheap to create, hashable. Collections are tuples.
Timestamps are timezone-aware UTC datetimes (or None when the source has none).
"""
from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")


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


# --- fast construction from field values ---------------------------------------------------------
# A frozen dataclass's __init__ sets each field through object.__setattr__, and dataclasses.replace
# walks the fields in Python first: together half of what rebuilding or enriching a record costs,
# at once per record of a load. A generated function that sets the slots directly makes the same
# object (the DTOs have no __post_init__) two to three times faster.

def _builder(cls: type) -> Callable[..., Any]:
    """A module-level function `_build_<Class>(*field values)` (pickle finds it by name)."""
    names = [f.name for f in dataclasses.fields(cls)]
    if any(not f.init for f in dataclasses.fields(cls)) or "__post_init__" in vars(cls):
        raise TypeError(f"{cls.__name__} is more than its fields: build it with its constructor")
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls,
                             **{f"_set_{n}": vars(cls)[n].__set__ for n in names}}  # slot descriptors
    lines = [f"def _build_{cls.__name__}({', '.join(names)}):", "    o = _new(_cls)",
             *(f"    _set_{n}(o, {n})" for n in names), "    return o"]
    exec("\n".join(lines), scope)  # noqa: S102 - generated from the dataclass's own field names
    build = scope[f"_build_{cls.__name__}"]
    build.__module__ = __name__
    globals()[build.__name__] = build
    return build


FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in (Phone, BankAccount, Company, Contact, Reject)}
BUILD: dict[type, Callable[..., Any]] = {cls: _builder(cls) for cls in FIELDS}
VALUES: dict[type, Callable[[Any], tuple]] = {
    cls: (operator.attrgetter(*names) if len(names) > 1 else (lambda o, n=names[0]: (getattr(o, n),)))
    for cls, names in FIELDS.items()}
_POSITION = {cls: {n: i for i, n in enumerate(names)} for cls, names in FIELDS.items()}


def evolve(obj: T, **changes: Any) -> T:
    """`dataclasses.replace` for the DTOs (same result, about twice as fast)."""
    cls = type(obj)
    values = list(VALUES[cls](obj))
    position = _POSITION[cls]
    for name, value in changes.items():
        if name not in position:
            raise TypeError(f"{cls.__name__} has no field {name!r}")
        values[position[name]] = value
    return BUILD[cls](*values)
