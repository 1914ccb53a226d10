"""Shop B (SAP CRM): business partners from the JSON export, and Kafka change events.

Raw records: one dict per partner exactly as parsed from the export (see sources/README.md),
contacts nested under CONTACTS. Each partner yields its Company (or a Reject) and then one
Contact or Reject per nested contact.

Rejects owned here (truth rules, first failing reason wins):
companies: bad_record (not an object, PARTNER missing, TAXNUMS/ADDRESS/COMM/BANKS/CONTACTS of the
wrong shape, a text field that is not text or absurdly long, CHANGED_AT unreadable),
source_deleted (XDELE = "X"), source_inactive (STATUS != E0002), no_inn (no RU1 or an empty one);
contacts: bad_record, source_deleted, company_rejected (detail: the company's reason). An empty
contact goes on: the pipeline rejects it `contact_empty` once its company is known to load. INN shape/checksum and EGRUL are the validators' job: the compacted INN goes on.

Mapping choices: the name is NAME_ORG1 and NAME_ORG2 joined by a space (SAP splits long names over
the two fields); the address is the non-empty ADDRESS parts joined by ", " in postal order
(country RU left out); a contact's updated_at is its partner's CHANGED_AT (contacts have none).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from etl import rejects
from etl.config import ShopSettings
from etl.dto import BankAccount, Company, Contact, Phone, Reject
from transformers.base import Output
from transformers.cleaning import clean_emails, clean_phones, tidy_name_part
from transformers.cleaning.fields import MAX_TEXT, BadField, json_type, raw_text, text, text_value
from validators.inn import compact

ACTIVE_STATUS = "E0002"
DELETED = "X"
EVENT_TYPES_SNAPSHOT = ("BP_CREATED", "BP_CHANGED")
EVENT_DELETED = "BP_DELETED"
# Postal order of SAP's address fields; any other key follows in the order it came.
_ADDRESS_ORDER = ("POST_CODE1", "COUNTRY", "REGION", "CITY1", "CITY2", "STREET", "STR_SUPPL1",
                  "STR_SUPPL2", "HOUSE_NUM1", "HOUSE_NUM2", "BUILDING", "FLOOR", "ROOMNUMBER")
# Lengths of the tax numbers by TAXTYPE (INN: legal entity / sole proprietor; KPP; OGRN / OGRNIP).
_TAXNUM_DIGITS = {"RU1": (10, 12), "RU2": (9,), "RU3": (13, 15)}
_PHONE_KINDS = (("PHONE", "WORK"), ("MOBILE", "MOBILE"), ("FAX", "FAX"))


class _TextMemo:
    """`fn(text_value(value))` for raw text that repeats from record to record (name parts, job
    titles, cities, legal forms: a few thousand distinct values in a million records), computed
    once per distinct value. It forgets everything when full, so memory stays flat whatever the
    input. Values that are not plain text of a sane length take the uncached way (and its errors)."""

    __slots__ = ("_fn", "_seen", "_size")

    def __init__(self, fn: Callable[[str], str] | None = None, size: int = 20_000) -> None:
        self._fn = fn
        self._seen: dict[str, str] = {}
        self._size = size

    def __call__(self, value: Any, key: str, where: str = "") -> str:
        if type(value) is str:
            out = self._seen.get(value)
            if out is not None:
                return out
            if len(value) <= MAX_TEXT:
                out = text_value(value, key, where)
                if self._fn is not None:
                    out = self._fn(out)
                if len(self._seen) >= self._size:
                    self._seen.clear()
                self._seen[value] = out
                return out
        out = text_value(value, key, where)
        return self._fn(out) if self._fn is not None else out


_repeating_text = _TextMemo()
_name_part = _TextMemo(tidy_name_part)


class ShopBTransformer:
    """Partners (export items or event snapshots) -> Company / Contact / Reject."""

    def __init__(self, source: str = "shop-b") -> None:
        self.source = source

    def transform(self, records: Iterable[Mapping[str, Any]]) -> Iterator[Output]:
        """Export items; a Kafka event value (an object with `event_type` and no `PARTNER`) in the
        stream is handled as by `transform_event`."""
        for n, record in enumerate(records):
            if type(record) is dict and "event_type" in record and "PARTNER" not in record:
                yield from self.transform_event(record)
            else:
                yield from self.partner(record, n)

    def transform_event(self, event: Mapping[str, Any]) -> Iterator[Output]:
        """One Kafka event value (already parsed JSON). BP_CREATED / BP_CHANGED carry a full
        snapshot; BP_DELETED yields a `source_deleted` Reject for the company (the loader decides
        what a deletion means in the CRM); anything else is a `bad_record`."""
        if not isinstance(event, Mapping):
            yield Reject(self.source, "?", "record", rejects.BAD_RECORD,
                         f"event is {json_type(event)}, not an object", raw=event)
            return
        event_type = event.get("event_type")
        partner = event.get("partner")
        event_id = str(event.get("event_id") or "")[:64]
        ref = f"event {event_id}" if event_id else "event ?"
        if event_type in EVENT_TYPES_SNAPSHOT:
            if not isinstance(partner, Mapping):
                yield Reject(self.source, ref, "record", rejects.BAD_RECORD,
                             f"partner: expected an object in a {event_type} event", raw=event)
                return
            yield from self.partner(partner)
        elif event_type == EVENT_DELETED:
            pid = partner.get("PARTNER") if isinstance(partner, Mapping) else None
            partner_id = _partner_id(pid)
            if not partner_id:
                yield Reject(self.source, ref, "record", rejects.BAD_RECORD,
                             "partner.PARTNER: missing in a BP_DELETED event", raw=event)
                return
            yield Reject(self.source, partner_id, "company", rejects.SOURCE_DELETED,
                         f"BP_DELETED {ref}", raw=event)
        else:
            pid = partner.get("PARTNER") if isinstance(partner, Mapping) else None
            yield Reject(self.source, _partner_id(pid) or ref, "record",
                         rejects.BAD_RECORD, f"event_type: unknown {str(event_type)[:40]!r}", raw=event)

    def partner(self, record: Any, n: int | None = None) -> Iterator[Output]:
        """One business partner: its Company (or Reject), then its contacts."""
        where = f"#{n}" if n is not None else "?"
        if type(record) is not dict and not isinstance(record, Mapping):
            yield Reject(self.source, where, "record", rejects.BAD_RECORD,
                         f"record {where} is {json_type(record)}, not an object", raw=record)
            return
        partner_id = _partner_id(record.get("PARTNER"))
        if not partner_id:
            yield Reject(self.source, where, "company", rejects.BAD_RECORD,
                         f"PARTNER: missing or not a partner number ({_short(record.get('PARTNER'))})",
                         raw=record)
            return
        company = self._company(record, partner_id)
        yield company
        if isinstance(company, Reject):
            company_inn, reason = "", company.reason
        else:
            company_inn, reason = company.inn, ""
        contacts = record.get("CONTACTS")
        if not isinstance(contacts, list):  # None, or a bad shape the company's bad_record names
            return
        updated_at = company.updated_at if isinstance(company, Company) else None
        for i, item in enumerate(contacts):
            yield self._contact(item, partner_id, i, company_inn, reason, updated_at)

    def _company(self, record: Mapping[str, Any], partner_id: str) -> Company | Reject:
        try:
            name = _join(text(record, "NAME_ORG1"), text(record, "NAME_ORG2"))
            legal_form = _repeating_text(record.get("LEGAL_ENTY"), "LEGAL_ENTY")
            taxnums = _taxnums(record.get("TAXNUMS"))
            phones, emails = _comm(record.get("COMM"))
            address = _address(record.get("ADDRESS"))
            banks = _banks(record.get("BANKS"))
            updated_at = _changed_at(record.get("CHANGED_AT"))
            xdele = _repeating_text(record.get("XDELE"), "XDELE")
            status = _repeating_text(record.get("STATUS"), "STATUS")
            _check_contacts_shape(record.get("CONTACTS"))
        except BadField as e:
            return self._reject(partner_id, "company", rejects.BAD_RECORD, str(e), record)
        if xdele == DELETED:
            return self._reject(partner_id, "company", rejects.SOURCE_DELETED, "XDELE = X", record)
        if status != ACTIVE_STATUS:
            return self._reject(partner_id, "company", rejects.SOURCE_INACTIVE,
                                f"STATUS = {status!r} (only {ACTIVE_STATUS} is loaded)", record)
        inn_text = taxnums.get("RU1", "")
        if not inn_text:
            return self._reject(partner_id, "company", rejects.NO_INN,
                                "TAXNUMS has no RU1 entry" if "RU1" not in taxnums else "RU1 TAXNUM is empty",
                                record)
        inn = compact(inn_text)
        if not inn:
            return self._reject(partner_id, "company", rejects.INN_FORMAT,
                                f"RU1 TAXNUM holds only separators: {inn_text!r}", record)
        return Company(
            source=self.source, source_id=partner_id, inn=inn, name=name,
            kpp=compact(taxnums.get("RU2", "")), ogrn=compact(taxnums.get("RU3", "")),
            legal_form=legal_form, is_sole_proprietor=len(inn) == 12 and inn.isdigit(),
            phones=phones, emails=emails, address=address, bank_accounts=banks, updated_at=updated_at,
        )

    def _contact(self, item: Any, partner_id: str, i: int, company_inn: str, company_reason: str,
                 updated_at: datetime | None) -> Contact | Reject:
        if type(item) is not dict and not isinstance(item, Mapping):
            return self._reject(f"{partner_id}/{i}", "contact", rejects.BAD_RECORD,
                                f"CONTACTS[{i}]: expected an object, got {json_type(item)}", item)
        contact_id = _partner_id(item.get("PARTNER"))
        if not contact_id:
            return self._reject(f"{partner_id}/{i}", "contact", rejects.BAD_RECORD,
                                f"CONTACTS[{i}].PARTNER: missing or not a partner number", item)
        get = item.get
        try:
            last = _name_part(get("NAME_LAST"), "NAME_LAST")
            first = _name_part(get("NAME_FIRST"), "NAME_FIRST")
            middle = _name_part(get("NAME_MIDDLE"), "NAME_MIDDLE")
            position = _repeating_text(get("FUNCTION"), "FUNCTION")
            xdele = _repeating_text(get("XDELE"), "XDELE")
            phones, emails = _comm(get("COMM"))
        except BadField as e:
            return self._reject(contact_id, "contact", rejects.BAD_RECORD,
                                str(e.inside(f"CONTACTS[{i}]")), item)
        if xdele == DELETED:
            return self._reject(contact_id, "contact", rejects.SOURCE_DELETED, "XDELE = X", item)
        if company_reason:
            return self._reject(contact_id, "contact", rejects.COMPANY_REJECTED, company_reason, item)
        return Contact(
            source=self.source, source_id=contact_id, company_source_id=partner_id,
            company_inn=company_inn, last_name=last, first_name=first, middle_name=middle,
            position=position, phones=phones, emails=emails, updated_at=updated_at,
        )

    def _reject(self, source_id: str, kind: str, reason: str, detail: str, raw: Any) -> Reject:
        return Reject(self.source, source_id, kind, reason, detail, raw=raw)


def create(shop: ShopSettings) -> ShopBTransformer:
    return ShopBTransformer(shop.name)


def _partner_id(value: Any) -> str:
    """A partner number as text ("0001000123"); a JSON number lost its leading zeros: pad to 10."""
    if isinstance(value, str):
        value = value.strip()
        return value if value and len(value) <= 40 and value.isprintable() else ""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value).zfill(10)
    return ""


def _join(first: str, second: str) -> str:
    return f"{first} {second}" if first and second else first or second


def _taxnums(value: Any) -> dict[str, str]:
    """TAXNUMS as {TAXTYPE: TAXNUM text}; the first non-empty entry per type wins."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise BadField("TAXNUMS", f"expected a list, got {json_type(value)}")
    found: dict[str, str] = {}
    for i, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise BadField(f"TAXNUMS[{i}]", f"expected an object, got {json_type(entry)}")
        kind = entry.get("TAXTYPE")
        if not isinstance(kind, str):
            raise BadField(f"TAXNUMS[{i}].TAXTYPE", f"expected text, got {json_type(kind)}")
        try:
            raw = entry.get("TAXNUM")
            if type(raw) is int and raw >= 0 and kind in _TAXNUM_DIGITS:
                number = _restore_zeros(raw, _TAXNUM_DIGITS[kind])
            else:
                number = text(entry, "TAXNUM")  # not compacted yet: "-" is inn_format, not no_inn
        except BadField as e:
            raise e.inside(f"TAXNUMS[{i}]") from None
        if not found.get(kind):
            found[kind] = number
    return found


def _restore_zeros(number: int, lengths: tuple[int, ...]) -> str:
    """A tax number that came as a JSON number lost its leading zeros (INN 0274062111 arrives as
    274062111): padded to the shortest length it fits; the checks that follow judge the result."""
    digits = str(number)
    return next((digits.zfill(n) for n in lengths if len(digits) <= n), digits)


def _comm(value: Any) -> tuple[tuple[Phone, ...], tuple[str, ...]]:
    """COMM -> (phones, e-mails): PHONE entries are WORK, MOBILE entries MOBILE, FAX entries FAX;
    TEL_EXTENS is the extension of the entry's (first) number unless the number text had one."""
    if value is None:
        return (), ()
    if type(value) is not dict and not isinstance(value, Mapping):
        raise BadField("COMM", f"expected an object, got {json_type(value)}")
    phones: list[Phone] = []
    for key, kind in _PHONE_KINDS:
        entries = value.get(key)
        if entries:
            for i, entry in enumerate(_entries(entries, f"COMM.{key}")):
                try:
                    number, extension = _phone_entry(entry)
                except BadField as e:
                    raise e.inside(f"COMM.{key}[{i}]") from None
                for phone in clean_phones(number, kind, extension):
                    if not phones or not any(p.e164 == phone.e164 and p.ext == phone.ext for p in phones):
                        phones.append(phone)
    emails: list[str] = []
    entries = value.get("EMAIL")
    if entries:
        for i, entry in enumerate(_entries(entries, "COMM.EMAIL")):
            address = entry.get("SMTP_ADDR")
            if type(address) is not str or not address.isascii() or len(address) > MAX_TEXT:
                try:
                    address = raw_text(address, "SMTP_ADDR")
                except BadField as e:
                    raise e.inside(f"COMM.EMAIL[{i}]") from None
            for e in clean_emails(address):
                if e not in emails:
                    emails.append(e)
    return tuple(phones), tuple(emails)


def _phone_entry(entry: Mapping[str, Any]) -> tuple[Any, str]:
    """(TEL_NUMBER as clean_phones reads it, TEL_EXTENS as digits)."""
    number = entry.get("TEL_NUMBER")
    if type(number) is str and (not number.isascii() or len(number) > MAX_TEXT):
        number = raw_text(number, "TEL_NUMBER")  # numbers and lists: clean_phones reads them
    extension = entry.get("TEL_EXTENS")
    if not extension:
        return number, ""
    if type(extension) is str and extension.isdigit() and extension.isascii():
        return number, extension
    return number, compact(text_value(extension, "TEL_EXTENS"))


def _entries(value: Any, key: str) -> list[Mapping[str, Any]]:
    """A list of objects (COMM.PHONE, BANKS, ...); a single object is read as a list of one."""
    if type(value) is dict:
        return [value]
    if type(value) is not list:
        if isinstance(value, Mapping):
            return [value]
        raise BadField(key, f"expected a list, got {json_type(value)}")
    for i, entry in enumerate(value):
        if type(entry) is not dict and not isinstance(entry, Mapping):
            raise BadField(f"{key}[{i}]", f"expected an object, got {json_type(entry)}")
    return value


def _address(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, Mapping):
        raise BadField("ADDRESS", f"expected an object, got {json_type(value)}")
    keys = [k for k in _ADDRESS_ORDER if k in value] + [k for k in value if k not in _ADDRESS_ORDER]
    parts = []
    for key in keys:
        if key == "COUNTRY" and value.get(key) == "RU":
            continue
        part = _repeating_text(value.get(key), key, "ADDRESS")
        if part:
            parts.append(part)
    return ", ".join(parts)


def _banks(value: Any) -> tuple[BankAccount, ...]:
    if not value:
        return ()
    accounts = []
    for i, entry in enumerate(_entries(value, "BANKS")):
        try:
            bik = _digits(entry, "BANKL")
            account = _digits(entry, "BANKN")
            if bik or account:
                accounts.append(BankAccount(bik=bik, account=account, corr_account=_digits(entry, "KOINV"),
                                            bank_name=_repeating_text(entry.get("BANKA"), "BANKA")))
        except BadField as e:
            raise e.inside(f"BANKS[{i}]") from None
    return tuple(accounts)


def _digits(record: Mapping[str, Any], key: str) -> str:
    """An identifier (BIK, account, INN...) with separators removed; plain digits pass as they are."""
    value = record.get(key)
    if type(value) is str and value.isdigit() and value.isascii():
        return value
    return compact(text(record, key))


def _changed_at(value: Any) -> datetime | None:
    """CHANGED_AT `YYYYMMDDhhmmss` (UTC) as an aware datetime; missing/empty is None."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise BadField("CHANGED_AT", f"expected YYYYMMDDhhmmss text, got {json_type(value)}")
    s = value.strip()
    try:
        if len(s) != 14 or not s.isdigit():
            raise ValueError
        return datetime(int(s[:4]), int(s[4:6]), int(s[6:8]), int(s[8:10]), int(s[10:12]),
                        int(s[12:14]), tzinfo=UTC)
    except ValueError:
        raise BadField("CHANGED_AT", f"not YYYYMMDDhhmmss: {_short(value)}") from None


def _check_contacts_shape(value: Any) -> None:
    if value is not None and not isinstance(value, list):
        raise BadField("CONTACTS", f"expected a list, got {json_type(value)}")


def _short(value: Any, limit: int = 40) -> str:
    r = repr(value)
    return r if len(r) <= limit else r[:limit] + "..."
