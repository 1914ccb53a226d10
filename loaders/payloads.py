"""What we write to Bitrix24 for a company (card, requisite, bank details, address) and a contact.

Pure functions from DTOs to Bitrix24 field maps (reference/bitrix24.md §6), plus the content hash
that lets a rerun send nothing when nothing changed, and the enrichment diff that fills blanks and
adds new phones/e-mails to an existing entity without overwriting anything.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from etl.dto import Company, Contact
from validators.inn import check_kpp, check_ogrn

try:
    import orjson
except ImportError:  # the standard encoder gives the same bytes, ten times slower
    orjson = None  # type: ignore[assignment]

ORIGINATOR_ID = "crm-etl"
ENTITY_COMPANY = 4
ENTITY_REQUISITE = 8
ADDRESS_LEGAL = 6
PRESET_XML_COMPANY = "#CRM_REQUISITE_PRESET_DEF_RU_COMPANY#"
PRESET_XML_INDIVIDUAL = "#CRM_REQUISITE_PRESET_DEF_RU_INDIVIDUAL#"


# What no CRM field may hold, whatever the source (the shops' text is cleaned already, the
# registry's is not): control and format characters, bidi overrides and isolates (they make a
# name display reversed), lone surrogates. Whitespace characters become single spaces.
_UNSAFE = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069"
                     "\ufeff\ufffe\uffff\ud800-\udfff]+")
# A batch command's parameters are decoded and THEN searched for `$result[...]` (and $next, $total,
# $time, $error) references, which are replaced by another command's result (reference §4.2):
# text that holds one would be rewritten by the portal. Its `$` becomes the full-width `＄`.
_BATCH_REFERENCE = re.compile(r"\$(?=(?:result|next|total|time|error)\[)", re.IGNORECASE)


def crm_text(value: str) -> str:
    """Text as it may go into a CRM field: harmless whatever it holds (see _UNSAFE and
    _BATCH_REFERENCE). SQL and HTML are text to the portal and stay as they are (it escapes
    on output; escaping here would show `&lt;` to the managers)."""
    if value.isprintable() and "$" not in value:
        return value
    text = " ".join(_UNSAFE.sub("", value).split())
    return _BATCH_REFERENCE.sub("\uff04", text)


def _valid(check: Any, value: str) -> str:
    """A KPP/OGRN that passes its offline check, else "" (the registry's values win anyway; a
    source's garbage is never sent as a requisite)."""
    return (check(value)[0] or "") if value else ""


def company_identity(inn: str) -> str:
    return f"company:{inn}"


def _ext_comment(phones) -> str:
    exts = [f"{p.e164} доб. {p.ext}" for p in phones if p.ext]
    return ("Добавочные: " + "; ".join(exts)) if exts else ""


def company_fields(c: Company, identity: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "TITLE": crm_text(c.name or c.full_name or c.inn),
        "COMPANY_TYPE": "CUSTOMER",
        "OPENED": "Y",
        "ORIGINATOR_ID": ORIGINATOR_ID,
        "ORIGIN_ID": identity,
    }
    if c.phones:
        fields["PHONE"] = [{"VALUE": p.e164, "VALUE_TYPE": p.kind or "WORK"} for p in c.phones]
    if c.emails:
        fields["EMAIL"] = [{"VALUE": e, "VALUE_TYPE": "WORK"} for e in c.emails]
    if c.address:
        fields["ADDRESS"] = crm_text(c.address)
    comment = _ext_comment(c.phones)
    if comment:
        fields["COMMENTS"] = comment
    return fields


def requisite_fields(c: Company, company_ref: Any, preset_id: Any, director: str = "") -> dict[str, Any]:
    f: dict[str, Any] = {
        "ENTITY_TYPE_ID": ENTITY_COMPANY,
        "ENTITY_ID": company_ref,
        "PRESET_ID": preset_id,
        "NAME": crm_text(c.name or c.inn)[:255],
        "ORIGINATOR_ID": ORIGINATOR_ID,
        "RQ_INN": c.inn,
    }
    if c.is_sole_proprietor:
        if _valid(check_ogrn, c.ogrn):
            f["RQ_OGRNIP"] = c.ogrn
        if c.full_name:
            f["RQ_NAME"] = crm_text(c.full_name)
    else:
        for key, value in (("RQ_KPP", _valid(check_kpp, c.kpp)), ("RQ_OGRN", _valid(check_ogrn, c.ogrn)),
                           ("RQ_COMPANY_NAME", crm_text(c.name)), ("RQ_COMPANY_FULL_NAME", crm_text(c.full_name)),
                           ("RQ_DIRECTOR", crm_text(director))):
            if value:
                f[key] = value
    return f


def bankdetail_fields(bank, requisite_ref: Any) -> dict[str, Any]:
    f = {"ENTITY_ID": requisite_ref, "COUNTRY_ID": 1, "NAME": crm_text(bank.bank_name or "Расчётный счёт")[:255],
         "RQ_BIK": bank.bik, "RQ_ACC_NUM": bank.account, "RQ_ACC_CURRENCY": "RUB"}
    if bank.bank_name:
        f["RQ_BANK_NAME"] = crm_text(bank.bank_name)
    if bank.corr_account:
        f["RQ_COR_ACC_NUM"] = bank.corr_account
    return f


def address_fields(address: str, requisite_ref: Any) -> dict[str, Any]:
    return {"TYPE_ID": ADDRESS_LEGAL, "ENTITY_TYPE_ID": ENTITY_REQUISITE, "ENTITY_ID": requisite_ref,
            "ADDRESS_1": crm_text(address)[:1000]}


def contact_fields(c: Contact, identity: str, company_id: Any) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if c.first_name:
        f["NAME"] = crm_text(c.first_name)
    if c.last_name:
        f["LAST_NAME"] = crm_text(c.last_name)
    if c.middle_name:
        f["SECOND_NAME"] = crm_text(c.middle_name)
    f["TYPE_ID"] = "CLIENT"
    f["OPENED"] = "Y"
    f["ORIGINATOR_ID"] = ORIGINATOR_ID
    if identity:
        f["ORIGIN_ID"] = identity
    if not (c.first_name or c.last_name):
        f["NAME"] = c.emails[0] if c.emails else (c.phones[0].e164 if c.phones else "—")
    if c.position:
        f["POST"] = crm_text(c.position)
    if company_id is not None:
        f["COMPANY_ID"] = company_id
    if c.phones:
        f["PHONE"] = [{"VALUE": p.e164, "VALUE_TYPE": p.kind or "WORK"} for p in c.phones]
    if c.emails:
        f["EMAIL"] = [{"VALUE": e, "VALUE_TYPE": "WORK"} for e in c.emails]
    if c.phones:
        comment = _ext_comment(c.phones)
        if comment:
            f["COMMENTS"] = comment
    return f


# The hash is SHA-1 of the canonical JSON of the payload, as UTF-8: what
# `json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":"))` writes.
# orjson writes the same bytes for what payloads hold (text, integers, booleans, None, lists, maps
# with text keys; datetimes and dataclasses are handed to `str` as the standard encoder does), ten
# times faster, which counts at one hash per entity of a full load. What orjson refuses (a key that
# is not text, an integer beyond 64 bits, a lone surrogate) goes to the standard encoder.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":"))
_ORJSON_OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
                   if orjson is not None else 0)


def canonical_json(parts: tuple) -> bytes:
    """The bytes `payload_hash` hashes."""
    if orjson is not None:
        try:
            return orjson.dumps(parts, default=str, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            pass
    return _CANONICAL.encode(parts).encode("utf-8")


def payload_hash(*parts: Any) -> str:
    """Stable hash of what we would write (order of dict keys irrelevant)."""
    return hashlib.sha1(canonical_json(parts)).hexdigest()


# --- enrichment of an entity that already exists in the CRM -------------------------------------

_DIGITS = re.compile(r"\D+")


def _phone_key(value: str) -> str:
    d = _DIGITS.sub("", value or "")
    return d[-10:] if len(d) >= 10 else d


def enrichment(current: dict[str, Any], desired: dict[str, Any],
               fill: tuple[str, ...]) -> dict[str, Any]:
    """The update that fills blank fields of `current` from `desired` and appends phones and
    e-mails that `current` lacks. Never overwrites a non-blank value. Empty dict = nothing to do."""
    update: dict[str, Any] = {}
    for key in fill:
        want, have = desired.get(key), current.get(key)
        blank = have is None or have == [] or (isinstance(have, str) and not have.strip())
        if want and blank:
            update[key] = want
    have_phones = {_phone_key(p.get("VALUE", "")) for p in current.get("PHONE") or []}
    new_phones = [p for p in desired.get("PHONE") or [] if _phone_key(p["VALUE"]) not in have_phones]
    if new_phones:
        update["PHONE"] = new_phones
    have_emails = {(e.get("VALUE") or "").strip().lower() for e in current.get("EMAIL") or []}
    new_emails = [e for e in desired.get("EMAIL") or [] if e["VALUE"].lower() not in have_emails]
    if new_emails:
        update["EMAIL"] = new_emails
    return update


COMPANY_FILL = ("TITLE", "ADDRESS", "COMMENTS", "COMPANY_TYPE")
CONTACT_FILL = ("NAME", "LAST_NAME", "SECOND_NAME", "POST", "COMPANY_ID")
REQUISITE_FILL = ("RQ_KPP", "RQ_OGRN", "RQ_OGRNIP", "RQ_COMPANY_NAME", "RQ_COMPANY_FULL_NAME",
                  "RQ_DIRECTOR", "RQ_NAME")
