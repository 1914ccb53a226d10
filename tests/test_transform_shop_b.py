"""Shop B transformer: SAP business partners (export items and Kafka events) -> DTOs / Rejects."""
from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from etl import rejects
from etl.dto import BankAccount, Company, Contact, Phone, Reject
from transformers.shop_b import ShopBTransformer

# The example element of sources/README.md, verbatim.
EXAMPLE = json.loads("""
{
  "PARTNER": "0001000123",
  "BU_TYPE": "2",
  "NAME_ORG1": "Ромашка",
  "NAME_ORG2": "",
  "LEGAL_ENTY": "ООО",
  "TAXNUMS": [
    {"TAXTYPE": "RU1", "TAXNUM": "7707083893"},
    {"TAXTYPE": "RU2", "TAXNUM": "770701001"},
    {"TAXTYPE": "RU3", "TAXNUM": "1027700132195"}
  ],
  "STATUS": "E0002",
  "XDELE": "",
  "ADDRESS": {"COUNTRY": "RU", "POST_CODE1": "101000", "CITY1": "Москва",
              "STREET": "ул. Тверская", "HOUSE_NUM1": "1"},
  "COMM": {
    "PHONE": [{"TEL_NUMBER": "8 495 123-45-67", "TEL_EXTENS": "123"}],
    "EMAIL": [{"SMTP_ADDR": "Info@Romashka.ru"}]
  },
  "BANKS": [{"BANKL": "044525225", "BANKN": "40702810938000012345",
             "BANKA": "ПАО СБЕРБАНК", "KOINV": "30101810400000000225"}],
  "CONTACTS": [
    {"PARTNER": "0002000456", "NAME_LAST": "Петров", "NAME_FIRST": "Иван",
     "NAME_MIDDLE": "Сергеевич", "FUNCTION": "Менеджер по закупкам", "XDELE": "",
     "COMM": {"PHONE": [{"TEL_NUMBER": "+7 (495) 123-45-67", "TEL_EXTENS": "201"}],
              "MOBILE": [{"TEL_NUMBER": "89161234567"}],
              "EMAIL": [{"SMTP_ADDR": "i.petrov@romashka.ru"}]}}
  ],
  "CHANGED_AT": "20240115103000"
}
""")
CHANGED = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def partner(**over: Any) -> dict[str, Any]:
    item = copy.deepcopy(EXAMPLE)
    for key, value in over.items():
        if value is ...:
            item.pop(key, None)
        else:
            item[key] = value
    return item


def person(partner_id: str = "0002000999", **over: Any) -> dict[str, Any]:
    item = copy.deepcopy(EXAMPLE["CONTACTS"][0]) | {"PARTNER": partner_id}
    item.update(over)
    return item


def run(*records: Any) -> list[Company | Contact | Reject]:
    return list(ShopBTransformer("shop-b").transform(records))


def test_readme_example() -> None:
    company, contact = run(EXAMPLE)
    assert company == Company(
        source="shop-b", source_id="0001000123", inn="7707083893", name="Ромашка", kpp="770701001",
        ogrn="1027700132195", legal_form="ООО", is_sole_proprietor=False,
        phones=(Phone("+74951234567", "123", "WORK"),), emails=("info@romashka.ru",),
        address="101000, Москва, ул. Тверская, 1",
        bank_accounts=(BankAccount("044525225", "40702810938000012345", "30101810400000000225", "ПАО СБЕРБАНК"),),
        updated_at=CHANGED,
    )
    assert contact == Contact(
        source="shop-b", source_id="0002000456", company_source_id="0001000123", company_inn="7707083893",
        last_name="Петров", first_name="Иван", middle_name="Сергеевич", position="Менеджер по закупкам",
        phones=(Phone("+74951234567", "201", "WORK"), Phone("+79161234567", "", "MOBILE")),
        emails=("i.petrov@romashka.ru",), updated_at=CHANGED,
    )


def test_names_address_and_identifiers() -> None:
    [company, _] = run(partner(
        NAME_ORG1="Общество с ограниченной ответственностью", NAME_ORG2=" Ромашка  Плюс ",
        TAXNUMS=[{"TAXTYPE": "RU1", "TAXNUM": "5001 0073 2259"}, {"TAXTYPE": "RU3", "TAXNUM": "304500116000157"}],
        ADDRESS={"CITY1": "Москва", "HOUSE_NUM1": "1", "STREET": "ул. Тверская", "COUNTRY": "KZ",
                 "EXTRA": "оф. 5"},
    ))
    assert company.name == "Общество с ограниченной ответственностью Ромашка Плюс"
    assert (company.inn, company.kpp, company.ogrn) == ("500100732259", "", "304500116000157")
    assert company.is_sole_proprietor
    assert company.address == "KZ, Москва, ул. Тверская, 1, оф. 5"


def test_mojibake_and_upper_case_names_are_cleaned() -> None:
    broken = 'ООО "Ромашка"'.encode("cp1251").decode("latin-1")
    [company, contact] = run(partner(NAME_ORG1=broken, CONTACTS=[person(
        NAME_LAST="ПЕТРОВ".encode().decode("sloppy-windows-1251"), NAME_FIRST="иван", NAME_MIDDLE=None)]))
    assert company.name == 'ООО "Ромашка"'
    assert (contact.last_name, contact.first_name, contact.middle_name) == ("Петров", "Иван", "")


def test_numbers_where_text_belongs_are_read() -> None:
    [company, contact] = run(partner(
        PARTNER=1000123, TAXNUMS=[{"TAXTYPE": "RU1", "TAXNUM": 7707083893}], CHANGED_AT=20240115103000,
        CONTACTS=[person(COMM={"MOBILE": [{"TEL_NUMBER": 89161234567}],
                               "PHONE": [{"TEL_NUMBER": ["8 495 1234567", "8 495 1234568"], "TEL_EXTENS": 5}]})]))
    assert (company.source_id, company.inn, company.updated_at) == ("0001000123", "7707083893", CHANGED)
    assert contact.phones == (Phone("+74951234567", "5", "WORK"), Phone("+74951234568", "", "WORK"),
                              Phone("+79161234567", "", "MOBILE"))


@pytest.mark.parametrize("over, reason", [
    ({"XDELE": "X"}, rejects.SOURCE_DELETED),
    ({"XDELE": "X", "STATUS": "E0003", "TAXNUMS": []}, rejects.SOURCE_DELETED),   # deleted before status
    ({"STATUS": "E0001"}, rejects.SOURCE_INACTIVE),
    ({"STATUS": "E0003"}, rejects.SOURCE_INACTIVE),
    ({"STATUS": ...}, rejects.SOURCE_INACTIVE),
    ({"STATUS": "E0003", "TAXNUMS": ...}, rejects.SOURCE_INACTIVE),                # status before INN
    ({"TAXNUMS": ...}, rejects.NO_INN),
    ({"TAXNUMS": None}, rejects.NO_INN),
    ({"TAXNUMS": []}, rejects.NO_INN),
    ({"TAXNUMS": [{"TAXTYPE": "RU2", "TAXNUM": "770701001"}]}, rejects.NO_INN),
    ({"TAXNUMS": [{"TAXTYPE": "RU1", "TAXNUM": "  "}]}, rejects.NO_INN),
    ({"TAXNUMS": [{"TAXTYPE": "RU1", "TAXNUM": None}]}, rejects.NO_INN),
    ({"TAXNUMS": [{"TAXTYPE": "RU1", "TAXNUM": "--"}]}, rejects.INN_FORMAT),
    ({"PARTNER": ...}, rejects.BAD_RECORD),
    ({"PARTNER": ""}, rejects.BAD_RECORD),
    ({"PARTNER": ["1"]}, rejects.BAD_RECORD),
    ({"TAXNUMS": "7707083893"}, rejects.BAD_RECORD),
    ({"TAXNUMS": ["7707083893"]}, rejects.BAD_RECORD),
    ({"TAXNUMS": [{"TAXTYPE": None, "TAXNUM": "7707083893"}]}, rejects.BAD_RECORD),
    ({"COMM": "8 495 1234567"}, rejects.BAD_RECORD),
    ({"COMM": {"PHONE": "8 495 1234567"}}, rejects.BAD_RECORD),
    ({"COMM": {"EMAIL": [None]}}, rejects.BAD_RECORD),
    ({"ADDRESS": "Москва"}, rejects.BAD_RECORD),
    ({"BANKS": {"BANKL": ["x"]}}, rejects.BAD_RECORD),
    ({"CONTACTS": {"PARTNER": "1"}}, rejects.BAD_RECORD),
    ({"CHANGED_AT": "2024-01-15"}, rejects.BAD_RECORD),
    ({"CHANGED_AT": "20241315103000"}, rejects.BAD_RECORD),
    ({"NAME_ORG1": {"ru": "Ромашка"}}, rejects.BAD_RECORD),
    ({"NAME_ORG1": "Р" * 100_000}, rejects.BAD_RECORD),
    ({"XDELE": "X", "TAXNUMS": "bad"}, rejects.BAD_RECORD),                         # bad_record first
])
def test_company_rejects(over: dict[str, Any], reason: str) -> None:
    company = run(partner(**over))[0]
    assert isinstance(company, Reject)
    assert (company.kind, company.reason) == ("company", reason)
    assert company.detail


@pytest.mark.parametrize("over, field", [
    ({"TAXNUMS": "x"}, "TAXNUMS:"),
    ({"TAXNUMS": [{"TAXTYPE": "RU1", "TAXNUM": "1"}, 5]}, "TAXNUMS[1]:"),
    ({"COMM": {"PHONE": [{"TEL_NUMBER": "1"}, {"TEL_NUMBER": "x" * 10_000}]}}, "COMM.PHONE[1].TEL_NUMBER:"),
    ({"BANKS": [{"BANKN": {}}]}, "BANKS[0].BANKN:"),
    ({"ADDRESS": {"CITY1": []}}, "ADDRESS.CITY1:"),
    ({"CHANGED_AT": "soon"}, "CHANGED_AT:"),
])
def test_bad_record_detail_names_the_field(over: dict[str, Any], field: str) -> None:
    company = run(partner(**over))[0]
    assert company.reason == rejects.BAD_RECORD
    assert company.detail.startswith(field)


def test_records_that_are_not_partners() -> None:
    out = run("junk", None, [1, 2], 3.5)
    assert [(r.source_id, r.kind, r.reason) for r in out] == [
        ("#0", "record", rejects.BAD_RECORD), ("#1", "record", rejects.BAD_RECORD),
        ("#2", "record", rejects.BAD_RECORD), ("#3", "record", rejects.BAD_RECORD)]


def test_contact_rejects_in_rule_order() -> None:
    out = run(partner(CONTACTS=[
        person("0002000001"),
        person("0002000002", XDELE="X"),
        person("0002000003", NAME_LAST="", NAME_FIRST=None, NAME_MIDDLE="", COMM={"PHONE": [{"TEL_NUMBER": "нет"}],
                                                                                 "EMAIL": [{"SMTP_ADDR": "x@"}]}),
        person("0002000004", NAME_LAST="", NAME_FIRST="", NAME_MIDDLE="", COMM=None),
        "not a contact",
        person("", NAME_LAST="Сидоров"),
        person("0002000007", COMM=["8 495 1234567"]),
        person("0002000008", NAME_LAST=None, NAME_FIRST=None, NAME_MIDDLE=None,
               COMM={"EMAIL": [{"SMTP_ADDR": "only@mail.ru"}]}),
    ]))
    company, *contacts = out
    assert isinstance(company, Company)
    got = [(c.source_id, c.reason if isinstance(c, Reject) else "loaded") for c in contacts]
    assert got == [
        ("0002000001", "loaded"),
        ("0002000002", rejects.SOURCE_DELETED),
        ("0002000003", "loaded"),   # empty contacts are handed on: the pipeline rejects them
        ("0002000004", "loaded"),   # contact_empty once it knows the company loads
        ("0001000123/4", rejects.BAD_RECORD),
        ("0001000123/5", rejects.BAD_RECORD),
        ("0002000007", rejects.BAD_RECORD),
        ("0002000008", "loaded"),
    ]
    assert contacts[6].detail.startswith("CONTACTS[6].COMM:")


@pytest.mark.parametrize("over, company_reason", [
    ({"STATUS": "E0003"}, rejects.SOURCE_INACTIVE),
    ({"XDELE": "X"}, rejects.SOURCE_DELETED),
    ({"TAXNUMS": []}, rejects.NO_INN),
    ({"BANKS": "x"}, rejects.BAD_RECORD),
])
def test_contacts_of_a_rejected_company(over: dict[str, Any], company_reason: str) -> None:
    contacts = [person("0002000001"), person("0002000002", XDELE="X"), person("0002000003", NAME_LAST={"x": 1})]
    out = run(partner(**over, CONTACTS=contacts))
    assert out[0].reason == company_reason
    assert [(r.source_id, r.kind, r.reason, r.detail) for r in out[1:]] == [
        ("0002000001", "contact", rejects.COMPANY_REJECTED, company_reason),
        ("0002000002", "contact", rejects.SOURCE_DELETED, "XDELE = X"),                 # deleted first
        ("0002000003", "contact", rejects.BAD_RECORD, "CONTACTS[2].NAME_LAST: expected text, got an object"),
    ]


def test_contact_with_its_own_bad_field() -> None:
    out = run(partner(STATUS="E0003", CONTACTS=[person("0002000003", NAME_LAST={"x": 1})]))
    assert (out[1].reason, out[1].detail) == (rejects.BAD_RECORD, "CONTACTS[0].NAME_LAST: expected text, got an object")


def _nulls_everywhere(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: None for k in value}
    return value


WEIRD = [None, 0, 1.5, True, "", "\x00", "x" * 20_000, [], {}, [None], [{}], {"a": None}, "\ud800"]


@pytest.mark.parametrize("value", WEIRD, ids=lambda v: type(v).__name__)
def test_weird_values_anywhere_never_raise(value: Any) -> None:
    records = []
    for key in EXAMPLE:
        records.append(partner(**{key: value}))
        records.append(partner(CONTACTS=[person(**{key2: value}) for key2 in EXAMPLE["CONTACTS"][0]]))
        for sub in ("COMM", "ADDRESS"):
            nested = copy.deepcopy(EXAMPLE[sub])
            for k in nested:
                nested[k] = value
            records.append(partner(**{sub: nested}))
    records.append({k: None for k in EXAMPLE})
    records.append(partner(CONTACTS=[_nulls_everywhere(EXAMPLE["CONTACTS"][0])]))
    for out in ShopBTransformer("shop-b").transform(records):
        assert isinstance(out, (Company, Contact, Reject))
        if isinstance(out, Reject):
            assert out.detail and out.source_id


def test_events() -> None:
    t = ShopBTransformer("shop-b")
    created = list(t.transform_event({"event_id": "e1", "event_type": "BP_CREATED", "partner": EXAMPLE}))
    changed = list(t.transform_event({"event_id": "e2", "event_type": "BP_CHANGED", "partner": EXAMPLE,
                                      "occurred_at": "2024-01-15T10:30:00Z"}))
    assert created == changed == run(EXAMPLE)
    [deleted] = t.transform_event({"event_id": "e3", "event_type": "BP_DELETED",
                                   "partner": {"PARTNER": "0001000123"}})
    assert (deleted.source_id, deleted.kind, deleted.reason) == ("0001000123", "company", rejects.SOURCE_DELETED)
    assert "e3" in deleted.detail


@pytest.mark.parametrize("event", [
    {"event_id": "e4", "event_type": "BP_MERGED", "partner": {"PARTNER": "0001000123"}},
    {"event_id": "e5", "event_type": None, "partner": None},
    {"event_id": "e6", "event_type": "BP_CHANGED", "partner": "0001000123"},
    {"event_id": "e7", "event_type": "BP_DELETED", "partner": {}},
    {"event_type": "BP_DELETED"},
    "BP_DELETED",
    None,
])
def test_bad_events(event: Any) -> None:
    [r] = ShopBTransformer("shop-b").transform_event(event)
    assert isinstance(r, Reject) and r.reason == rejects.BAD_RECORD and r.detail


def test_event_values_in_the_record_stream() -> None:
    out = run({"event_id": "e1", "event_type": "BP_DELETED", "partner": {"PARTNER": "0001000777"}}, EXAMPLE)
    assert (out[0].source_id, out[0].reason) == ("0001000777", rejects.SOURCE_DELETED)
    assert isinstance(out[1], Company)
