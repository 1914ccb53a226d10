"""Bitrix24 emulator, CRM methods over HTTP: companies, contacts, multifields, lists (paging, filters,
order, select), contact-company links, requisites, presets, bank details, addresses, findbycomm.
"""
from __future__ import annotations

import requests


def call(server, method: str, params: dict | None = None) -> requests.Response:
    return requests.post(server.webhook_url + method, json=params or {}, timeout=10)


def ok(server, method: str, params: dict | None = None):
    r = call(server, method, params)
    assert r.status_code == 200, r.text
    return r.json()


def fail(server, method: str, params: dict | None = None, status: int = 400) -> dict:
    r = call(server, method, params)
    assert r.status_code == status, r.text
    assert "time" not in r.json()
    return r.json()


def add_companies(server, n: int, **extra) -> list[int]:
    ids: list[int] = []
    for start in range(0, n, 50):
        cmd = {f"c{i}": f"crm.company.add?fields[TITLE]=Company%20{i:03d}&fields[ORIGIN_ID]=o{i}"
                        + "".join(f"&fields[{k}]={v}" for k, v in extra.items())
               for i in range(start, min(n, start + 50))}
        body = ok(server, "batch", {"cmd": cmd})["result"]
        assert body["result_error"] == []
        ids += list(body["result"].values())
    return ids


# --- companies ----------------------------------------------------------------------------------------

def test_company_add_returns_int_and_get_returns_strings(bitrix24):
    body = ok(bitrix24, "crm.company.add", {"fields": {
        "TITLE": "ООО «Рога и копыта»", "COMPANY_TYPE": "PARTNER", "ASSIGNED_BY_ID": 7, "REVENUE": 1500.5,
        "ORIGINATOR_ID": "shop_a", "ORIGIN_ID": "42", "ORIGIN_VERSION": "3", "UF_CRM_INN": "7701234567",
        "NO_SUCH_FIELD": "dropped", "DATE_CREATE": "2001-01-01T00:00:00+03:00", "ID": 999}})
    company_id = body["result"]
    assert isinstance(company_id, int) and company_id == 1
    company = ok(bitrix24, "crm.company.get", {"id": company_id})["result"]
    assert company["ID"] == "1"
    assert company["TITLE"] == "ООО «Рога и копыта»"
    assert company["COMPANY_TYPE"] == "PARTNER"
    assert company["ASSIGNED_BY_ID"] == "7" and company["CREATED_BY_ID"] == "1"
    assert company["REVENUE"] == "1500.5"
    assert (company["ORIGINATOR_ID"], company["ORIGIN_ID"], company["ORIGIN_VERSION"]) == ("shop_a", "42", "3")
    assert company["UF_CRM_INN"] == "7701234567"
    assert company["OPENED"] == "Y" and company["HAS_PHONE"] == "N"
    assert "NO_SUCH_FIELD" not in company
    assert not company["DATE_CREATE"].startswith("2001")  # read-only without params[IMPORT]=Y
    assert company["COMMENTS"] is None
    assert "PHONE" not in company  # multifields only when filled


def test_import_mode_allows_dates(bitrix24):
    company_id = ok(bitrix24, "crm.company.add", {"fields": {"TITLE": "Old", "DATE_CREATE": "2001-02-03T04:05:06+03:00"},
                                                  "params": {"IMPORT": "Y"}})["result"]
    assert ok(bitrix24, "crm.company.get", {"id": company_id})["result"]["DATE_CREATE"] == "2001-02-03T04:05:06+03:00"


def test_company_title_is_required(bitrix24):
    err = fail(bitrix24, "crm.company.add", {"fields": {"COMMENTS": "no title"}})
    assert err == {"error": "ERROR_CORE", "error_description": "The required field 'Company Name' is missing.<br />"}
    assert ok(bitrix24, "crm.company.list")["total"] == 0


def test_fields_must_be_an_array(bitrix24):
    err = fail(bitrix24, "crm.company.add", {"fields": "TITLE=x"})
    assert err == {"error": "", "error_description": "Parameter 'fields' must be array."}


def test_get_and_update_of_missing_or_invalid_ids(bitrix24):
    assert fail(bitrix24, "crm.company.get", {"id": 5}) == {"error": "", "error_description": "Not found"}
    assert fail(bitrix24, "crm.company.update", {"id": 5, "fields": {"TITLE": "x"}})["error_description"] == \
        "Company is not found"
    assert fail(bitrix24, "crm.contact.update", {"id": 5, "fields": {"NAME": "x"}})["error_description"] == \
        "Contact is not found"
    assert fail(bitrix24, "crm.company.get", {"id": "abc"})["error_description"] == "ID is not defined or invalid."
    assert fail(bitrix24, "crm.company.get")["error_description"] == "ID is not defined or invalid."


def test_update_changes_given_fields_only(bitrix24):
    company_id = ok(bitrix24, "crm.company.add", {"fields": {"TITLE": "Before", "COMMENTS": "keep"}})["result"]
    before = ok(bitrix24, "crm.company.get", {"ID": company_id})["result"]
    assert ok(bitrix24, "crm.company.update", {"id": company_id, "fields": {"TITLE": "After", "BOGUS": 1}})["result"] is True
    after = ok(bitrix24, "crm.company.get", {"ID": company_id})["result"]
    assert (after["TITLE"], after["COMMENTS"]) == ("After", "keep")
    assert after["DATE_CREATE"] == before["DATE_CREATE"]
    err = fail(bitrix24, "crm.company.update", {"id": company_id, "fields": {"TITLE": ""}})
    assert err["error"] == "ERROR_CORE"


def test_company_fields_describes_types_and_user_fields(bitrix24):
    ok(bitrix24, "crm.company.add", {"fields": {"TITLE": "x", "UF_CRM_SHOP": "A"}})
    fields = ok(bitrix24, "crm.company.fields")["result"]
    assert fields["TITLE"]["isRequired"] is True and fields["TITLE"]["type"] == "string"
    assert fields["ID"]["isReadOnly"] is True
    assert fields["PHONE"]["type"] == "crm_multifield" and fields["PHONE"]["isMultiple"] is True
    assert fields["COMPANY_TYPE"]["statusType"] == "COMPANY_TYPE"
    assert fields["UF_CRM_SHOP"]["isDynamic"] is True
    assert ok(bitrix24, "crm.contact.fields")["result"]["LAST_NAME"]["type"] == "string"


# --- multifields ----------------------------------------------------------------------------------------

def test_multifields_append_overwrite_and_delete(bitrix24):
    company_id = ok(bitrix24, "crm.company.add", {"fields": {"TITLE": "M", "PHONE": [
        {"VALUE": "+74950000001", "VALUE_TYPE": "WORK"}, {"VALUE": ""}, {"VALUE": "+74950000002"}]}})["result"]
    phones = ok(bitrix24, "crm.company.get", {"id": company_id})["result"]["PHONE"]
    assert [(p["VALUE"], p["VALUE_TYPE"], p["TYPE_ID"]) for p in phones] == [
        ("+74950000001", "WORK", "PHONE"), ("+74950000002", "WORK", "PHONE")]
    first, second = phones[0]["ID"], phones[1]["ID"]
    assert first.isdigit()

    # re-sending a value without ID appends it (duplicates are the caller's problem)
    ok(bitrix24, "crm.company.update", {"id": company_id, "fields": {"PHONE": [{"VALUE": "+74950000001"}]}})
    assert len(ok(bitrix24, "crm.company.get", {"id": company_id})["result"]["PHONE"]) == 3

    ok(bitrix24, "crm.company.update", {"id": company_id, "fields": {"PHONE": [
        {"ID": first, "VALUE": "+74950000009", "VALUE_TYPE": "MOBILE"},
        {"ID": second, "VALUE": ""}]}})
    phones = ok(bitrix24, "crm.company.get", {"id": company_id})["result"]["PHONE"]
    assert [(p["ID"], p["VALUE"], p["VALUE_TYPE"]) for p in phones][0] == (first, "+74950000009", "MOBILE")
    assert second not in [p["ID"] for p in phones]

    ok(bitrix24, "crm.company.update", {"id": company_id, "fields": {"PHONE": [
        {"ID": p["ID"], "VALUE": p["VALUE"], "DELETE": "Y"} for p in phones]}})
    company = ok(bitrix24, "crm.company.get", {"id": company_id})["result"]
    assert "PHONE" not in company and company["HAS_PHONE"] == "N"


def test_multifield_ids_of_other_entities_are_ignored(bitrix24):
    a = ok(bitrix24, "crm.company.add", {"fields": {"TITLE": "A", "PHONE": [{"VALUE": "+74950000001"}]}})["result"]
    b = ok(bitrix24, "crm.company.add", {"fields": {"TITLE": "B"}})["result"]
    foreign = ok(bitrix24, "crm.company.get", {"id": a})["result"]["PHONE"][0]["ID"]
    ok(bitrix24, "crm.company.update", {"id": b, "fields": {"PHONE": [{"ID": foreign, "DELETE": "Y"}]}})
    assert len(ok(bitrix24, "crm.company.get", {"id": a})["result"]["PHONE"]) == 1


def test_invalid_email_is_error_core_and_nothing_is_written(bitrix24):
    err = fail(bitrix24, "crm.contact.add", {"fields": {"NAME": "Ivan", "EMAIL": [{"VALUE": "not-an-email"}]}})
    assert err["error"] == "ERROR_CORE"
    assert "E-mail" in err["error_description"]
    assert ok(bitrix24, "crm.contact.list")["total"] == 0


# --- contacts and links -----------------------------------------------------------------------------------

def test_contact_add_get_with_companies(bitrix24):
    c1 = ok(bitrix24, "crm.company.add", {"fields": {"TITLE": "One"}})["result"]
    c2 = ok(bitrix24, "crm.company.add", {"fields": {"TITLE": "Two"}})["result"]
    contact_id = ok(bitrix24, "crm.contact.add", {"fields": {
        "NAME": "Иван", "SECOND_NAME": "Петрович", "LAST_NAME": "Сидоров", "POST": "CEO",
        "COMPANY_IDS": [c2, c1, 999], "EMAIL": [{"VALUE": "ivan@example.ru", "VALUE_TYPE": "WORK"}]}})["result"]
    contact = ok(bitrix24, "crm.contact.get", {"id": contact_id})["result"]
    assert (contact["NAME"], contact["SECOND_NAME"], contact["LAST_NAME"], contact["POST"]) == \
        ("Иван", "Петрович", "Сидоров", "CEO")
    assert contact["COMPANY_ID"] == str(c2)
    assert "COMPANY_IDS" not in contact
    assert contact["EMAIL"][0]["VALUE"] == "ivan@example.ru" and contact["HAS_EMAIL"] == "Y"
    items = ok(bitrix24, "crm.contact.company.items.get", {"id": contact_id})["result"]
    assert [(i["COMPANY_ID"], i["IS_PRIMARY"]) for i in items] == [(c2, "Y"), (c1, "N")]
    listed = ok(bitrix24, "crm.contact.list", {"filter": {"COMPANY_ID": c2}})
    assert [c["ID"] for c in listed["result"]] == [str(contact_id)]


def test_contact_company_add_items_set_items_get(bitrix24):
    c1, c2, c3 = (ok(bitrix24, "crm.company.add", {"fields": {"TITLE": t}})["result"] for t in "ABC")
    contact_id = ok(bitrix24, "crm.contact.add", {"fields": {"NAME": "Anna"}})["result"]
    assert ok(bitrix24, "crm.contact.company.items.get", {"id": contact_id})["result"] == []
    assert ok(bitrix24, "crm.contact.company.add", {"id": contact_id, "fields": {"COMPANY_ID": c1}})["result"] is True
    assert ok(bitrix24, "crm.contact.company.add", {"id": contact_id, "fields": {"COMPANY_ID": c1}})["result"] is False
    ok(bitrix24, "crm.contact.company.add", {"id": contact_id, "fields": {"COMPANY_ID": c2, "IS_PRIMARY": "Y"}})
    items = ok(bitrix24, "crm.contact.company.items.get", {"id": contact_id})["result"]
    assert [(i["COMPANY_ID"], i["SORT"], i["ROLE_ID"], i["IS_PRIMARY"]) for i in items] == [
        (c1, 10, 0, "N"), (c2, 20, 0, "Y")]
    assert ok(bitrix24, "crm.contact.get", {"id": contact_id})["result"]["COMPANY_ID"] == str(c2)
    ok(bitrix24, "crm.contact.company.items.set", {"id": contact_id, "items": [
        {"COMPANY_ID": c3, "SORT": 100}, {"COMPANY_ID": c1, "SORT": 200}]})
    items = ok(bitrix24, "crm.contact.company.items.get", {"id": contact_id})["result"]
    assert [(i["COMPANY_ID"], i["IS_PRIMARY"]) for i in items] == [(c3, "Y"), (c1, "N")]
    assert fail(bitrix24, "crm.contact.company.items.set", {"id": contact_id, "items": "x"})["error_description"] == \
        "The parameter items must be array"
    assert fail(bitrix24, "crm.contact.company.add", {"id": 0, "fields": {"COMPANY_ID": c1}})["error_description"] == \
        "The parameter ownerEntityID is invalid or not defined"


# --- lists ------------------------------------------------------------------------------------------------

def test_list_paging_total_next_and_start_floor(portal):
    add_companies(portal, 120)
    first = ok(portal, "crm.company.list", {"order": {"ID": "ASC"}})
    assert len(first["result"]) == 50 and first["total"] == 120 and first["next"] == 50
    assert first["result"][0]["ID"] == "1"
    second = ok(portal, "crm.company.list", {"order": {"ID": "ASC"}, "start": 70})  # floored to 50
    assert second["result"][0]["ID"] == "51" and second["next"] == 100
    last = ok(portal, "crm.company.list", {"order": {"ID": "ASC"}, "start": 100})
    assert len(last["result"]) == 20 and last["total"] == 120 and "next" not in last
    fast = ok(portal, "crm.company.list", {"order": {"ID": "ASC"}, "filter": {">ID": 100}, "start": -1})
    assert [r["ID"] for r in fast["result"]] == [str(i) for i in range(101, 121)]
    assert fast["total"] == 0 and "next" not in fast


def test_list_filters_with_prefixes(portal):
    add_companies(portal, 12)
    ok(portal, "crm.company.update", {"id": 3, "fields": {"COMMENTS": "VIP client"}})
    ok(portal, "crm.company.update", {"id": 4, "fields": {"ASSIGNED_BY_ID": 6}})

    def ids(filter_: dict) -> list[int]:
        return [int(r["ID"]) for r in ok(portal, "crm.company.list", {"filter": filter_, "order": {"ID": "ASC"}})["result"]]

    assert ids({">ID": 10}) == [11, 12]
    assert ids({">=ID": 11, "<ID": 12}) == [11]
    assert ids({"<=ID": "2"}) == [1, 2]
    assert ids({"@ID": [2, 5, 99]}) == [2, 5]
    assert ids({"!@ID": list(range(1, 11))}) == [11, 12]
    assert ids({"=ORIGIN_ID": "o7"}) == [8]
    assert ids({"ORIGIN_ID": "o7"}) == [8]
    assert ids({"!ORIGIN_ID": "o0", "<ID": 4}) == [2, 3]
    assert ids({"!=ORIGIN_ID": "o0", "<ID": 4}) == [2, 3]
    assert ids({"%TITLE": "company 01"}) == [11, 12]  # substring, case-insensitive
    assert ids({"%COMMENTS": "vip"}) == [3]
    assert ids({"@ASSIGNED_BY_ID": [1, 6], ">ID": 2, "<ID": 5}) == [3, 4]
    assert ids({"ASSIGNED_BY_ID": "6"}) == [4]
    assert ids({"NO_SUCH_FIELD": "x", "<ID": 3}) == [1, 2]  # unknown keys are ignored
    assert ids({"=COMMENTS": "", "<ID": 5}) == [1, 2, 4]


def test_list_order_desc_and_by_text(portal):
    add_companies(portal, 5)
    rows = ok(portal, "crm.company.list", {"order": {"ID": "DESC"}})["result"]
    assert [r["ID"] for r in rows] == ["5", "4", "3", "2", "1"]
    rows = ok(portal, "crm.company.list", {"order": {"TITLE": "desc"}, "select": ["TITLE"]})["result"]
    assert rows[0]["TITLE"] == "Company 004"


def test_list_select_default_scalars_multifields_only_when_named(portal):
    ok(portal, "crm.company.add", {"fields": {"TITLE": "S", "UF_CRM_A": "a", "PHONE": [{"VALUE": "+74951112233"}]}})
    default = ok(portal, "crm.company.list")["result"][0]
    assert default["TITLE"] == "S" and "PHONE" not in default and "UF_CRM_A" not in default
    assert "ASSIGNED_BY_ID" in default
    named = ok(portal, "crm.company.list", {"select": ["ID", "TITLE", "PHONE", "UF_*"]})["result"][0]
    assert set(named) == {"ID", "TITLE", "PHONE", "UF_CRM_A"}
    assert named["PHONE"][0]["VALUE"] == "+74951112233"


def test_list_filter_on_phone_and_email_is_exact(portal):
    ok(portal, "crm.contact.add", {"fields": {"NAME": "A", "PHONE": [{"VALUE": "+74951112233"}],
                                              "EMAIL": [{"VALUE": "a@example.ru"}]}})
    ok(portal, "crm.contact.add", {"fields": {"NAME": "B", "PHONE": [{"VALUE": "+74951112234"}]}})

    def names(filter_: dict) -> list[str]:
        return [r["NAME"] for r in ok(portal, "crm.contact.list", {"filter": filter_})["result"]]

    assert names({"PHONE": "+74951112233"}) == ["A"]
    assert names({"PHONE": "74951112233"}) == []
    assert names({"EMAIL": "a@example.ru"}) == ["A"]


def test_list_bad_filter_type(portal):
    err = fail(portal, "crm.company.list", {"filter": "x"})
    assert err == {"error": "", "error_description": "Parameter 'filter' must be array."}


# --- requisites, presets, bank details, addresses -----------------------------------------------------------

def test_presets_are_the_three_russian_templates(bitrix24):
    presets = ok(bitrix24, "crm.requisite.preset.list", {"order": {"ID": "ASC"}})["result"]
    assert [(p["ID"], p["XML_ID"], p["COUNTRY_ID"], p["ENTITY_TYPE_ID"]) for p in presets] == [
        ("1", "#CRM_REQUISITE_PRESET_DEF_RU_COMPANY#", "1", "8"),
        ("2", "#CRM_REQUISITE_PRESET_DEF_RU_INDIVIDUAL#", "1", "8"),
        ("3", "#CRM_REQUISITE_PRESET_DEF_RU_PERSON#", "1", "8")]
    found = ok(bitrix24, "crm.requisite.preset.list",
               {"filter": {"XML_ID": "#CRM_REQUISITE_PRESET_DEF_RU_INDIVIDUAL#"}, "select": ["ID"]})["result"]
    assert found == [{"ID": "2"}]


def test_requisite_add_update_list_and_errors(bitrix24):
    company_id = ok(bitrix24, "crm.company.add", {"fields": {"TITLE": "R"}})["result"]
    base = {"ENTITY_TYPE_ID": 4, "ENTITY_ID": company_id, "PRESET_ID": 1, "NAME": "Организация"}
    rq = {**base, "RQ_INN": "7701234567", "RQ_KPP": "770101001", "RQ_OGRN": "1027700000000",
          "RQ_COMPANY_NAME": "ООО «Р»", "RQ_COMPANY_FULL_NAME": "Общество «Р»", "UF_CRM_X": "u", "BOGUS": 1}
    requisite_id = ok(bitrix24, "crm.requisite.add", {"fields": rq})["result"]
    assert isinstance(requisite_id, int)
    rows = ok(bitrix24, "crm.requisite.list", {"filter": {"RQ_INN": "7701234567", "ENTITY_TYPE_ID": 4}})["result"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["ID"], row["ENTITY_ID"], row["PRESET_ID"], row["RQ_KPP"], row["UF_CRM_X"]) == \
        (str(requisite_id), str(company_id), "1", "770101001", "u")
    assert "BOGUS" not in row
    assert ok(bitrix24, "crm.requisite.update", {"id": requisite_id, "fields": {"RQ_KPP": "770201001"}})["result"] is True
    assert ok(bitrix24, "crm.requisite.list", {"filter": {"ID": requisite_id}, "select": ["RQ_KPP"]})["result"] == \
        [{"ID": str(requisite_id), "RQ_KPP": "770201001"}]

    def error(fields: dict) -> str:
        return fail(bitrix24, "crm.requisite.add", {"fields": fields})["error_description"]

    assert error({**base, "ENTITY_TYPE_ID": 2}) == "ENTITY_TYPE_ID is not defined or invalid."
    assert error({**base, "ENTITY_ID": 0}) == "ENTITY_ID is not defined or invalid."
    assert error({**base, "PRESET_ID": 77}) == "PRESET_ID is not defined or invalid."
    assert error({**base, "ENTITY_ID": 555}) == "Entity not found."
    assert fail(bitrix24, "crm.requisite.update", {"id": 999, "fields": {}})["error_description"] == \
        "The Requisite with ID '999' is not found"


def test_requisite_list_is_offset_paged(portal):
    company_id = ok(portal, "crm.company.add", {"fields": {"TITLE": "Many"}})["result"]
    for chunk in (range(0, 50), range(50, 60)):
        cmd = {f"r{i}": f"crm.requisite.add?fields[ENTITY_TYPE_ID]=4&fields[ENTITY_ID]={company_id}"
                        f"&fields[PRESET_ID]=1&fields[NAME]=N{i}&fields[RQ_INN]=77{i:08d}" for i in chunk}
        assert ok(portal, "batch", {"cmd": cmd})["result"]["result_error"] == []
    page = ok(portal, "crm.requisite.list", {"start": 7, "order": {"ID": "ASC"}})
    assert page["result"][0]["ID"] == "8" and page["total"] == 60 and page["next"] == 57
    assert "next" not in ok(portal, "crm.requisite.list", {"start": 57})


def test_bankdetail_and_address(bitrix24):
    company_id = ok(bitrix24, "crm.company.add", {"fields": {"TITLE": "Bank"}})["result"]
    requisite_id = ok(bitrix24, "crm.requisite.add", {"fields": {
        "ENTITY_TYPE_ID": 4, "ENTITY_ID": company_id, "PRESET_ID": 1, "NAME": "R"}})["result"]
    bank_id = ok(bitrix24, "crm.requisite.bankdetail.add", {"fields": {
        "ENTITY_ID": requisite_id, "NAME": "Основной счёт", "RQ_BIK": "044525225", "RQ_ACC_NUM": "40702810000000000001",
        "RQ_COR_ACC_NUM": "30101810400000000225", "RQ_BANK_NAME": "ПАО Сбербанк"}})["result"]
    assert isinstance(bank_id, int)
    rows = ok(bitrix24, "crm.requisite.bankdetail.list", {"filter": {"ENTITY_ID": requisite_id}})["result"]
    assert [(r["ID"], r["RQ_BIK"], r["COUNTRY_ID"]) for r in rows] == [(str(bank_id), "044525225", "1")]
    assert fail(bitrix24, "crm.requisite.bankdetail.add", {"fields": {"ENTITY_ID": 999, "NAME": "x"}})[
        "error_description"] == "ENTITY_ID is not defined or invalid."

    address = {"TYPE_ID": 6, "ENTITY_TYPE_ID": 8, "ENTITY_ID": requisite_id, "ADDRESS_1": "ул. Ленина, 1",
               "CITY": "Москва", "POSTAL_CODE": "101000", "COUNTRY": "Россия"}
    assert ok(bitrix24, "crm.address.add", {"fields": address})["result"] is True
    assert fail(bitrix24, "crm.address.add", {"fields": address})["error_description"] == "TypeAddress exists"
    assert fail(bitrix24, "crm.address.add", {"fields": {**address, "TYPE_ID": 2}})["error_description"] == \
        "TYPE_ID is not defined or invalid."
    listed = ok(bitrix24, "crm.address.list", {"filter": {"ENTITY_ID": requisite_id}})["result"]
    assert [(a["CITY"], a["ANCHOR_ID"], a["ANCHOR_TYPE_ID"]) for a in listed] == [("Москва", str(company_id), "4")]


# --- duplicates ------------------------------------------------------------------------------------------------

def test_findbycomm_matches_phones_whatever_the_formatting(bitrix24):
    company_id = ok(bitrix24, "crm.company.add", {"fields": {"TITLE": "D", "PHONE": [{"VALUE": "+7 (495) 123-45-67"}]}})["result"]
    contact_id = ok(bitrix24, "crm.contact.add", {"fields": {"NAME": "D", "PHONE": [{"VALUE": "84951234567 доб. 12"}],
                                                             "EMAIL": [{"VALUE": "Boss@Example.RU"}]}})["result"]
    found = ok(bitrix24, "crm.duplicate.findbycomm", {"type": "PHONE", "values": ["+74951234567"]})["result"]
    assert found == {"CONTACT": [contact_id], "COMPANY": [company_id]}
    found = ok(bitrix24, "crm.duplicate.findbycomm",
               {"type": "EMAIL", "values": ["boss@example.ru"], "entity_type": "CONTACT"})["result"]
    assert found == {"CONTACT": [contact_id]}
    assert ok(bitrix24, "crm.duplicate.findbycomm", {"type": "PHONE", "values": ["+79990000000"]})["result"] == []


def test_findbycomm_uses_only_the_first_20_values(bitrix24):
    ok(bitrix24, "crm.contact.add", {"fields": {"NAME": "Late", "EMAIL": [{"VALUE": "late@example.ru"}]}})
    values = [f"n{i}@example.ru" for i in range(20)] + ["late@example.ru"]
    assert ok(bitrix24, "crm.duplicate.findbycomm", {"type": "EMAIL", "values": values})["result"] == []


def test_findbycomm_errors(bitrix24):
    assert fail(bitrix24, "crm.duplicate.findbycomm", {"values": ["x"]})["error_description"] == \
        "Communication type is not defined"
    assert fail(bitrix24, "crm.duplicate.findbycomm", {"type": "WEB", "values": ["x"]})["error_description"] == \
        "Communication type 'WEB' is not supported in current context"
    assert fail(bitrix24, "crm.duplicate.findbycomm", {"type": "PHONE", "values": "x"})["error_description"] == \
        "Communication values is not defined"
