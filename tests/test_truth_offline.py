"""The ground truth agrees with the data written, checked by a small independent reader.

It reads shop A (SQLite), shop B (the export files) and the registry the way RULES.md says, with
python-stdnum and phonenumbers only (no generator or project code), and recomputes every
company's outcome, the offline contact reasons, and the phones/e-mails each expected card holds.
"""
from __future__ import annotations

import json
import re
import sqlite3
from collections import defaultdict
from datetime import date
from pathlib import Path

import phonenumbers
import pytest
from stdnum.ru import inn as stdnum_inn

from etl.sandbox.generator import generate
from etl.sandbox.truth import compare_rejects, load_truth

NOW = date(2025, 6, 1)
SINCE = "2024-01-01 00:00:00"
EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("truth")
    generate(out, seed=11, scale=0.004, now=NOW)
    return out


# --- an independent reader ----------------------------------------------------------------------

def text(raw: bytes | None) -> str:
    if raw is None:
        return ""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1251")


def inn_outcome(value: str | None) -> tuple[str | None, str | None]:
    if value is None or not value.strip():
        return None, "no_inn"
    inn = re.sub(r"[\s\-./]", "", value)
    if not re.fullmatch(r"[0-9]{10}|[0-9]{12}", inn) or len(set(inn)) == 1:
        return None, "inn_format"
    if not stdnum_inn.is_valid(inn):
        return None, "inn_checksum"
    return inn, None


def phones_in(cell: str | None) -> set[str]:
    out = set()
    for piece in re.split(r"[,;]", cell or ""):
        try:
            number = phonenumbers.parse(piece, "RU")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            out.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return out


def emails_in(cell: str | None) -> set[str]:
    return {e for e in (p.strip().lower() for p in re.split(r"[,;]", cell or "")) if EMAIL.fullmatch(e)}


def registry(data: Path) -> dict[str, str]:
    out = {}
    for line in (data / "egrul_registry.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        if d["branch_type"] == "MAIN":
            out[d["inn"]] = d["state"]["status"]
    return out


def company_outcome(inactive: bool, deleted: bool, inn_text: str | None, reg: dict[str, str]):
    if deleted:
        return None, "source_deleted"
    if inactive:
        return None, "source_inactive"
    inn, reason = inn_outcome(inn_text)
    if reason:
        return None, reason
    if inn not in reg:
        return inn, "egrul_not_found"
    if reg[inn] != "ACTIVE":
        return inn, "inactive:" + reg[inn]
    return inn, None


class Sources:
    """Every record in scope: its latest outcome by the rules, and what its loaded versions bring
    (the export and shop A; with `events`, then every event in topic order)."""

    def __init__(self, data: Path, *, events: bool = False) -> None:
        self.reg = registry(data)
        self.outcome: dict[tuple[str, str, str], str | None] = {}
        self.inn_of: dict[str, str] = {}                  # "shop-a:company:1" -> INN once loaded
        self.phones: dict[str, set[str]] = defaultdict(set)
        self.emails: dict[str, set[str]] = defaultdict(set)
        db = sqlite3.connect(data / "shop_a.sqlite")
        company_reason = {}
        for cid, active, inn, phone, email in db.execute(
                "SELECT id, is_active, inn, phone, email FROM b2b_company WHERE updated_at >= ?", (SINCE,)):
            inn_ok, reason = company_outcome(not active, False, text(inn) if inn is not None else None, self.reg)
            self._record("shop-a", "company", str(cid), reason, inn_ok, phones_in(text(phone)), emails_in(text(email)))
            company_reason[cid] = reason
        for cid, company_id, name, phone, mobile, email, deleted in db.execute(
                "SELECT id, company_id, full_name, phone, mobile, email, is_deleted FROM b2b_contact"):
            if company_id not in company_reason:
                continue   # its company is out of scope
            phones = phones_in(text(phone)) | phones_in(text(mobile))
            emails = emails_in(text(email))
            reason = ("source_deleted" if deleted else "company_rejected" if company_reason[company_id]
                      else None if (text(name).strip() or phones or emails) else "contact_empty")
            self._record("shop-a", "contact", str(cid), reason, None, phones, emails)
        for path in sorted((data / "shop_b").glob("export_*.json")):
            for p in json.loads(path.read_text(encoding="utf-8-sig")):
                self.partner(p)
        if events:
            for line in (data / "shop_b/events.jsonl").read_text(encoding="utf-8").splitlines():
                event = json.loads(json.loads(line)["value"])
                if event["event_type"] == "BP_DELETED":
                    self.outcome[("shop-b", "company", event["partner"]["PARTNER"])] = "source_deleted"
                else:
                    self.partner(event["partner"])

    def partner(self, p: dict) -> None:
        ru1 = [t["TAXNUM"] for t in p["TAXNUMS"] if t["TAXTYPE"] == "RU1"]
        inn_ok, company = company_outcome(p["STATUS"] != "E0002", p["XDELE"] == "X", ru1[0] if ru1 else None,
                                          self.reg)
        phones = set().union(*(phones_in(x["TEL_NUMBER"]) for x in p["COMM"]["PHONE"]))
        emails = set().union(*(emails_in(x["SMTP_ADDR"]) for x in p["COMM"]["EMAIL"]))
        self._record("shop-b", "company", p["PARTNER"], company, inn_ok, phones, emails)
        for c in p["CONTACTS"]:
            comm = c["COMM"]
            phones = set().union(*(phones_in(x["TEL_NUMBER"]) for x in comm.get("PHONE", []) + comm.get("MOBILE", [])))
            emails = set().union(*(emails_in(x["SMTP_ADDR"]) for x in comm.get("EMAIL", [])))
            named = any(c[k].strip() for k in ("NAME_LAST", "NAME_FIRST", "NAME_MIDDLE"))
            reason = ("source_deleted" if c["XDELE"] == "X" else "company_rejected" if company
                      else None if (named or phones or emails) else "contact_empty")
            self._record("shop-b", "contact", c["PARTNER"], reason, None, phones, emails)

    def _record(self, source, kind, sid, reason, inn, phones, emails) -> None:
        self.outcome[(source, kind, sid)] = reason
        if reason is None:
            key = f"{source}:{kind}:{sid}"
            if inn:
                self.inn_of[key] = inn
            self.phones[key] |= phones
            self.emails[key] |= emails


@pytest.fixture(scope="module", params=[False, True], ids=["full_load", "after_events"])
def sources(request, data) -> Sources:
    s = Sources(data, events=request.param)
    s.after_events = request.param
    return s


# --- the checks ---------------------------------------------------------------------------------

def test_every_record_in_scope_is_loaded_or_rejected_with_the_first_failing_reason(data, sources):
    truth_rejects = {(r["source"], r["kind"], r["source_id"]): r["reason"]
                     for r in load_truth(data, after_events=sources.after_events).rejects()}
    expected = {k: v for k, v in sources.outcome.items() if v is not None}
    assert truth_rejects == expected
    reasons = set(expected.values())
    if sources.after_events:
        assert expected != {k: v for k, v in Sources(data).outcome.items() if v is not None}
    assert {"no_inn", "inn_format", "inn_checksum", "egrul_not_found", "source_inactive", "source_deleted",
            "company_rejected", "contact_empty", "inactive:LIQUIDATED"} <= reasons


def test_out_of_scope_rows_appear_nowhere(data, sources):
    db = sqlite3.connect(data / "shop_a.sqlite")
    old = {str(i) for (i,) in db.execute("SELECT id FROM b2b_company WHERE updated_at < ?", (SINCE,))}
    assert old
    truth = load_truth(data)
    mentioned = {r["source_id"] for r in truth.rejects() if r["source"] == "shop-a" and r["kind"] == "company"}
    mentioned |= {s.split(":")[2] for c in truth.companies.values() for s in c["sources"] if s.startswith("shop-a:")}
    assert not old & mentioned


def test_companies_are_the_loaded_inns_plus_the_seed_with_their_phones_and_emails(data, sources):
    truth = load_truth(data, after_events=sources.after_events)
    seed = json.loads((data / "crm_seed.json").read_text(encoding="utf-8"))
    seed_by_inn = {c["inn"]: c for c in seed["companies"]}
    loaded: dict[str, list[str]] = defaultdict(list)
    for key, inn in sources.inn_of.items():
        loaded[inn].append(key)
    assert set(truth.companies) == set(loaded) | set(seed_by_inn)
    for inn, company in truth.companies.items():
        assert sorted(company["sources"]) == sorted(loaded.get(inn, []))
        phones = set().union(*(sources.phones[k] for k in loaded.get(inn, [])))
        emails = set().union(*(sources.emails[k] for k in loaded.get(inn, [])))
        if inn in seed_by_inn:
            phones |= {p["VALUE"] for p in seed_by_inn[inn]["fields"]["PHONE"]}
            emails |= {e["VALUE"] for e in seed_by_inn[inn]["fields"]["EMAIL"]}
        assert set(company["phones"]) == phones, inn
        assert set(company["emails"]) == emails, inn
        assert company["is_sole_proprietor"] == (len(inn) == 12)


def test_persons_hold_exactly_the_phones_and_emails_of_their_records(data, sources):
    truth = load_truth(data, after_events=sources.after_events)
    seed = {c["key"]: c for c in json.loads((data / "crm_seed.json").read_text(encoding="utf-8"))["contacts"]}
    placed: dict[str, str] = {}
    for person in truth.contacts:
        phones = set().union(*(sources.phones[k] for k in person["sources"]))
        emails = set().union(*(sources.emails[k] for k in person["sources"]))
        if person["seed_key"]:
            fields = seed[person["seed_key"]]["fields"]
            phones |= {p["VALUE"] for p in fields["PHONE"]}
            emails |= {e["VALUE"] for e in fields["EMAIL"]}
        assert set(person["phones"]) == phones and set(person["emails"]) == emails, person["key"]
        for k in person["sources"]:
            assert k not in placed, (k, placed.get(k), person["key"])   # a record is in one person
            placed[k] = person["key"]
    ever_loaded = {k for k in sources.phones if k.split(":")[1] == "contact"}
    assert set(placed) == ever_loaded


def test_truth_can_be_compared_with_reported_rejects(data):
    rows = [(r["source"], r["kind"], r["source_id"], r["reason"]) for r in load_truth(data).rejects()]
    assert compare_rejects(rows, data).ok
    dropped, changed = rows[0], rows[1]
    actual = rows[2:] + [changed[:3] + ("no_inn" if changed[3] != "no_inn" else "inn_format",),
                         ("shop-a", "company", "999999", "no_inn")]
    report = compare_rejects(actual, data)
    assert not report.ok
    assert [(m["source_id"], m["reason"]) for m in report.missing] == [(dropped[2], dropped[3])]
    assert [(w["source_id"], w["expected"]) for w in report.wrong] == [(changed[2], changed[3])]
    assert [u["source_id"] for u in report.unexpected] == ["999999"]
    assert "missing 1" in report.summary() and dropped[2] in report.summary()


def test_after_events_rejects_are_the_latest_outcome_of_each_record(data):
    before = {(r["source"], r["kind"], r["source_id"]): r["reason"] for r in load_truth(data).rejects()}
    after = {(r["source"], r["kind"], r["source_id"]): r["reason"]
             for r in load_truth(data, after_events=True).rejects()}
    events = [json.loads(json.loads(line)["value"])
              for line in (data / "shop_b/events.jsonl").read_text(encoding="utf-8").splitlines()]
    last: dict[str, dict] = {}
    for e in events:
        last[e["partner"]["PARTNER"]] = e
    for partner, e in last.items():
        key = ("shop-b", "company", partner)
        if e["event_type"] == "BP_DELETED":
            assert after[key] == "source_deleted"
        elif e["partner"]["XDELE"] != "X" and e["partner"]["STATUS"] != "E0002":
            assert after[key] == "source_inactive"
    untouched = {k for k in before if k[0] == "shop-a"}
    assert {k: before[k] for k in untouched} == {k: after[k] for k in untouched}
    truth, truth_after = load_truth(data), load_truth(data, after_events=True)
    assert set(truth.companies) <= set(truth_after.companies)          # events never delete
    assert {p["key"] for p in truth.contacts} <= {p["key"] for p in truth_after.contacts}
