"""Bitrix24 emulator, `batch` over HTTP: the 50-command limit, halt, `$result`/`$next`/`$total`
references, command-string parsing and PHP's JSON shapes.
"""
from __future__ import annotations

import requests


def batch(server, cmd, halt: int | bool = 0, **extra) -> dict:
    r = requests.post(server.webhook_url + "batch", json={"halt": halt, "cmd": cmd, **extra}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"result", "time"}
    return body["result"]


def call(server, method: str, params: dict | None = None) -> dict:
    r = requests.post(server.webhook_url + method, json=params or {}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_response_shape_and_php_empty_arrays(bitrix24):
    out = batch(bitrix24, {"c1": "crm.company.add?fields[TITLE]=A"})
    assert list(out) == ["result", "result_error", "result_total", "result_next", "result_time"]
    assert out["result"] == {"c1": 1}
    assert out["result_error"] == [] and out["result_total"] == [] and out["result_next"] == []
    assert set(out["result_time"]["c1"]) >= {"start", "finish", "duration", "processing", "operating"}


def test_numeric_keys_from_zero_make_a_list(bitrix24):
    out = batch(bitrix24, ["crm.company.add?fields[TITLE]=A", "crm.company.add?fields[TITLE]=B"])
    assert out["result"] == [1, 2]
    out = batch(bitrix24, {"1": "crm.company.add?fields[TITLE]=C", "2": "crm.company.add?fields[TITLE]=D"})
    assert out["result"] == {"1": 3, "2": 4}


def test_51_commands_run_50_and_the_rest_get_length_exceeded(portal):
    cmd = {f"c{i:02d}": f"crm.company.add?fields[TITLE]=C{i}" for i in range(53)}
    out = batch(portal, cmd)
    assert len(out["result"]) == 50
    assert set(out["result_error"]) == {"c50", "c51", "c52"}
    assert out["result_error"]["c50"] == {"error": "ERROR_BATCH_LENGTH_EXCEEDED",
                                          "error_description": "Max batch length exceeded"}
    assert call(portal, "crm.company.list")["total"] == 50
    stats = requests.get(portal.url + "/_sandbox/stats", timeout=10).json()
    assert stats["batch_commands"] == 50 and stats["methods"]["crm.company.add"] == 50


def test_halt_stops_after_the_first_error(bitrix24):
    cmd = {"a": "crm.company.add?fields[TITLE]=A", "b": "crm.company.get?id=999", "c": "crm.company.add?fields[TITLE]=C"}
    out = batch(bitrix24, cmd, halt=1)
    assert out["result"] == {"a": 1}
    assert out["result_error"] == {"b": {"error": "", "error_description": "Not found"}}
    assert set(out["result_time"]) == {"a"}
    out = batch(bitrix24, cmd, halt=0)
    assert set(out["result"]) == {"a", "c"} and set(out["result_error"]) == {"b"}


def test_references_chain_company_requisite_bankdetail_address(bitrix24):
    out = batch(bitrix24, {
        "company": "crm.company.add?fields[TITLE]=ACME&fields[PHONE][0][VALUE]=%2B74951234567",
        "requisite": "crm.requisite.add?fields[ENTITY_TYPE_ID]=4&fields[ENTITY_ID]=$result[company]"
                     "&fields[PRESET_ID]=1&fields[NAME]=ACME&fields[RQ_INN]=7701234567",
        "bank": "crm.requisite.bankdetail.add?fields[ENTITY_ID]=$result[requisite]&fields[NAME]=Main"
                "&fields[RQ_BIK]=044525225",
        "address": "crm.address.add?fields[TYPE_ID]=6&fields[ENTITY_TYPE_ID]=8&fields[ENTITY_ID]=$result[requisite]"
                   "&fields[CITY]=Moscow",
        "check": "crm.requisite.list?filter[ENTITY_ID]=$result[company]&select[]=ID&select[]=RQ_INN",
    }, halt=1)
    assert out["result_error"] == []
    company_id, requisite_id = out["result"]["company"], out["result"]["requisite"]
    assert out["result"]["address"] is True
    assert out["result"]["check"] == [{"ID": str(requisite_id), "RQ_INN": "7701234567"}]
    assert out["result_total"] == {"check": 1}
    banks = call(bitrix24, "crm.requisite.bankdetail.list", {"filter": {"ENTITY_ID": requisite_id}})["result"]
    assert len(banks) == 1 and banks[0]["ID"] == str(out["result"]["bank"])
    phone = call(bitrix24, "crm.company.get", {"id": company_id})["result"]["PHONE"][0]["VALUE"]
    assert phone == "+74951234567"


def test_reference_into_list_rows_and_embedded_scalars(bitrix24):
    out = batch(bitrix24, {
        "a": "crm.company.add?fields[TITLE]=First",
        "find": "crm.company.list?filter[TITLE]=First&select[]=ID&select[]=TITLE",
        "b": "crm.company.add?fields[TITLE]=Copy of $result[find][0][TITLE]&fields[COMMENTS]=id-$result[a]-lost tail",
    })
    assert out["result_error"] == []
    copy = call(bitrix24, "crm.company.get", {"id": out["result"]["b"]})["result"]
    assert copy["TITLE"] == "Copy of First"
    # the reference swallows everything up to the next whitespace: "-lost" disappears
    assert copy["COMMENTS"] == f"id-{out['result']['a']} tail"


def test_whole_value_reference_substitutes_arrays_embedded_leaves_them(bitrix24):
    out = batch(bitrix24, {
        "a": "crm.company.add?fields[TITLE]=Template&fields[COMMENTS]=from template",
        "g": "crm.company.get?id=$result[a]",
        "clone": "crm.company.add?fields=$result[g]",
        "text": "crm.company.add?fields[TITLE]=Keep $result[g] here",
    })
    assert out["result_error"] == []
    clone = call(bitrix24, "crm.company.get", {"id": out["result"]["clone"]})["result"]
    assert (clone["TITLE"], clone["COMMENTS"]) == ("Template", "from template")
    text = call(bitrix24, "crm.company.get", {"id": out["result"]["text"]})["result"]
    assert text["TITLE"] == "Keep $result[g] here"


def test_missing_reference_gives_garbage_not_an_error(bitrix24):
    out = batch(bitrix24, {
        "a": "crm.company.add?fields[TITLE]=A",
        "r": "crm.requisite.add?fields[ENTITY_TYPE_ID]=4&fields[ENTITY_ID]=$result[nope]&fields[PRESET_ID]=1&fields[NAME]=R",
    })
    assert out["result_error"]["r"]["error_description"] == "ENTITY_ID is not defined or invalid."


def test_next_and_total_references_page_a_list(portal):
    batch(portal, {f"c{i}": f"crm.company.add?fields[TITLE]=C{i}" for i in range(50)})
    batch(portal, {f"c{i}": f"crm.company.add?fields[TITLE]=C{i}" for i in range(50, 60)})
    out = batch(portal, {
        "p1": "crm.company.list?order[ID]=ASC&select[]=ID",
        "p2": "crm.company.list?order[ID]=ASC&select[]=ID&start=$next[p1]",
        "count": "crm.company.list?select[]=ID&filter[>ID]=$total[p1]",
    })
    assert out["result_next"] == {"p1": 50}
    assert out["result_total"] == {"p1": 60, "p2": 60, "count": 0}
    assert [r["ID"] for r in out["result"]["p2"]] == [str(i) for i in range(51, 61)]
    assert out["result"]["count"] == []


def test_nested_batch_and_unknown_methods_fail_per_command(bitrix24):
    out = batch(bitrix24, {"inner": "batch?cmd[x]=crm.company.list", "bad": "crm.nothing.here",
                           "good": "crm.company.list"})
    assert out["result_error"]["inner"] == {"error": "ERROR_BATCH_METHOD_NOT_ALLOWED",
                                            "error_description": "Method is not allowed for batch usage"}
    assert out["result_error"]["bad"]["error"] == "ERROR_METHOD_NOT_FOUND"
    assert out["result"] == {"good": []}


def test_command_strings_are_parse_str_plus_is_space_hash_ends_query(bitrix24):
    out = batch(bitrix24, {
        "plus": "crm.company.add?fields[TITLE]=A+B&fields[COMMENTS]=%2B7 495",
        "hash": "crm.company.add?fields[TITLE]=Before#after&fields[COMMENTS]=lost",
        "upper": "CRM.COMPANY.ADD?fields[TITLE]=Upper",
    }, HALT=0)
    assert out["result_error"] == []
    plus = call(bitrix24, "crm.company.get", {"id": out["result"]["plus"]})["result"]
    assert (plus["TITLE"], plus["COMMENTS"]) == ("A B", "+7 495")
    hashed = call(bitrix24, "crm.company.get", {"id": out["result"]["hash"]})["result"]
    assert (hashed["TITLE"], hashed["COMMENTS"]) == ("Before", None)


def test_form_encoded_batch_is_double_encoded(bitrix24):
    r = requests.post(bitrix24.webhook_url + "batch",
                      data={"CMD[x]": "crm.company.add?fields[TITLE]=A%2BB%26C", "halt": "0"}, timeout=10)
    company_id = r.json()["result"]["result"]["x"]
    assert call(bitrix24, "crm.company.get", {"id": company_id})["result"]["TITLE"] == "A+B&C"


def test_non_string_commands_are_skipped(bitrix24):
    out = batch(bitrix24, {"num": 5, "obj": {"method": "crm.company.list"}, "ok": "crm.company.list"})
    assert out["result"] == {"ok": []} and out["result_error"] == []
