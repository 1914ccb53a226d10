"""PHONE / EMAIL / WEB / IM / LINK: the portal's merge rules (reference §6.2).

Written as `[{"VALUE": ..., "VALUE_TYPE": ...}, ...]`:
* no `ID`, empty VALUE -> ignored; no `ID` -> appended (so re-sending a phone duplicates it);
* `ID` with `DELETE=Y` or an empty/missing VALUE -> that value is deleted;
* `ID` with a VALUE -> that value is overwritten. Values not mentioned stay.
An invalid e-mail fails the whole call with ERROR_CORE.

Each stored value carries a normalised form for `crm.duplicate.findbycomm`: phones as E.164
digits (formatting and extension ignored), e-mails lower-cased.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import phonenumbers

from etl.sandbox.bitrix24.errors import core_error
from etl.sandbox.bitrix24.params import array_values, intval, php_string
from etl.sandbox.bitrix24.schema import MULTIFIELD_DEFAULT_TYPE
from etl.sandbox.bitrix24.store import Store

_EMAIL = re.compile(r"[=_.0-9a-z+~'!$&*^`|#%/?{}-]+@(?:[-0-9a-z_\u0400-\u04ff]+\.)+[0-9a-z\u0400-\u04ff-]{2,20}\Z",
                    re.IGNORECASE)
_EXTENSION = re.compile(r"\s*(?:ext\.?|доб\.?|x|#|,|;)\s*\d+\s*\Z", re.IGNORECASE)
INVALID_EMAIL = "The E-mail field contains an invalid address"


def is_valid_email(value: str) -> bool:
    return _EMAIL.match(value.strip()) is not None


@lru_cache(maxsize=65536)
def normalize_phone(value: str) -> str:
    """E.164 without `+` when the number parses (default region RU), else its digits."""
    main = _EXTENSION.sub("", value.strip())
    try:
        parsed = phonenumbers.parse(main, "RU")
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
    except phonenumbers.NumberParseException:
        pass
    return re.sub(r"\D", "", main)


def normalize(type_id: str, value: str) -> str:
    if type_id == "PHONE":
        return normalize_phone(value)
    return value.strip().casefold()


@dataclass
class MultifieldChanges:
    adds: list[tuple[str, str, str]] = field(default_factory=list)             # type, value type, value
    updates: list[tuple[int, str, str | None, str]] = field(default_factory=list)  # id, type, value type, value
    deletes: list[tuple[int, str]] = field(default_factory=list)               # id, type

    def __bool__(self) -> bool:
        return bool(self.adds or self.updates or self.deletes)


def plan(written: dict[str, Any], allow_ids: bool) -> MultifieldChanges:
    """Read the written multifields (TYPE_ID -> array of entries); raise ERROR_CORE on a bad e-mail."""
    changes = MultifieldChanges()
    for type_id, entries in written.items():
        if not isinstance(entries, dict):
            continue
        for entry in array_values(entries):
            if not isinstance(entry, dict):
                continue
            value = php_string(entry.get("VALUE")).strip() if not isinstance(entry.get("VALUE"), dict) else ""
            value_type = php_string(entry.get("VALUE_TYPE")).strip().upper() or MULTIFIELD_DEFAULT_TYPE[type_id]
            mf_id = intval(entry.get("ID")) if entry.get("ID") not in (None, "") else 0
            if mf_id > 0:
                if not allow_ids:
                    continue
                if php_string(entry.get("DELETE")).upper() == "Y" or not value:
                    changes.deletes.append((mf_id, type_id))
                    continue
                if type_id == "EMAIL" and not is_valid_email(value):
                    raise core_error(INVALID_EMAIL)
                given_type = php_string(entry.get("VALUE_TYPE")).strip().upper() or None
                changes.updates.append((mf_id, type_id, given_type, value))
                continue
            if not value:
                continue
            if type_id == "EMAIL" and not is_valid_email(value):
                raise core_error(INVALID_EMAIL)
            changes.adds.append((type_id, value_type, value))
    return changes


def apply(store: Store, entity: str, entity_id: int, changes: MultifieldChanges) -> None:
    for mf_id, type_id in changes.deletes:
        if store.multifield(mf_id) == (entity, entity_id, type_id):
            store.delete_multifield(mf_id)
    for mf_id, type_id, value_type, value in changes.updates:
        if store.multifield(mf_id) == (entity, entity_id, type_id):
            if value_type is None:
                value_type = store.scalar("SELECT value_type FROM multifield WHERE id = ?", (mf_id,))
            store.update_multifield(mf_id, value_type, value, normalize(type_id, value))
    for type_id, value_type, value in changes.adds:
        store.add_multifield(entity, entity_id, type_id, value_type, value, normalize(type_id, value))
