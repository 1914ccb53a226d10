"""Bitrix24 client parts that need no portal: command encoding, batch answers, the two throttles.

Everything that talks HTTP is in test_bitrix24_client.py (against the emulator).
"""
from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from loaders.bitrix24.batch import BatchResult, normalise_commands, parse_batch, resolve_references
from loaders.bitrix24.encoding import build_query, encode_command
from loaders.bitrix24.errors import (BitrixError, OperatingLimited, PortalRefused, RateLimited,
                                     ServerError, error_from_body)
from loaders.bitrix24.throttle import LeakyBucket, OperatingTracker


class FakeClock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# --- encoding ---------------------------------------------------------------------------------

def test_multifield_phone_is_encoded_like_php_with_plus_as_2b():
    q = encode_command("crm.company.add", {"fields": {
        "TITLE": "ACME", "PHONE": [{"VALUE": "+74951234567", "VALUE_TYPE": "WORK"}]}})
    assert q == ("crm.company.add?fields[TITLE]=ACME&fields[PHONE][0][VALUE]=%2B74951234567"
                 "&fields[PHONE][0][VALUE_TYPE]=WORK")


@pytest.mark.parametrize("text", ["a+b", "A&B=C", "#1 100%", "ООО «Ромашка»", "line1\nline2",
                                  "$ not a ref", "tab\there", "a;b/c?d"])
def test_tricky_values_survive_form_decoding(text):
    query = build_query({"fields": {"COMMENTS": text}})
    assert "&" not in query.split("=", 1)[1]          # nothing breaks the pair apart
    assert "#" not in query                             # parse_url would cut a fragment
    assert dict(parse_qsl(query, keep_blank_values=True)) == {"fields[COMMENTS]": text}


def test_none_and_empty_arrays_are_omitted_booleans_become_1_0():
    query = build_query({"fields": {"A": None, "B": [], "C": {}, "D": True, "E": False, "F": 0}})
    assert dict(parse_qsl(query)) == {"fields[D]": "1", "fields[E]": "0", "fields[F]": "0"}


def test_filter_prefix_keys_are_encoded_and_references_stay_literal():
    q = build_query({"filter": {">ID": "$result[p0][49][ID]", "=ORIGIN_ID": "x"}})
    assert q == "filter[%3EID]=$result[p0][49][ID]&filter[%3DORIGIN_ID]=x"


def test_nested_lists_get_php_indexes():
    q = build_query({"values": ["+7 1", "+7 2"], "m": [[1, 2], {"k": [3]}]})
    assert dict(parse_qsl(q)) == {"values[0]": "+7 1", "values[1]": "+7 2", "m[0][0]": "1",
                                  "m[0][1]": "2", "m[1][k][0]": "3"}


def test_unencodable_values_and_method_names_are_refused():
    with pytest.raises(TypeError):
        build_query({"x": object()})
    with pytest.raises(ValueError):
        encode_command("crm.company.add?x=1", {})


# --- batch keys and answers ---------------------------------------------------------------------

def test_sequences_get_non_numeric_keys_and_more_than_50_is_refused():
    keys = list(normalise_commands([("crm.company.get", {"id": 1})] * 3))
    assert keys == ["c0", "c1", "c2"]
    with pytest.raises(ValueError, match="at most 50"):
        normalise_commands([("crm.company.get", {"id": 1})] * 51)
    with pytest.raises(ValueError, match="key"):
        normalise_commands({"bad key": ("crm.company.get", {})})


def test_php_list_and_empty_array_shapes_are_read_as_maps():
    sent = normalise_commands({0: ("crm.company.add", {}), 1: ("crm.company.add", {}),
                               2: ("crm.company.add", {})})
    body = {"result": {"result": [11, 12], "result_error": {"2": {"error": "ERROR_CORE",
                                                                  "error_description": "bad e-mail"}},
                       "result_total": [], "result_next": [], "result_time": []}}
    res = parse_batch(body, sent)
    assert res.results == {0: 11, 1: 12}
    assert isinstance(res.errors[2], BitrixError) and res.errors[2].code == "ERROR_CORE"
    assert res.not_run == [] and res.totals == {} and not res.ok


def test_batch_errors_are_classified_and_missing_commands_are_not_run():
    sent = normalise_commands({"a": ("crm.company.add", {}), "b": ("crm.company.add", {}),
                               "c": ("crm.company.add", {})})
    body = {"result": {"result": {}, "result_error": {"a": {"error": "OPERATION_TIME_LIMIT",
                                                            "error_description": "blocked"}}}}
    res = parse_batch(body, sent)
    assert isinstance(res.errors["a"], OperatingLimited)
    assert res.not_run == ["b", "c"]


def test_references_to_answered_commands_are_resolved_like_the_portal():
    answered = BatchResult(results={"co": 42, "lst": [{"ID": "7"}, {"ID": "9"}]})
    wire = {"co": "co", "lst": "lst", "later": "later"}
    params = {"fields": {"ENTITY_ID": "$result[co]", "X": "id-$result[lst][1][ID]",
                         "Y": "$result[later]", "Z": "$result[lst]"}}
    out = resolve_references(params, answered, wire)
    assert out == {"fields": {"ENTITY_ID": 42, "X": "id-9", "Y": "$result[later]",
                              "Z": [{"ID": "7"}, {"ID": "9"}]}}


# --- error classification -----------------------------------------------------------------------

@pytest.mark.parametrize("status,body,kind", [
    (503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}, RateLimited),
    (429, {"error": "OPERATION_TIME_LIMIT", "error_description": "blocked"}, OperatingLimited),
    (401, {"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"}, PortalRefused),
    (403, {"error": "insufficient_scope", "error_description": "x"}, PortalRefused),
    (404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}, PortalRefused),
    (400, {"error": "expired_token", "error_description": "x"}, PortalRefused),  # code wins over status
    (500, {"error": "INTERNAL_SERVER_ERROR", "error_description": "x"}, ServerError),
    (502, None, ServerError),
    (400, {"error": "", "error_description": "Not found"}, BitrixError),
])
def test_errors_are_classified_by_code_first(status, body, kind):
    err = error_from_body(status, body, method="crm.company.get")
    assert type(err) is kind


# --- throttles -----------------------------------------------------------------------------------

def test_leaky_bucket_allows_a_burst_then_paces_at_the_rate():
    clock = FakeClock()
    bucket = LeakyBucket(rate=2.0, burst=10, headroom=1, clock=clock)
    waits = [bucket.acquire() for _ in range(9)]
    assert waits == [0.0] * 9
    assert bucket.acquire() == pytest.approx(0.5)       # reserved: the 10th goes 0.5 s later
    assert bucket.acquire() == pytest.approx(1.0)
    clock.t += 100
    assert bucket.acquire() == 0.0


def test_leaky_bucket_mark_full_makes_the_next_send_wait_one_slot():
    clock = FakeClock()
    bucket = LeakyBucket(rate=4.0, burst=50, headroom=2, clock=clock)
    bucket.mark_full()
    assert bucket.acquire() == pytest.approx(0.25)


def test_operating_tracker_waits_for_the_reported_reset_near_the_limit():
    clock = FakeClock()
    tracker = OperatingTracker(limit=100, margin=5, clock=clock)
    tracker.observe("crm.company.add", {"processing": 0.05, "operating": 50.0,
                                        "operating_reset_at": clock.t + 300})
    assert tracker.wait_for(["crm.company.add", "batch"]) == 0.0
    tracker.observe("crm.company.add", {"processing": 0.05, "operating": 96.0,
                                        "operating_reset_at": clock.t + 300})
    assert tracker.wait_for(["crm.company.add"]) == pytest.approx(300)
    assert tracker.wait_for(["crm.contact.add"]) == 0.0
    clock.t += 301                                      # the bucket expired: probe again
    assert tracker.wait_for(["crm.company.add"]) == 0.0


def test_operating_tracker_without_reports_never_waits_but_a_429_blocks():
    clock = FakeClock()
    tracker = OperatingTracker(limit=10, margin=1, clock=clock)
    for _ in range(20):                                 # limiter off: no `operating` reported
        tracker.observe("crm.company.list", {"processing": 2.0})
    assert tracker.wait_for(["crm.company.list"]) == 0.0
    until = tracker.block("crm.company.list", fallback=4.0)   # no reset known: probe later
    assert until == pytest.approx(clock.t + 4.0)
    assert tracker.wait_for(["crm.company.list"]) == pytest.approx(4.0)
    tracker.observe("crm.contact.add", {"operating": 3.0, "operating_reset_at": clock.t + 50})
    assert tracker.block("crm.contact.add") == pytest.approx(clock.t + 50)   # known reset wins
    clock.t += 51
    assert tracker.wait_for(["crm.company.list", "crm.contact.add"]) == 0.0


def test_operating_margin_grows_with_the_longest_recent_call():
    clock = FakeClock()
    tracker = OperatingTracker(limit=100, margin=2, clock=clock)
    tracker.observe("crm.company.list", {"processing": 10.0, "operating": 90.0,
                                         "operating_reset_at": clock.t + 30})
    assert tracker.wait_for(["crm.company.list"]) == pytest.approx(30)   # 90 >= 100 - 2 - 10
    tracker2 = OperatingTracker(limit=100, margin=2, clock=clock)
    tracker2.observe("crm.company.list", {"processing": 0.5, "operating": 90.0,
                                          "operating_reset_at": clock.t + 30})
    assert tracker2.wait_for(["crm.company.list"]) == 0.0
