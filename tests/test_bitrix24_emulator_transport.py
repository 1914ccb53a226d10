"""Bitrix24 emulator, transport level: webhook URLs and credentials, parameter parsing, the envelope,
the request-rate and operating-time limits, fault injection, persistence, admin routes and the CLI.
Everything goes over real HTTP with `requests`, as a client would.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from etl.sandbox.bitrix24 import start_bitrix24
from etl.sandbox.faults import FaultSpec
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]


def call(server, method: str, params: dict | None = None) -> requests.Response:
    return requests.post(server.webhook_url + method, json=params or {}, timeout=10)


def add_company(server, title: str = "ACME", **fields) -> int:
    r = call(server, "crm.company.add", {"fields": {"TITLE": title, **fields}})
    assert r.status_code == 200, r.text
    return r.json()["result"]


def configure(server, **changes) -> dict:
    r = requests.post(server.url + "/_sandbox/config", json=changes, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


# --- URLs, credentials, envelope --------------------------------------------------------------

def test_webhook_url_names_user_and_code(bitrix24):
    assert bitrix24.webhook_url.startswith(bitrix24.url + "/rest/1/")
    assert bitrix24.webhook_url.endswith("/")
    assert len(bitrix24.webhook_url.rstrip("/").rsplit("/", 1)[1]) >= 8


def test_wrong_code_gets_invalid_credentials(bitrix24):
    bad = bitrix24.webhook_url.replace("/rest/1/", "/rest/1/x").rstrip("/") + "wrong/"
    r = requests.post(bad + "crm.company.list", json={}, timeout=10)
    assert r.status_code == 401
    assert r.json() == {"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"}


def test_wrong_user_id_gets_invalid_credentials(bitrix24):
    r = requests.get(bitrix24.webhook_url.replace("/rest/1/", "/rest/2/") + "crm.company.list", timeout=10)
    assert r.status_code == 401
    assert r.json()["error"] == "INVALID_CREDENTIALS"


def test_call_without_webhook_gets_no_auth_found(bitrix24):
    r = requests.get(bitrix24.url + "/rest/crm.company.list.json", timeout=10)
    assert r.status_code == 401
    assert r.json() == {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}


def test_unknown_method_is_404_method_not_found(bitrix24):
    r = call(bitrix24, "crm.company.frobnicate")
    assert r.status_code == 404
    assert r.json() == {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}


def test_method_names_are_case_insensitive_and_json_suffix_optional(bitrix24):
    company_id = add_company(bitrix24)
    for name in ("crm.company.get", "CRM.Company.Get", "crm.company.get.json"):
        r = call(bitrix24, name, {"id": company_id})
        assert r.status_code == 200, name
        assert r.json()["result"]["ID"] == str(company_id)


def test_success_has_time_block_and_errors_have_none(bitrix24):
    r = call(bitrix24, "crm.company.add", {"fields": {"TITLE": "T"}})
    body = r.json()
    assert set(body) == {"result", "time"}
    t = body["time"]
    assert set(t) == {"start", "finish", "duration", "processing", "date_start", "date_finish",
                      "operating", "operating_reset_at"}
    assert t["finish"] >= t["start"] and t["duration"] >= 0
    assert t["date_start"][:4].isdigit() and t["date_start"][-6] in "+-"
    err = call(bitrix24, "crm.company.get", {"id": 999}).json()
    assert err == {"error": "", "error_description": "Not found"}


def test_rotated_code_invalidates_the_old_webhook(bitrix24):
    old = bitrix24.webhook_url
    assert requests.get(old + "crm.company.list", timeout=10).status_code == 200
    new = configure(bitrix24, rotate_code=True)["webhook_url"]
    assert new != old and new == bitrix24.webhook_url
    assert requests.get(old + "crm.company.list", timeout=10).json()["error"] == "INVALID_CREDENTIALS"
    assert requests.get(new + "crm.company.list", timeout=10).status_code == 200
    configure(bitrix24, invalidate_code=True)
    r = requests.get(new + "crm.company.list", timeout=10)
    assert (r.status_code, r.json()["error"]) == (401, "INVALID_CREDENTIALS")


# --- parameter parsing (reference §1.2) ----------------------------------------------------------

def _get(server, company_id: int) -> dict:
    return call(server, "crm.company.get", {"id": company_id}).json()["result"]


def test_query_string_nested_arrays_and_plus_as_space(bitrix24):
    qs = ("fields[TITLE]=Horns+%26+Hooves&fields[PHONE][0][VALUE]=%2B74951234567"
          "&fields[PHONE][0][VALUE_TYPE]=MOBILE&fields[EMAIL][][VALUE]=a%40b.ru&fields[COMMENTS]=x+y")
    r = requests.get(bitrix24.webhook_url + "crm.company.add?" + qs, timeout=10)
    company = _get(bitrix24, r.json()["result"])
    assert company["TITLE"] == "Horns & Hooves"
    assert company["COMMENTS"] == "x y"
    assert [(p["VALUE"], p["VALUE_TYPE"]) for p in company["PHONE"]] == [("+74951234567", "MOBILE")]
    assert company["EMAIL"][0]["VALUE"] == "a@b.ru"


def test_form_body_is_parsed_like_parse_str(bitrix24):
    r = requests.post(bitrix24.webhook_url + "crm.company.add",
                      data={"fields[TITLE]": "Form Co", "fields[PHONE][0][VALUE]": "+7 495 000-00-01"}, timeout=10)
    company = _get(bitrix24, r.json()["result"])
    assert company["TITLE"] == "Form Co"
    assert company["PHONE"][0]["VALUE"] == "+7 495 000-00-01"


def test_multipart_form_body_is_read(bitrix24):
    r = requests.post(bitrix24.webhook_url + "crm.company.add",
                      files={"fields[TITLE]": (None, "Multipart Co"), "fields[COMMENTS]": (None, "a+b")}, timeout=10)
    company = _get(bitrix24, r.json()["result"])
    assert (company["TITLE"], company["COMMENTS"]) == ("Multipart Co", "a+b")


def test_body_overrides_query_key_by_key(bitrix24):
    r = requests.post(bitrix24.webhook_url + "crm.company.add?fields[TITLE]=FromQuery&params[X]=1",
                      json={"fields": {"TITLE": "FromBody"}}, timeout=10)
    assert _get(bitrix24, r.json()["result"])["TITLE"] == "FromBody"


def test_json_body_without_json_content_type_is_misread(bitrix24):
    r = requests.post(bitrix24.webhook_url + "crm.company.add", data=b'{"fields": {"TITLE": "X"}}',
                      headers={"Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 400
    assert r.json() == {"error": "", "error_description": "Parameter 'fields' must be array."}


def test_invalid_json_counts_as_no_parameters(bitrix24):
    r = requests.post(bitrix24.webhook_url + "crm.company.add?fields[TITLE]=FromQuery", data=b"{not json",
                      headers={"Content-Type": "application/json; charset=utf-8"}, timeout=10)
    assert r.status_code == 200
    assert _get(bitrix24, r.json()["result"])["TITLE"] == "FromQuery"


def test_top_level_params_are_case_insensitive(bitrix24):
    for key in ("fields", "FIELDS", "Fields", "arFields"):
        r = call(bitrix24, "crm.company.add", {key: {"TITLE": key}})
        assert _get(bitrix24, r.json()["result"])["TITLE"] == key
    r = call(bitrix24, "crm.company.get", {"ID": 1})
    assert r.json()["result"]["TITLE"] == "fields"


# --- request-rate limit -----------------------------------------------------------------------------

def test_burst_of_60_gets_503_after_50_and_recovers(bitrix24):
    with requests.Session() as http:
        url = bitrix24.webhook_url + "crm.company.list"
        answers = [http.get(url, timeout=10) for _ in range(60)]
        statuses = [r.status_code for r in answers]
        assert statuses[:50] == [200] * 50
        refused = [r for r in answers if r.status_code == 503]
        assert 1 <= len(refused) <= 10
        assert all(r.json() == {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
                   for r in refused)
        time.sleep(1.2)  # the bucket drains 2 requests a second
        assert http.get(url, timeout=10).status_code == 200
    stats = requests.get(bitrix24.url + "/_sandbox/stats", timeout=10).json()
    assert stats["rejected"]["QUERY_LIMIT_EXCEEDED"] == len(refused)


def test_batch_counts_as_one_request():
    server = start_bitrix24(burst=3, rate=0.01)
    try:
        cmd = {f"c{i}": "crm.company.list" for i in range(40)}
        for _ in range(3):
            assert call(server, "batch", {"cmd": cmd}).status_code == 200
        assert call(server, "batch", {"cmd": cmd}).status_code == 503
    finally:
        server.stop()


def test_no_limits_lifts_the_bucket():
    server = start_bitrix24(burst=2, rate=0.01, limits=False)
    try:
        assert {call(server, "crm.company.list").status_code for _ in range(10)} == {200}
    finally:
        server.stop()


# --- operating-time limit -----------------------------------------------------------------------------

def test_operation_time_limit_with_simulated_cost():
    server = start_bitrix24(operating_limit=1.0)
    try:
        configure(server, operating_costs={"crm.company.list": 0.6})
        first = call(server, "crm.company.list").json()["time"]
        assert 0.6 <= first["operating"] < 1.0
        assert first["processing"] >= 0.6
        now = time.time()
        assert now < first["operating_reset_at"] <= now + 601
        second = call(server, "crm.company.list").json()["time"]
        assert 1.2 <= second["operating"] < 2.0
        blocked = call(server, "crm.company.list")
        assert blocked.status_code == 429
        assert blocked.json() == {"error": "OPERATION_TIME_LIMIT",
                                  "error_description": "Method is blocked due to operation time limit."}
        # other methods of the same webhook are not blocked
        assert call(server, "crm.contact.list").status_code == 200
        # inside a batch the blocked method fails per command; the batch itself is 200
        r = call(server, "batch", {"cmd": {"a": "crm.contact.list", "b": "crm.company.list"}})
        assert r.status_code == 200
        body = r.json()["result"]
        assert body["result_error"]["b"]["error"] == "OPERATION_TIME_LIMIT"
        assert "a" in body["result"]
        stats = requests.get(server.url + "/_sandbox/stats", timeout=10).json()
        assert stats["rejected"]["OPERATION_TIME_LIMIT"] == 2
        configure(server, reset_limits=True)
        assert call(server, "crm.company.list").status_code == 200
    finally:
        server.stop()


def test_calls_under_a_tenth_of_a_second_are_not_counted():
    server = start_bitrix24(operating_limit=0.5)
    try:
        configure(server, operating_cost=0.05)
        for _ in range(10):
            r = call(server, "crm.company.list")
            assert r.status_code == 200
        assert r.json()["time"]["operating"] == 0
    finally:
        server.stop()


def test_bad_config_is_refused_naming_the_key(bitrix24):
    r = requests.post(bitrix24.url + "/_sandbox/config", json={"ratee": 5}, timeout=10)
    assert r.status_code == 400
    assert "ratee" in r.json()["error_description"]


# --- faults ----------------------------------------------------------------------------------------

def _statuses(seed: int, n: int = 40) -> list[tuple[int, str]]:
    server = start_bitrix24(limits=False, faults=FaultSpec(error_500=0.25, error_503=0.25, seed=seed))
    try:
        with requests.Session() as http:
            out = []
            for _ in range(n):
                r = http.get(server.webhook_url + "crm.company.list", timeout=10)
                out.append((r.status_code, r.json().get("error", "")))
            return out
    finally:
        server.stop()


def test_fault_injection_is_reproducible_by_seed_with_real_bodies():
    first, again, other = _statuses(7), _statuses(7), _statuses(8)
    assert first == again
    assert first != other
    kinds = set(first)
    assert (503, "QUERY_LIMIT_EXCEEDED") in kinds
    assert (500, "INTERNAL_SERVER_ERROR") in kinds
    assert (200, "") in kinds


def test_dropped_connection_has_no_answer():
    server = start_bitrix24(faults=FaultSpec(drop=1.0, seed=1))
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(server.webhook_url + "crm.company.list", timeout=10)
    finally:
        server.stop()


# --- persistence, stats, CLI ------------------------------------------------------------------------

def test_data_survives_a_restart_and_is_inspectable(tmp_path):
    db = tmp_path / "portal.sqlite"
    server = start_bitrix24(db, code="persistcode")
    try:
        company_id = add_company(server, "Persistent", PHONE=[{"VALUE": "+74950000001"}])
    finally:
        server.stop()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM company").fetchone()[0] == 1
    server = start_bitrix24(db, code="persistcode")
    try:
        company = call(server, "crm.company.get", {"id": company_id}).json()["result"]
        assert company["TITLE"] == "Persistent"
        assert company["PHONE"][0]["VALUE"] == "+74950000001"
        assert add_company(server, "Next") == company_id + 1
    finally:
        server.stop()
    assert db.exists()


def test_temporary_database_is_removed_on_stop():
    server = start_bitrix24()
    path = Path(server.db_path)
    assert path.exists()
    server.stop()
    assert not path.exists()


def test_stats_count_requests_methods_batch_commands_and_entities(bitrix24):
    add_company(bitrix24)
    call(bitrix24, "batch", {"cmd": {"a": "crm.company.add?fields[TITLE]=B", "b": "crm.company.list",
                                     "c": "crm.contact.add?fields[NAME]=Ivan"}})
    stats = requests.get(bitrix24.url + "/_sandbox/stats", timeout=10).json()
    assert stats["http_requests"] == 2
    assert stats["methods"] == {"crm.company.add": 2, "batch": 1, "crm.company.list": 1, "crm.contact.add": 1}
    assert stats["batch_commands"] == 3
    assert stats["entities"]["company"] == 2 and stats["entities"]["contact"] == 1
    assert requests.post(bitrix24.url + "/_sandbox/reset-stats", timeout=10).status_code == 200
    stats = requests.get(bitrix24.url + "/_sandbox/stats", timeout=10).json()
    assert stats["http_requests"] == 0 and stats["methods"] == {}
    assert stats["entities"]["company"] == 2


def test_cli_starts_answers_and_stops_on_sigterm(tmp_path):
    port = free_port()
    db = tmp_path / "cli.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "etl", "emulate", "bitrix24", "--port", str(port),
                             "--code", "clicode123", "--db", str(db), "--burst", "5"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if requests.get(base + "/_sandbox/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail(f"emulator did not come up: {proc.stderr.read() if proc.poll() is not None else ''}")
        r = requests.post(f"{base}/rest/1/clicode123/crm.company.add", json={"fields": {"TITLE": "CLI"}}, timeout=5)
        assert r.json()["result"] == 1
        assert requests.get(f"{base}/_sandbox/config", timeout=5).json()["burst"] == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert f"{base}/rest/1/clicode123/" in out
    assert db.exists()


def test_concurrent_clients_get_distinct_ids_and_consistent_counts():
    from concurrent.futures import ThreadPoolExecutor

    server = start_bitrix24(limits=False)
    try:
        def worker(n: int) -> list[int]:
            ids = []
            with requests.Session() as http:
                for b in range(5):
                    cmd = {f"c{i}": f"crm.company.add?fields[TITLE]=W{n}-{b}-{i}"
                                    f"&fields[PHONE][0][VALUE]=%2B7495{n}{b}{i:05d}" for i in range(20)}
                    body = http.post(server.webhook_url + "batch", json={"cmd": cmd}, timeout=30).json()
                    assert body["result"]["result_error"] == []
                    ids += body["result"]["result"].values()
            return ids

        with ThreadPoolExecutor(4) as pool:
            ids = [i for chunk in pool.map(worker, range(4)) for i in chunk]
        assert len(ids) == len(set(ids)) == 400
        stats = requests.get(server.url + "/_sandbox/stats", timeout=10).json()
        assert stats["entities"]["company"] == 400 and stats["entities"]["multifield"] == 400
        assert stats["batch_commands"] == 400
    finally:
        server.stop()


@pytest.mark.parametrize("query, expected", [
    ("fields[PHONE][0][VALUE]=%2B7+495", {"fields": {"PHONE": {0: {"VALUE": "+7 495"}}}}),
    ("a[]=1&a[]=2", {"a": {0: "1", 1: "2"}}),
    ("a[5]=x&a[]=y", {"a": {5: "x", 6: "y"}}),
    ("a.b=1&c d=2", {"a_b": "1", "c_d": "2"}),
    ("a[b=1", {"a_b": "1"}),
    ("a[b]c=1", {"a": {"b": "1"}}),
    ("a[b.c]=1", {"a": {"b.c": "1"}}),
    ("a=1&a[b]=2", {"a": {"b": "2"}}),
    ("a[b]=1&a=2", {"a": "2"}),
    ("[a]=1&=2", {}),
    ("a%5Bb%5D=1", {"a": {"b": "1"}}),
    ("x=a=b&flag", {"x": "a=b", "flag": ""}),
    ("k[07]=a&k[7]=b&k[-1]=c", {"k": {"07": "a", 7: "b", -1: "c"}}),
])
def test_parse_str_matches_php(query, expected):
    from etl.sandbox.bitrix24.params import parse_str

    assert parse_str(query) == expected
