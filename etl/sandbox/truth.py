"""Reading the generator's ground truth, and checking a CRM (or a list of rejects) against it.

    truth = load_truth("out/")                                   # out/truth/ (or a truth dir)
    result = compare_crm_with_truth(webhook_url, "out/")         # reads the CRM over REST
    print(result.summary()); assert result.ok
    compare_rejects(rows, "out/").ok                             # rows: (source, kind, source_id, reason)

The CRM is read with paged list calls (`start=-1` + `>ID`, 50 pages per batch request) within
the portal's rate limit: companies, their requisites (ENTITY_TYPE_ID=4, for RQ_INN), contacts
with PHONE/EMAIL/COMPANY_ID (and `crm.contact.company.items.get` for contacts without
COMPANY_ID). Each CRM contact is mapped to the truth persons of its company's INN by e-mail, then
by phone (names must not conflict: a switchboard is shared), then by full name.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.sandbox.generator.portal import Portal, php_query
from etl.sandbox.generator.rules import full_name_key, names_conflict, normalise

TRUTH, AFTER_EVENTS = "truth", "truth_after_events"
SHOWN = 5  # examples per problem in summary()


# --- reading the truth --------------------------------------------------------------------------

def truth_dir(path: str | Path, *, after_events: bool = False) -> Path:
    """A truth directory: `path` itself if it holds companies.jsonl, else its truth/ (or
    truth_after_events/) subdirectory."""
    p = Path(path)
    if (p / "companies.jsonl").is_file():
        return p
    sub = p / (AFTER_EVENTS if after_events else TRUTH)
    if (sub / "companies.jsonl").is_file():
        return sub
    raise FileNotFoundError(f"{p}: no ground truth here (companies.jsonl, or {sub.name}/companies.jsonl); "
                            "make one with `crm-etl generate --out DIR`")


def iter_jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as e:
                    raise ValueError(f"{path}:{n}: not JSON ({e})") from None


@dataclass
class Truth:
    directory: Path
    companies: dict[str, dict]          # INN -> expected company
    contacts: list[dict]                # expected persons
    summary: dict

    def rejects(self) -> Iterator[dict]:
        return iter_jsonl(self.directory / "rejects.jsonl")


def load_truth(path: str | Path, *, after_events: bool = False) -> Truth:
    d = truth_dir(path, after_events=after_events)
    companies = {c["inn"]: c for c in iter_jsonl(d / "companies.jsonl")}
    contacts = list(iter_jsonl(d / "contacts.jsonl"))
    summary_path = d / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    return Truth(d, companies, contacts, summary)


# --- comparing a CRM ----------------------------------------------------------------------------

def _phone(value: str) -> str:
    digits = re.sub(r"\D", "", value or "")
    if len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    return "+" + digits if digits else ""


def _multi(row: dict, name: str) -> set[str]:
    out = set()
    for item in row.get(name) or []:
        value = item.get("VALUE", "") if isinstance(item, dict) else ""
        v = _phone(value) if name == "PHONE" else value.strip().lower()
        if v:
            out.add(v)
    return out


@dataclass
class Comparison:
    """A CRM against the truth. `ok` when nothing is missing, unexpected, duplicated, merged or
    incomplete (titles that differ are shown but do not count: the title's form is the loader's
    choice)."""

    expected_companies: int = 0
    found_companies: int = 0
    missing_companies: list[str] = field(default_factory=list)             # INNs
    unexpected_companies: list[dict] = field(default_factory=list)         # {id, title, inn}
    duplicated_companies: dict[str, list[int]] = field(default_factory=dict)
    incomplete_companies: list[dict] = field(default_factory=list)         # {inn, phones, emails} missing
    title_mismatches: list[dict] = field(default_factory=list)
    expected_contacts: int = 0
    found_contacts: int = 0
    missing_contacts: list[str] = field(default_factory=list)              # person keys
    unexpected_contacts: list[dict] = field(default_factory=list)          # {id, name, inn}
    duplicated_contacts: dict[str, list[int]] = field(default_factory=dict)
    merged_contacts: list[dict] = field(default_factory=list)              # {id, persons}
    wrong_company_contacts: list[dict] = field(default_factory=list)       # {id, person, inn}
    incomplete_contacts: list[dict] = field(default_factory=list)          # {key, phones, emails} missing

    @property
    def ok(self) -> bool:
        return not (self.missing_companies or self.unexpected_companies or self.duplicated_companies
                    or self.incomplete_companies or self.missing_contacts or self.unexpected_contacts
                    or self.duplicated_contacts or self.merged_contacts or self.wrong_company_contacts
                    or self.incomplete_contacts)

    def summary(self) -> str:
        lines = [f"CRM vs truth: {'OK' if self.ok else 'DIFFERENCES'}",
                 f"companies: expected {self.expected_companies}, in CRM {self.found_companies}, "
                 f"missing {len(self.missing_companies)}, unexpected {len(self.unexpected_companies)}, "
                 f"duplicated {len(self.duplicated_companies)}, incomplete {len(self.incomplete_companies)}, "
                 f"other title {len(self.title_mismatches)}",
                 f"contacts: expected {self.expected_contacts}, in CRM {self.found_contacts}, "
                 f"missing {len(self.missing_contacts)}, unexpected {len(self.unexpected_contacts)}, "
                 f"duplicated {len(self.duplicated_contacts)}, merged {len(self.merged_contacts)}, "
                 f"wrong company {len(self.wrong_company_contacts)}, incomplete {len(self.incomplete_contacts)}"]
        for label, items in (("missing companies", self.missing_companies),
                             ("unexpected companies", self.unexpected_companies),
                             ("duplicated companies", list(self.duplicated_companies.items())),
                             ("incomplete companies", self.incomplete_companies),
                             ("missing contacts", self.missing_contacts),
                             ("unexpected contacts", self.unexpected_contacts),
                             ("duplicated contacts", list(self.duplicated_contacts.items())),
                             ("merged contacts", self.merged_contacts),
                             ("contacts at the wrong company", self.wrong_company_contacts),
                             ("incomplete contacts", self.incomplete_contacts)):
            if items:
                shown = ", ".join(json.dumps(i, ensure_ascii=False) for i in items[:SHOWN])
                more = f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else ""
                lines.append(f"  {label}: {shown}{more}")
        return "\n".join(lines)


@dataclass
class _CrmSnapshot:
    companies: list[dict]
    inn_of_company: dict[int, str]
    contacts: list[dict]
    company_of_contact: dict[int, int]


def read_crm(portal: Portal) -> _CrmSnapshot:
    companies = list(portal.list_all("crm.company.list", select=["ID", "TITLE", "PHONE", "EMAIL"]))
    inn_of: dict[int, str] = {}
    for r in portal.list_all("crm.requisite.list", select=["ID", "ENTITY_ID", "RQ_INN"],
                             filter={"ENTITY_TYPE_ID": 4}):
        inn = re.sub(r"\D", "", str(r.get("RQ_INN") or ""))
        if inn:
            inn_of.setdefault(int(r["ENTITY_ID"]), inn)
    contacts = list(portal.list_all("crm.contact.list", select=["ID", "NAME", "LAST_NAME", "SECOND_NAME",
                                                                "PHONE", "EMAIL", "COMPANY_ID"]))
    company_of: dict[int, int] = {}
    unlinked = []
    for c in contacts:
        cid = int(c.get("COMPANY_ID") or 0)
        if cid:
            company_of[int(c["ID"])] = cid
        else:
            unlinked.append(int(c["ID"]))
    for i in range(0, len(unlinked), 50):   # linked through crm.contact.company.* only
        chunk = unlinked[i:i + 50]
        res = portal.batch({f"k{n}": "crm.contact.company.items.get?" + php_query({"id": cid})
                            for n, cid in enumerate(chunk)})
        for n, cid in enumerate(chunk):
            items = res.get("result", {}).get(f"k{n}") or []
            primary = next((it for it in items if it.get("IS_PRIMARY") == "Y"), items[0] if items else None)
            if primary:
                company_of[cid] = int(primary["COMPANY_ID"])
    return _CrmSnapshot(companies, inn_of, contacts, company_of)


class _PersonIndex:
    """Truth persons of one INN, looked up by e-mail, phone and name."""

    def __init__(self) -> None:
        self.persons: list[dict] = []
        self.email: dict[str, int] = {}
        self.phone: dict[str, list[int]] = defaultdict(list)
        self.name: dict[str, list[int]] = defaultdict(list)

    def add(self, person: dict) -> None:
        i = len(self.persons)
        self.persons.append(person)
        for e in person["emails"]:
            self.email[e] = i
        for p in person["phones"]:
            self.phone[p].append(i)
        key = full_name_key(_name(person))
        if key:
            self.name[key].append(i)

    def candidates(self, emails: set[str], phones: set[str], name: tuple[str, str, str]) -> set[int]:
        """The persons this card holds: by e-mail or a phone only one person has; else by a shared
        phone with a compatible name; else by full name."""
        claimed = {self.email[e] for e in emails if e in self.email}
        claimed |= {self.phone[p][0] for p in phones if len(self.phone.get(p, ())) == 1}
        if claimed:
            return claimed
        shared = {i for p in phones for i in self.phone.get(p, ())
                  if not names_conflict(name, _name(self.persons[i])) and (name[0] or name[1])}
        if shared:
            return shared
        key = full_name_key(name)
        return set(self.name.get(key, ())) if key else set()


def _name(person: dict) -> tuple[str, str, str]:
    return (person.get("last_name") or "", person.get("first_name") or "", person.get("middle_name") or "")


def _contact_name(row: dict) -> tuple[str, str, str]:
    return (str(row.get("LAST_NAME") or "").strip(), str(row.get("NAME") or "").strip(),
            str(row.get("SECOND_NAME") or "").strip())


def compare_snapshot(crm: _CrmSnapshot, truth: Truth) -> Comparison:
    result = Comparison(expected_companies=len(truth.companies), found_companies=len(crm.companies),
                        expected_contacts=len(truth.contacts), found_contacts=len(crm.contacts))
    # companies
    cards: dict[str, list[dict]] = defaultdict(list)
    for row in crm.companies:
        inn = crm.inn_of_company.get(int(row["ID"]), "")
        if inn in truth.companies:
            cards[inn].append(row)
        else:
            result.unexpected_companies.append({"id": int(row["ID"]), "title": row.get("TITLE"), "inn": inn})
    for inn, expected in truth.companies.items():
        rows = cards.get(inn, [])
        if not rows:
            result.missing_companies.append(inn)
            continue
        if len(rows) > 1:
            result.duplicated_companies[inn] = sorted(int(r["ID"]) for r in rows)
        phones = set().union(*(_multi(r, "PHONE") for r in rows))
        emails = set().union(*(_multi(r, "EMAIL") for r in rows))
        lacking_p = sorted(set(expected["phones"]) - phones)
        lacking_e = sorted(set(expected["emails"]) - emails)
        if lacking_p or lacking_e:
            result.incomplete_companies.append({"inn": inn, "phones": lacking_p, "emails": lacking_e})
        if len(rows) == 1 and normalise(str(rows[0].get("TITLE") or "")) != normalise(expected["title"]):
            result.title_mismatches.append({"inn": inn, "crm": rows[0].get("TITLE"), "truth": expected["title"]})
    # contacts
    index: dict[str, _PersonIndex] = defaultdict(_PersonIndex)
    for person in truth.contacts:
        index[person["company_inn"]].add(person)
    anywhere = {e: (inn, i) for inn, ix in index.items() for e, i in ix.email.items()}
    found: dict[tuple[str, int], list[int]] = defaultdict(list)
    for row in crm.contacts:
        cid = int(row["ID"])
        company = crm.company_of_contact.get(cid)
        inn = crm.inn_of_company.get(company, "") if company else ""
        emails, phones, name = _multi(row, "EMAIL"), _multi(row, "PHONE"), _contact_name(row)
        hits = index[inn].candidates(emails, phones, name) if inn in index else set()
        if not hits:
            elsewhere = sorted(anywhere[e] for e in emails if e in anywhere)
            if elsewhere:
                o, i = elsewhere[0]
                result.wrong_company_contacts.append({"id": cid, "person": index[o].persons[i]["key"],
                                                      "inn": inn})
            else:
                result.unexpected_contacts.append({"id": cid, "name": " ".join(p for p in name if p),
                                                   "inn": inn})
            continue
        if len(hits) > 1:
            result.merged_contacts.append({"id": cid, "persons": sorted(index[inn].persons[i]["key"] for i in hits)})
        for i in hits:
            found[(inn, i)].append(cid)
    cards_of: dict[int, dict] = {int(r["ID"]): r for r in crm.contacts}
    for inn, ix in index.items():
        for i, person in enumerate(ix.persons):
            ids = found.get((inn, i), [])
            if not ids:
                result.missing_contacts.append(person["key"])
                continue
            if len(ids) > 1:
                result.duplicated_contacts[person["key"]] = sorted(ids)
            phones = set().union(*(_multi(cards_of[c], "PHONE") for c in ids))
            emails = set().union(*(_multi(cards_of[c], "EMAIL") for c in ids))
            lacking_p = sorted(set(person["phones"]) - phones)
            lacking_e = sorted(set(person["emails"]) - emails)
            if lacking_p or lacking_e:
                result.incomplete_contacts.append({"key": person["key"], "phones": lacking_p, "emails": lacking_e})
    return result


def compare_crm_with_truth(webhook_url: str, truth_path: str | Path, *, after_events: bool = False,
                           rate: float = 2.0, burst: int = 50) -> Comparison:
    """Read the whole CRM through the REST API and compare it with the truth (see the module doc)."""
    truth = load_truth(truth_path, after_events=after_events)
    with Portal(webhook_url, rate=rate, burst=burst) as portal:
        crm = read_crm(portal)
    return compare_snapshot(crm, truth)


# --- comparing rejects --------------------------------------------------------------------------

RejectKey = tuple[str, str, str]


@dataclass
class RejectComparison:
    expected: int = 0
    actual: int = 0
    missing: list[dict] = field(default_factory=list)      # expected, not reported
    unexpected: list[dict] = field(default_factory=list)   # reported, not expected
    wrong: list[dict] = field(default_factory=list)        # reported with another reason

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong)

    def summary(self) -> str:
        lines = [f"rejects vs truth: {'OK' if self.ok else 'DIFFERENCES'} (expected {self.expected}, "
                 f"reported {self.actual}, missing {len(self.missing)}, unexpected {len(self.unexpected)}, "
                 f"wrong reason {len(self.wrong)})"]
        for label, items in (("missing", self.missing), ("unexpected", self.unexpected), ("wrong", self.wrong)):
            if items:
                more = f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else ""
                shown = ", ".join(json.dumps(i, ensure_ascii=False) for i in items[:SHOWN])
                lines.append(f"  {label}: {shown}{more}")
        return "\n".join(lines)


def _reject_tuple(item: Any) -> tuple[str, str, str, str]:
    if isinstance(item, dict):
        return str(item["source"]), str(item["kind"]), str(item["source_id"]), str(item["reason"])
    if hasattr(item, "source_id"):
        return str(item.source), str(item.kind), str(item.source_id), str(item.reason)
    source, kind, source_id, reason = item
    return str(source), str(kind), str(source_id), str(reason)


def compare_rejects(actual: Iterable[Any], truth_path: str | Path, *, after_events: bool = False) -> RejectComparison:
    """Reported rejects — (source, kind, source_id, reason) tuples, dicts or etl.dto.Reject — against
    the truth's. A key reported more than once counts with its last reason (the latest outcome)."""
    d = truth_dir(truth_path, after_events=after_events)
    expected: dict[RejectKey, str] = {(r["source"], r["kind"], r["source_id"]): r["reason"]
                                      for r in iter_jsonl(d / "rejects.jsonl")}
    reported: dict[RejectKey, str] = {}
    for item in actual:
        source, kind, source_id, reason = _reject_tuple(item)
        reported[(source, kind, source_id)] = reason
    result = RejectComparison(expected=len(expected), actual=len(reported))
    for key, reason in reported.items():
        want = expected.get(key)
        row = {"source": key[0], "kind": key[1], "source_id": key[2], "reason": reason}
        if want is None:
            result.unexpected.append(row)
        elif want != reason:
            result.wrong.append({**row, "expected": want})
    for key, reason in expected.items():
        if key not in reported:
            result.missing.append({"source": key[0], "kind": key[1], "source_id": key[2], "reason": reason})
    return result
