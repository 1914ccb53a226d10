"""Bitrix24 client against the Bitrix24 emulator over real HTTP on loopback.

Round trips, batch references, encoding of awkward values, listing, duplicate search, the
client-side limits (503s counted by the emulator), retries under injected faults, the
outcome-unknown rule for writes, and that the webhook code never leaks.
"""
from __future__ import annotations

import logging
import socket
import threading
from contextlib import contextmanager

import pytest
import requests

from etl.secrets import Secret
from loaders.bitrix24 import (BatchResult, Bitrix24Client, BitrixError, OutcomeUnknown, PortalRefused,
                              PortalUnavailable)

pytestmark = pytest.mark.timeout(120)


@contextmanager
def portal(**kw):
    from etl.sandbox.bitrix24 import start_bitrix24

    server = start_bitrix24(**kw)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def client_for(server, **kw):
    client = Bitrix24Client(Secret(server.webhook_url), **kw)
    try:
        yield client
    finally:
        client.close()


def admin(server, path, body=None):
    url = server.url + "/_sandbox/" + path
    r = requests.post(url, json=body, timeout=5) if body is not None else requests.get(url, timeout=5)
    r.raise_for_status()
    return r.json()


def rejected(server, code):
    """How many requests/commands the emulator refused with `code` (QUERY_LIMIT_EXCEEDED, ...)."""
    return admin(server, "stats")["rejected"][code]


def company(n, **extra):
    fields = {"TITLE": f"ООО Компания {n}", "ORIGINATOR_ID": "crm-etl", "ORIGIN_ID": f"t:{n}"}
    fields.update(extra)
    return ("crm.company.add", {"fields": fields})


@pytest.fixture
def server():
    with portal(rate=50.0, burst=100) as s:
        yield s


@pytest.fixture
def client(server):
    with client_for(server, rate=50.0, burst=100) as c:
        yield c


# --- round trips --------------------------------------------------------------------------------

def test_call_returns_result_and_time_block(client):
    new_id = client.call("crm.company.add", {"fields": {"TITLE": "ООО Ромашка"}}).result
    assert isinstance(new_id, int) and new_id > 0
    got = client.call("crm.company.get", {"id": new_id})
    assert got.result["TITLE"] == "ООО Ромашка"
    assert "duration" in got.time or "processing" in got.time


def test_plain_call_error_is_a_bitrix_error_with_code_and_text(client):
    with pytest.raises(BitrixError) as e:
        client.call("crm.company.get", {"id": 987654})
    assert not isinstance(e.value, PortalRefused)
    assert e.value.status == 400 and "Not found" in e.value.description


def test_batch_chain_company_requisite_bankdetail(client):
    res = client.batch({
        "co": ("crm.company.add", {"fields": {"TITLE": "ООО Цепочка"}}),
        "rq": ("crm.requisite.add", {"fields": {"ENTITY_TYPE_ID": 4, "ENTITY_ID": "$result[co]",
                                                 "PRESET_ID": 1, "NAME": "ООО Цепочка",
                                                 "RQ_INN": "7707083893"}}),
        "bd": ("crm.requisite.bankdetail.add", {"fields": {"ENTITY_ID": "$result[rq]", "NAME": "Основной",
                                                           "RQ_BIK": "044525225",
                                                           "RQ_ACC_NUM": "40702810938000000001"}}),
    }, halt=True)
    assert res.ok, res.errors
    co, rq, bd = res.results["co"], res.results["rq"], res.results["bd"]
    req = client.call("crm.requisite.get", {"id": rq}).result
    assert (int(req["ENTITY_ID"]), int(req["ENTITY_TYPE_ID"]), req["RQ_INN"]) == (co, 4, "7707083893")
    bank = client.call("crm.requisite.bankdetail.get", {"id": bd}).result
    assert int(bank["ENTITY_ID"]) == rq and bank["RQ_BIK"] == "044525225"


def test_batch_keeps_successes_next_to_per_command_errors(client):
    res = client.batch({
        "good": company(1),
        "bad": ("crm.company.add", {"fields": {"TITLE": "x", "EMAIL": [{"VALUE": "not-an-email"}]}}),
        "missing": ("crm.company.get", {"id": 99999}),
    })
    assert isinstance(res.results["good"], int)
    assert res.errors["bad"].code == "ERROR_CORE"
    assert "Not found" in res.errors["missing"].description
    assert set(res.results) == {"good"}


TRICKY = {
    "TITLE": "ООО «Рога & Копыта» #1 = 100% +",
    "COMMENTS": "строка 1\nстрока 2\tтаб; a=b&c=d %20 $notaref",
    "PHONE": [{"VALUE": "+74951234567", "VALUE_TYPE": "WORK"}, {"VALUE": "+79161234567", "VALUE_TYPE": "MOBILE"}],
    "EMAIL": [{"VALUE": "info+sales@example.com", "VALUE_TYPE": "WORK"}],
}


@pytest.mark.parametrize("via", ["batch", "call"])
def test_tricky_values_arrive_intact(client, via):
    if via == "batch":
        res = client.batch({"co": ("crm.company.add", {"fields": TRICKY})})
        assert res.ok, res.errors
        new_id = res.results["co"]
    else:
        new_id = client.call("crm.company.add", {"fields": TRICKY}).result
    got = client.batch({"g": ("crm.company.get", {"id": new_id})}).results["g"]
    assert got["TITLE"] == TRICKY["TITLE"]
    assert got["COMMENTS"] == TRICKY["COMMENTS"]
    assert [(p["VALUE"], p["VALUE_TYPE"]) for p in got["PHONE"]] == [
        ("+74951234567", "WORK"), ("+79161234567", "MOBILE")]
    assert [e["VALUE"] for e in got["EMAIL"]] == ["info+sales@example.com"]


def test_numeric_batch_keys_come_back_as_the_callers_keys(client):
    res = client.batch({0: company(0), 1: company(1), 2: company(2)})
    assert sorted(res.results) == [0, 1, 2] and all(isinstance(v, int) for v in res.results.values())


def test_more_than_50_commands_is_refused_before_sending(client):
    with pytest.raises(ValueError, match="50"):
        client.batch([company(i) for i in range(51)])
    assert client.stats.requests == 0


# --- listing and lookups ---------------------------------------------------------------------------

def test_list_all_walks_every_row_once_with_filters(client):
    created = []
    for res in client.batch_many(company(i, COMPANY_TYPE="PARTNER" if i % 3 == 0 else "CUSTOMER")
                                 for i in range(170)):
        assert res.ok, res.errors
        created += res.results.values()
    requests_before = client.stats.requests
    rows = list(client.list_all("crm.company.list", select=["ID", "TITLE"]))
    ids = [int(r["ID"]) for r in rows]
    assert ids == sorted(created)
    assert client.stats.requests - requests_before <= 3     # first page + chained pages in a batch
    partners = list(client.list_all("crm.company.list", filter={"COMPANY_TYPE": "PARTNER"}))
    assert len(partners) == len(range(0, 170, 3))
    assert all(r["COMPANY_TYPE"] == "PARTNER" for r in partners)
    tail = list(client.list_all("crm.company.list", filter={">ID": created[99]}, select=["TITLE"]))
    assert [int(r["ID"]) for r in tail] == sorted(created)[100:]


def test_list_all_by_offset_gets_the_same_rows(client):
    for res in client.batch_many(company(i) for i in range(120)):
        assert res.ok
    by_id = {r["ID"] for r in client.list_all("crm.company.list")}
    by_offset = [r["ID"] for r in client.list_all("crm.company.list", order_by_id=False)]
    assert len(by_offset) == 120 and set(by_offset) == by_id


def test_find_by_comm_over_more_than_20_values(client):
    phones = [f"+7495555{i:04d}" for i in range(45)]
    res = next(client.batch_many(("crm.contact.add", {"fields": {"NAME": f"Иван {i}", "PHONE": [
        {"VALUE": p, "VALUE_TYPE": "WORK"}]}}) for i, p in enumerate(phones)))
    assert res.ok, res.errors
    unknown = ["+74990000000", "+74990000001"]
    found = client.find_by_comm("PHONE", phones + unknown + phones[:5], "CONTACT")
    assert sorted(found["CONTACT"]) == sorted(res.results.values())
    assert client.find_by_comm("PHONE", unknown, "CONTACT") == {}


# --- limits -----------------------------------------------------------------------------------------

def test_client_bucket_keeps_a_burst_of_80_from_4_threads_free_of_503():
    with portal(rate=20.0, burst=10) as server, client_for(server, rate=20.0, burst=10) as client:
        def twenty_calls():
            for _ in range(20):
                client.call("crm.company.fields")

        threads = [threading.Thread(target=twenty_calls) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert rejected(server, "QUERY_LIMIT_EXCEEDED") == 0
        assert client.stats.http_503 == 0 and client.stats.requests == 80
        assert client.stats.throttle_wait_s > 0


def test_query_limit_from_a_competing_client_is_retried_transparently():
    with portal(rate=2.0, burst=5) as server, client_for(server, rate=2.0, burst=5) as client:
        rival = requests.Session()
        for _ in range(6):            # someone else fills the shared bucket
            rival.post(server.webhook_url + "crm.company.fields.json", json={}, timeout=5)
        assert client.call("crm.company.fields").result
        assert client.stats.http_503 >= 1 and client.stats.retries["rate_limit"] >= 1
        assert rejected(server, "QUERY_LIMIT_EXCEEDED") >= 1


def _short_operating_window(server, seconds=2.0):
    """The emulator's operating window is the portal's 10 minutes: shrink it to `seconds`."""
    admin(server, "config", {"operating_window": seconds})


def test_operating_limit_429_is_waited_out_until_the_reset():
    with portal(rate=50.0, burst=100, operating_limit=1.0) as server:
        _short_operating_window(server)
        admin(server, "config", {"operating_costs": {"crm.company.list": 0.4}})
        with client_for(server, rate=50.0, burst=100) as client:   # believes the cloud's 480 s
            for _ in range(4):
                assert client.call("crm.company.list").result == []
            assert client.stats.http_429 >= 1 and client.stats.retries["operating"] >= 1
            assert client.stats.operating_wait_s > 0
        assert rejected(server, "OPERATION_TIME_LIMIT") == client.stats.http_429


def test_operating_limit_inside_a_batch_reruns_only_the_refused_commands():
    with portal(rate=50.0, burst=100, operating_limit=1.0) as server:
        _short_operating_window(server)
        admin(server, "config", {"operating_costs": {"crm.company.list": 0.4}})
        with client_for(server, rate=50.0, burst=100) as client:
            res = client.batch({k: ("crm.company.list", {"select": ["ID"]}) for k in "abcd"}
                               | {"e": ("crm.company.fields", {})})
            assert res.ok, res.errors
            assert set(res.results) == set("abcde")
            assert client.stats.http_429 >= 1
        methods = admin(server, "stats")["methods"]
        assert methods["crm.company.fields"] == 1                 # not sent again


def test_operating_budget_known_to_the_client_is_never_exceeded():
    with portal(rate=50.0, burst=100, operating_limit=1.0) as server:
        _short_operating_window(server)
        admin(server, "config", {"operating_costs": {"crm.company.list": 0.4}})
        with client_for(server, rate=50.0, burst=100, operating_limit=1.0) as client:
            for _ in range(4):
                client.call("crm.company.list")
            assert client.stats.operating_wait_s > 0 and client.stats.http_429 == 0
        assert rejected(server, "OPERATION_TIME_LIMIT") == 0


# --- faults, retries, unknown outcomes -----------------------------------------------------------------

def test_reads_are_retried_through_500s_and_drops(server, client):
    for res in client.batch_many(company(i) for i in range(60)):
        assert res.ok
    admin(server, "faults", {"error_500": 0.15, "drop": 0.1, "seed": 7})
    rows = list(client.list_all("crm.company.list", select=["ID"]))
    for i in range(10):
        client.call("crm.company.fields")
    assert len(rows) == 60
    injected = admin(server, "faults")["injected"]
    assert injected["500"] + injected["drop"] > 0
    assert client.stats.retries["server_error"] + client.stats.retries["connection"] > 0


def test_a_dropped_write_raises_outcome_unknown_with_the_commands(server, client):
    admin(server, "faults", {"drop": 1.0, "seed": 1})
    cmds = {"a": company(1), "b": company(2)}
    with pytest.raises(OutcomeUnknown) as e:
        client.batch(cmds)
    assert e.value.commands == {"a": cmds["a"], "b": cmds["b"]}
    assert client.stats.requests == 1                     # not retried blindly
    with pytest.raises(OutcomeUnknown):
        client.call("crm.company.add", {"fields": {"TITLE": "x"}})
    admin(server, "faults", {})
    with client_for(server, rate=50.0, burst=100) as again:
        assert again.call("crm.company.add", {"fields": {"TITLE": "y"}}, idempotent=True).result


def test_a_500_on_a_write_is_an_unknown_outcome_but_retried_when_idempotent(server):
    admin(server, "faults", {"error_500": 1.0, "seed": 3})
    with client_for(server, max_attempts=3) as client:
        with pytest.raises(OutcomeUnknown):
            client.batch([company(1)])
        assert client.stats.requests == 1
        with pytest.raises(PortalUnavailable) as e:
            client.batch([company(1)], idempotent=True)
        assert e.value.attempts == 3 and client.stats.requests == 4


def test_connection_refused_is_retried_even_for_writes_then_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    webhook = f"http://127.0.0.1:{port}/rest/1/refusedsecretcode123/"
    with Bitrix24Client(Secret(webhook), max_attempts=2) as client:
        with pytest.raises(PortalUnavailable) as e:
            client.call("crm.company.add", {"fields": {"TITLE": "x"}})
        assert e.value.attempts == 2
        assert client.stats.retries["connection"] == 1
        assert "refusedsecretcode123" not in str(e.value)


# --- secrets ---------------------------------------------------------------------------------------------

def test_wrong_webhook_is_refused_at_once_without_leaking_the_code(server, caplog):
    caplog.set_level(logging.DEBUG)
    bad = server.webhook_url.rstrip("/").rsplit("/", 1)[0] + "/wrongsecretcode987/"
    client = Bitrix24Client(Secret(bad))
    with pytest.raises(PortalRefused) as e:
        client.call("crm.company.list")
    assert e.value.code == "INVALID_CREDENTIALS"
    assert client.stats.requests == 1
    for text in (str(e.value), repr(e.value), repr(client), client.portal, caplog.text):
        assert "wrongsecretcode987" not in text


def test_timeouts_and_drops_do_not_leak_the_code(server, caplog):
    caplog.set_level(logging.DEBUG)
    code = server.webhook_url.rstrip("/").rsplit("/", 1)[1]
    admin(server, "faults", {"slow": 1.0, "slow_seconds": 1.0, "seed": 2})
    with client_for(server, timeout=0.2, max_attempts=2) as client:
        with pytest.raises(PortalUnavailable) as slow:
            client.call("crm.company.fields")
        with pytest.raises(OutcomeUnknown) as unknown:
            client.call("crm.company.add", {"fields": {"TITLE": "x"}})
        admin(server, "faults", {"drop": 1.0, "seed": 2})
        with pytest.raises(PortalUnavailable) as dropped:
            client.call("crm.company.fields")
        for text in (str(slow.value), str(unknown.value), str(dropped.value), repr(client), caplog.text):
            assert code not in text
        assert "Timeout" in slow.value.cause


def test_results_type_and_stats_shape(client):
    res = client.batch([("crm.company.fields", {})])
    assert isinstance(res, BatchResult) and res.ok
    stats = client.stats.as_dict()
    assert stats["requests"] == 1 and stats["commands"] == 1


def test_a_fatal_code_inside_a_batch_stops_the_run_but_keeps_what_was_done(client):
    with pytest.raises(PortalRefused) as e:
        client.batch({"ok": company(1), "typo": ("crm.compnay.add", {"fields": {"TITLE": "x"}})})
    assert e.value.code == "ERROR_METHOD_NOT_FOUND"
    done = e.value.batch_result
    assert isinstance(done.results["ok"], int)
    assert client.call("crm.company.get", {"id": done.results["ok"]}).result["TITLE"] == "ООО Компания 1"
