"""The CRM comparator and the seed, against the Bitrix24 emulator over HTTP."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from etl.sandbox.generator import generate
from etl.sandbox.generator.portal import Portal, php_query
from etl.sandbox.seed import apply_seed
from etl.sandbox.truth import Truth, compare_crm_with_truth, load_truth

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("crm")
    generate(out, seed=2, scale=0.001, now=date(2025, 6, 1))
    return out


def add_companies(portal: Portal, companies: list[dict]) -> dict[str, int]:
    """Cards with an INN requisite, as a loader would make them (25 company+requisite pairs a batch)."""
    ids = {}
    for i in range(0, len(companies), 25):
        chunk = companies[i:i + 25]
        cmds = {}
        for n, c in enumerate(chunk):
            cmds[f"c{n}"] = "crm.company.add?" + php_query({"fields": {
                "TITLE": c["title"], "PHONE": [{"VALUE": p, "VALUE_TYPE": "WORK"} for p in c["phones"]],
                "EMAIL": [{"VALUE": e, "VALUE_TYPE": "WORK"} for e in c["emails"]]}})
            cmds[f"r{n}"] = "crm.requisite.add?" + php_query({"fields": {
                "ENTITY_TYPE_ID": 4, "ENTITY_ID": f"$result[c{n}]", "PRESET_ID": 1, "NAME": c["title"],
                "RQ_INN": c["inn"]}})
        res = portal.batch(cmds, read=False)
        assert not res.get("result_error"), res.get("result_error")
        for n, c in enumerate(chunk):
            ids[c["inn"]] = int(res["result"][f"c{n}"])
    return ids


def add_contacts(portal: Portal, persons: list[dict], company_ids: dict[str, int]) -> list[int]:
    ids = []
    for i in range(0, len(persons), 50):
        chunk = persons[i:i + 50]
        cmds = {}
        for n, p in enumerate(chunk):
            fields = {"NAME": p["first_name"], "LAST_NAME": p["last_name"], "SECOND_NAME": p["middle_name"],
                      "PHONE": [{"VALUE": v, "VALUE_TYPE": "WORK"} for v in p["phones"]],
                      "EMAIL": [{"VALUE": v, "VALUE_TYPE": "WORK"} for v in p["emails"]]}
            if p["company_inn"]:
                fields["COMPANY_ID"] = company_ids[p["company_inn"]]
            cmds[f"p{n}"] = "crm.contact.add?" + php_query({"fields": fields})
        res = portal.batch(cmds, read=False)
        assert not res.get("result_error"), res.get("result_error")
        ids += [int(res["result"][f"p{n}"]) for n in range(len(chunk))]
    return ids


def load_into_crm(webhook: str, truth: Truth, persons: list[dict] | None = None) -> dict[str, int]:
    with Portal(webhook) as portal:
        ids = add_companies(portal, list(truth.companies.values()))
        add_contacts(portal, truth.contacts if persons is None else persons, ids)
    return ids


def test_a_crm_that_holds_the_truth_passes_and_a_second_card_for_an_inn_does_not(bitrix24, data):
    truth = load_truth(data)
    assert truth.companies and truth.contacts
    load_into_crm(bitrix24.webhook_url, truth)
    result = compare_crm_with_truth(bitrix24.webhook_url, data)
    assert result.ok, result.summary()
    assert (result.found_companies, result.found_contacts) == (len(truth.companies), len(truth.contacts))

    inn, company = next(iter(truth.companies.items()))
    with Portal(bitrix24.webhook_url) as portal:
        add_companies(portal, [company])
    result = compare_crm_with_truth(bitrix24.webhook_url, data)
    assert not result.ok
    assert list(result.duplicated_companies) == [inn] and len(result.duplicated_companies[inn]) == 2
    assert not (result.missing_companies or result.unexpected_companies or result.missing_contacts)
    assert inn in result.summary() and "duplicated 1" in result.summary()


def test_missing_incomplete_merged_and_unexpected_contacts_are_reported(bitrix24, data):
    truth = load_truth(data)
    with_email = [p for p in truth.contacts if p["emails"] and p["company_inn"]]
    by_company: dict[str, list[dict]] = {}
    for p in with_email:
        by_company.setdefault(p["company_inn"], []).append(p)
    pair = next(ps for ps in by_company.values() if len(ps) >= 2)
    merged_a, merged_b = pair[0], pair[1]
    missing = next(p for p in with_email if p not in pair)
    incomplete = next(p for p in with_email if p not in pair and p is not missing and p["phones"])
    persons = []
    for p in truth.contacts:
        if p is missing or p is merged_b:
            continue
        if p is merged_a:     # one card holding two people
            p = dict(p, emails=p["emails"] + merged_b["emails"],
                     phones=sorted(set(p["phones"]) | set(merged_b["phones"])))
        if p is incomplete:   # a card without its phones
            p = dict(p, phones=[])
        persons.append(p)
    persons.append({"first_name": "Никто", "last_name": "Неизвестный", "middle_name": "", "phones": [],
                    "emails": ["nobody@nowhere.example"], "company_inn": ""})
    load_into_crm(bitrix24.webhook_url, truth, persons)
    result = compare_crm_with_truth(bitrix24.webhook_url, data)
    assert not result.ok
    assert result.missing_contacts == [missing["key"]]
    assert [m["persons"] for m in result.merged_contacts] == [sorted([merged_a["key"], merged_b["key"]])]
    assert [i["key"] for i in result.incomplete_contacts] == [incomplete["key"]]
    assert [u["name"] for u in result.unexpected_contacts] == ["Неизвестный Никто"]
    assert not (result.duplicated_contacts or result.missing_companies or result.duplicated_companies)


def test_apply_seed_creates_what_the_truth_counts_as_already_there(bitrix24, data):
    seed = json.loads((data / "crm_seed.json").read_text(encoding="utf-8"))
    assert seed["companies"] and seed["contacts"]
    report = apply_seed(bitrix24.webhook_url, data / "crm_seed.json")
    assert (report["companies"], report["contacts"]) == (len(seed["companies"]), len(seed["contacts"]))
    with Portal(bitrix24.webhook_url) as portal:
        contacts = list(portal.list_all("crm.contact.list", select=["ID", "COMPANY_ID"]))
        requisites = list(portal.list_all("crm.requisite.list", select=["ENTITY_ID", "RQ_INN"],
                                          filter={"ENTITY_TYPE_ID": 4}))
    linked = {int(c["ID"]): int(c["COMPANY_ID"] or 0) for c in contacts}
    for item in seed["contacts"]:
        want = report["company_ids"].get(item["company_key"], 0) if item["company_key"] else 0
        assert linked[report["contact_ids"][item["key"]]] == want
    assert sorted(r["RQ_INN"] for r in requisites) == sorted(c["inn"] for c in seed["companies"])

    truth = load_truth(data)
    result = compare_crm_with_truth(bitrix24.webhook_url, data)
    # everything seeded is expected; what is missing is exactly what the loads must bring
    assert not (result.unexpected_companies or result.unexpected_contacts or result.wrong_company_contacts
                or result.duplicated_companies or result.merged_contacts)
    assert sorted(result.missing_companies) == sorted(i for i, c in truth.companies.items() if not c["seed"])
    assert sorted(result.missing_contacts) == sorted(p["key"] for p in truth.contacts if not p["seed"])


def test_seeding_and_comparing_wait_out_the_portals_rate_limit(data):
    """A portal with a tiny bucket answers 503 QUERY_LIMIT_EXCEEDED; nothing is lost or doubled."""
    import requests

    from etl.sandbox.bitrix24 import start_bitrix24

    server = start_bitrix24(rate=20.0, burst=2)
    try:
        seed = json.loads((data / "crm_seed.json").read_text(encoding="utf-8"))
        report = apply_seed(server.webhook_url, data / "crm_seed.json")
        result = compare_crm_with_truth(server.webhook_url, data)
        stats = requests.get(server.url.rstrip("/") + "/_sandbox/stats", timeout=5).json()
    finally:
        server.stop()
    assert stats["rejected"]["QUERY_LIMIT_EXCEEDED"] > 0
    assert (report["companies"], report["contacts"]) == (len(seed["companies"]), len(seed["contacts"]))
    assert result.found_companies == len(seed["companies"]) and result.found_contacts == len(seed["contacts"])
    assert not (result.duplicated_companies or result.unexpected_companies)
