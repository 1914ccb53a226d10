"""Shop B's SAP business partners (export elements and event snapshots), written badly on purpose."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from etl.sandbox.generator import identifiers as ids
from etl.sandbox.generator import messy
from etl.sandbox.generator.records import SHOP_B, Appearance, CompanyRecord, ContactRecord
from etl.sandbox.generator.world import RealCompany

SAP_NAME_LEN = 40
EXPORT_START = datetime(2013, 1, 1, tzinfo=timezone.utc)

# Per-partner odds of each kind of trouble.
DELETED = 0.02
PROSPECT, BLOCKED = 0.04, 0.03
NO_INN, INN_FORMAT, INN_CHECKSUM = 0.02, 0.015, 0.015
CONTACT_DELETED = 0.04
JUNK_CONTACT = 0.01
LEGAL_FORMS = {"ООО": ("ООО", "ООО", "ООО", "ооо", "Общество с ограниченной ответственностью", ""),
               "АО": ("АО", "АО", "Акционерное общество", ""),
               "ПАО": ("ПАО", "ПАО", "Публичное акционерное общество", ""),
               "ИП": ("ИП", "ИП", "Индивидуальный предприниматель", "")}


def sap_time(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")


def split_name(name: str) -> tuple[str, str]:
    """SAP keeps 40 characters per name field: the rest goes to NAME_ORG2 (at a space if any)."""
    if len(name) <= SAP_NAME_LEN:
        return name, ""
    cut = name.rfind(" ", 0, SAP_NAME_LEN + 1)
    if cut <= 0:
        return name[:SAP_NAME_LEN], name[SAP_NAME_LEN:]
    return name[:cut], name[cut + 1:]


class ShopB:
    """Turns real companies into SAP partner elements; numbers partners and contacts."""

    def __init__(self, now: datetime) -> None:
        self.now = now          # the export was taken at this moment (UTC)
        self._partner = 0
        self._contact = 0

    def changed_at(self, rng: random.Random) -> datetime:
        if rng.random() < 0.5:   # half changed within the last two years
            start = self.now - timedelta(days=730)
        else:
            start = EXPORT_START
        span = int((self.now - start).total_seconds()) - 1
        return start + timedelta(seconds=rng.randrange(span))

    def partner(self, c: RealCompany, rng: random.Random, appearances: list[Appearance], *,
                changed: datetime | None = None, status: str | None = None
                ) -> tuple[dict, CompanyRecord, list[ContactRecord]]:
        self._partner += 1
        number = ids.partner_number(self._partner)
        changed = changed or self.changed_at(rng)
        roll = rng.random()
        if status is None:
            status = "E0001" if roll < PROSPECT else "E0003" if roll < PROSPECT + BLOCKED else "E0002"
        deleted = rng.random() < DELETED
        taxnums, inn_text = self._taxnums(c, rng)
        phones = [(c.switchboard, "")] + ([(c.extra_phone, "")] if rng.random() < 0.3 else [])
        emails = list(c.emails[: 1 + (rng.random() < 0.3)]) if rng.random() < 0.85 else []
        comm_phone = [{"TEL_NUMBER": messy.phone_text(p, rng), "TEL_EXTENS": ext} for p, ext in phones]
        if rng.random() < 0.05:
            comm_phone.append({"TEL_NUMBER": rng.choice(messy.PHONE_JUNK), "TEL_EXTENS": ""})
        comm_email = [{"SMTP_ADDR": messy.email_text(e, rng)} for e in emails]
        if rng.random() < 0.04:
            comm_email.append({"SMTP_ADDR": messy.bad_email(c.emails[0], rng)})
        org1, org2 = split_name(self._name(c, rng))
        element = {
            "PARTNER": number,
            "BU_TYPE": "2",
            "NAME_ORG1": org1,
            "NAME_ORG2": org2,
            "LEGAL_ENTY": rng.choice(LEGAL_FORMS[c.opf[2]]),
            "TAXNUMS": taxnums,
            "STATUS": status,
            "XDELE": "X" if deleted else "",
            "ADDRESS": {"COUNTRY": "RU", "POST_CODE1": c.post_code, "CITY1": c.city,
                        "STREET": c.street, "HOUSE_NUM1": c.house},
            "COMM": {"PHONE": comm_phone, "EMAIL": comm_email},
            "BANKS": ([{"BANKL": c.bank[1], "BANKN": c.account, "BANKA": c.bank[0], "KOINV": c.bank[2]}]
                      if rng.random() < 0.75 else []),
            "CONTACTS": [],
            "CHANGED_AT": sap_time(changed),
        }
        rec = CompanyRecord(SHOP_B, number, inn_text, changed, active=status == "E0002",
                            deleted=deleted, phones=frozenset(p for p, _ in phones),
                            emails=frozenset(emails))
        contacts = []
        for a in appearances:
            contacts.append(self.add_contact(element, rec, c, a, rng))
        if rng.random() < JUNK_CONTACT:
            contacts.append(self._junk_contact(element, rec, rng))
        return element, rec, contacts

    def add_contact(self, element: dict, company: CompanyRecord, c: RealCompany, a: Appearance,
                    rng: random.Random) -> ContactRecord:
        """Append one contact person to `element` (also used for new contacts in events)."""
        self._contact += 1
        number = ids.contact_partner_number(self._contact)
        p = a.person
        (last, first, middle), parts = messy.name_fields(p.last, p.first, p.middle, a.form, rng)
        phone = []
        if a.work:
            phone = [{"TEL_NUMBER": messy.phone_text(p.direct, rng), "TEL_EXTENS": ""} if p.direct
                     else {"TEL_NUMBER": messy.phone_text(c.switchboard, rng), "TEL_EXTENS": p.ext}]
        mobile = [{"TEL_NUMBER": messy.phone_text(p.mobile, rng)}] if a.mobile else []
        emails = [p.email] if a.email else []
        element["CONTACTS"].append({
            "PARTNER": number, "NAME_LAST": last, "NAME_FIRST": first, "NAME_MIDDLE": middle,
            "FUNCTION": p.position if rng.random() < 0.8 else "",
            "XDELE": "X" if a.deleted else "",
            "COMM": {"PHONE": phone, "MOBILE": mobile,
                     "EMAIL": [{"SMTP_ADDR": messy.email_text(e, rng)} for e in emails]},
        })
        valid_phones = {p.direct or c.switchboard} if a.work else set()
        if a.mobile:
            valid_phones.add(p.mobile)
        return ContactRecord(SHOP_B, number, company, p.key, parts, company.updated, deleted=a.deleted,
                             phones=frozenset(valid_phones), emails=frozenset(emails))

    def _junk_contact(self, element: dict, company: CompanyRecord, rng: random.Random) -> ContactRecord:
        self._contact += 1
        number = ids.contact_partner_number(self._contact)
        comm: dict = {}
        if rng.random() < 0.5:
            comm = {"PHONE": [{"TEL_NUMBER": rng.choice(messy.PHONE_JUNK), "TEL_EXTENS": ""}],
                    "MOBILE": [], "EMAIL": [{"SMTP_ADDR": rng.choice(messy.EMAIL_JUNK)}]}
        element["CONTACTS"].append({"PARTNER": number, "NAME_LAST": "", "NAME_FIRST": "",
                                    "NAME_MIDDLE": "", "FUNCTION": rng.choice(("", "Менеджер")),
                                    "XDELE": "", "COMM": comm})
        return ContactRecord(SHOP_B, number, company, None, ("", "", ""), company.updated)

    @staticmethod
    def _taxnums(c: RealCompany, rng: random.Random) -> tuple[list[dict], str | None]:
        roll = rng.random()
        taxnums: list[dict] = []
        inn_text: str | None
        if roll < NO_INN:
            inn_text = None
            if rng.random() < 0.5:
                taxnums.append({"TAXTYPE": "RU1", "TAXNUM": rng.choice(("", "  "))})
        else:
            if roll < NO_INN + INN_FORMAT:
                inn_text = messy.inn_bad_format_text(c.inn, rng)
            elif roll < NO_INN + INN_FORMAT + INN_CHECKSUM:
                inn_text = messy.inn_bad_checksum_text(c.inn, rng)
            else:
                inn_text = c.inn if rng.random() < 0.95 else messy.inn_valid_text(c.inn, rng)
            taxnums.append({"TAXTYPE": "RU1", "TAXNUM": inn_text})
        if c.kpp and rng.random() < 0.9:
            taxnums.append({"TAXTYPE": "RU2", "TAXNUM": messy.kpp_text(c.kpp, rng) or ""})
        if rng.random() < 0.9:
            taxnums.append({"TAXTYPE": "RU3", "TAXNUM": messy.ogrn_text(c.ogrn, rng) or ""})
        if rng.random() < 0.3:
            rng.shuffle(taxnums)
        return taxnums, inn_text

    @staticmethod
    def _name(c: RealCompany, rng: random.Random) -> str:
        if c.sole_proprietor:
            o = c.owner
            return rng.choice((o.full_name, f"ИП {o.full_name}", f"{o.last} {o.first[0]}. {o.middle[0]}."))
        return rng.choice((c.core, c.core, c.long_name, c.long_name.upper(), f'"{c.core}"'))
