"""The registry lookup client (validators.egrul) against the EGRUL emulator over HTTP."""
from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from etl.config import load_settings
from etl.sandbox.egrul import start_egrul
from etl.secrets import Secret
from tests.test_egrul_emulator import (GAZPROM, NOT_IN_REGISTRY, SBER, SOLE, STATUSES, company,
                                       sample_records, synthetic_inns, write_registry)
from validators.egrul import (DadataProvider, LookupFailed, LookupResult, ProviderRefused, RateLimiter,
                              RegistryProvider, lookup_many)
from validators.egrul.dadata import parse_retry_after

MANY = synthetic_inns(60)


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    return write_registry(tmp_path / "registry.jsonl",
                          sample_records() + [company(i, f"ОБЩЕСТВО {i}") for i in MANY])


def serve(registry_file: Path, **kw: Any):
    kw.setdefault("latency", 0.0)
    kw.setdefault("rps", None)
    return start_egrul(registry_file, **kw)


@pytest.fixture
def server(registry_file: Path) -> Iterator[Any]:
    s = serve(registry_file)
    try:
        yield s
    finally:
        s.stop()


def provider_for(server: Any, token: str | None = None, **kw: Any) -> DadataProvider:
    kw.setdefault("rate", None)
    kw.setdefault("backoff", 0.01)
    kw.setdefault("max_backoff", 0.05)
    return DadataProvider(server.base_url, Secret(token or server.token), **kw)


def stats(server: Any) -> dict[str, Any]:
    return requests.get(server.url + "/_sandbox/stats", timeout=5).json()


def set_faults(server: Any, **spec: Any) -> None:
    requests.post(server.url + "/_sandbox/faults", json=spec, timeout=5).raise_for_status()


def injected(server: Any) -> dict[str, int]:
    return requests.get(server.url + "/_sandbox/faults", timeout=5).json()["injected"]


# --- results ------------------------------------------------------------------------------------

@pytest.mark.parametrize("inn, status", sorted(STATUSES.items()))
def test_status_of_each_registry_state(server, inn, status):
    with provider_for(server) as p:
        result = p.lookup(inn)
    assert (result.inn, result.status, result.found) == (inn, status, True)
    assert result.is_active is (status == "ACTIVE")


def test_not_found(server):
    with provider_for(server) as p:
        result = p.lookup(NOT_IN_REGISTRY)
    assert result == LookupResult(NOT_IN_REGISTRY, "NOT_FOUND", None)
    assert not result.found and result.full_name is None and result.kpp is None


def test_head_office_is_chosen_and_enriches(server):
    with provider_for(server) as p:
        r = p.lookup(SBER)
    assert r.kpp == "773601001"  # not the branch that comes first in the file
    assert r.full_name == 'ПУБЛИЧНОЕ АКЦИОНЕРНОЕ ОБЩЕСТВО "СБЕРБАНК"'
    assert r.short_name == "ПАО СБЕРБАНК"
    assert r.opf_short == "ПАО"
    assert r.ogrn == "1027700132195"
    assert r.address == "г Москва, ул Вавилова, д 19"
    assert r.management == {"name": "Иванов Иван Иванович", "post": "ПРЕЗИДЕНТ"}
    assert (r.manager_name, r.manager_post) == ("Иванов Иван Иванович", "ПРЕЗИДЕНТ")
    assert not r.is_sole_proprietor
    # asked with branch_type MAIN: the server returned the head office only, not its branches
    assert (stats(server)["lookups"], stats(server)["suggestions"]) == (1, 1)


def test_a_branch_by_kpp(server):
    with provider_for(server) as p:
        r = p.lookup(SBER, kpp="540602001")
    assert (r.kpp, r.short_name) == ("540602001", "ПАО СИБИРСКИЙ БАНК ПАО СБЕРБАНК")


def test_sole_proprietor_prefers_the_active_record(server):
    with provider_for(server) as p:
        r = p.lookup(SOLE)
    assert r.status == "ACTIVE" and r.ogrn == "304500116000157"
    assert r.is_sole_proprietor and r.kpp is None and r.management is None and r.manager_name is None


def test_state_code_and_unknown_status_are_kept_as_strings():
    assert LookupResult.from_data("1", {"state": {"status": "bankrupt", "code": 113}}).state_code == "113"
    assert LookupResult.from_data("1", {"state": {"status": "bankrupt"}}).status == "BANKRUPT"
    assert LookupResult.from_data("1", {"state": {"status": "SOMETHING_NEW"}}).status == "SOMETHING_NEW"
    assert LookupResult.from_data("1", {"name": "no state"}).status == "UNKNOWN"
    assert LookupResult.from_data("1", {"state": None, "name": None}).full_name is None


def test_provider_satisfies_the_interface(server):
    with provider_for(server) as p:
        assert isinstance(p, RegistryProvider)
        assert p.name == "dadata@127.0.0.1:" + server.url.rsplit(":", 1)[1]


def test_from_settings_reads_url_and_token_from_the_environment(server):
    settings = load_settings(env={"CRM_ETL_EGRUL_URL": server.base_url + "/",
                                  "CRM_ETL_EGRUL_TOKEN": server.token})
    with DadataProvider.from_settings(settings.egrul, rate=None) as p:
        assert p.lookup(GAZPROM).status == "ACTIVE"


# --- refusals (fatal) ------------------------------------------------------------------------

def test_unknown_token_is_refused_without_showing_it(server, caplog):
    bad = "bad-token-" + "7" * 30
    with caplog.at_level(logging.DEBUG), provider_for(server, token=bad) as p:
        with pytest.raises(ProviderRefused) as e:
            p.lookup(SBER)
        shown = [str(e.value), repr(e.value), repr(p), "".join(traceback.format_exception(e.value)),
                 caplog.text]
    assert e.value.status == 403
    assert "CRM_ETL_EGRUL_TOKEN" in str(e.value) and "Unknown API key" in str(e.value)
    assert all(bad not in text for text in shown)
    assert stats(server)["forbidden"] == 1  # a refusal is not retried


def test_missing_token_is_refused_before_any_request(server):
    with pytest.raises(ProviderRefused, match="CRM_ETL_EGRUL_TOKEN"):
        DadataProvider(server.base_url, Secret(""))
    assert stats(server)["requests"] == 0


def test_quota_exhausted_is_refused(registry_file):
    s = serve(registry_file, daily_quota=2)
    try:
        with provider_for(s) as p:
            assert [p.lookup(i).status for i in (SBER, GAZPROM)] == ["ACTIVE", "ACTIVE"]
            with pytest.raises(ProviderRefused, match="limit") as e:
                p.lookup(SBER)
        assert e.value.status == 403 and s.token not in str(e.value)
    finally:
        s.stop()


def test_wrong_url_path_is_refused_naming_the_setting(server):
    p = DadataProvider(server.url + "/not/dadata", Secret(server.token), rate=None)
    with p, pytest.raises(ProviderRefused, match="CRM_ETL_EGRUL_URL") as e:
        p.lookup(SBER)
    assert e.value.status == 404


def test_not_an_http_url_is_refused():
    with pytest.raises(ProviderRefused, match="CRM_ETL_EGRUL_URL"):
        DadataProvider("suggestions.dadata.ru/x", Secret("tok-12345"))


def test_malformed_request_is_refused_as_a_bug(server):
    with provider_for(server) as p, pytest.raises(ProviderRefused, match="bug") as e:
        p.lookup(SBER, kpp=540602001)  # type: ignore[arg-type] - a number where DaData wants a string
    assert e.value.status == 400


# --- transient failures --------------------------------------------------------------------------

@pytest.mark.parametrize("fault, kind", [({"error_500": 1.0}, "500"), ({"error_503": 1.0}, "503"),
                                         ({"drop": 1.0}, "drop")])
def test_faults_are_retried_then_lookup_failed(server, fault, kind):
    set_faults(server, **fault)
    token = server.token
    with provider_for(server, max_retries=2) as p, pytest.raises(LookupFailed) as e:
        p.lookup(SBER)
    assert injected(server)[kind] == 3  # 1 try + 2 retries
    assert (e.value.inn, e.value.attempts) == (SBER, 3)
    assert SBER in str(e.value) and "pending" in str(e.value)
    assert token not in str(e.value) and token not in "".join(traceback.format_exception(e.value))


def test_timeouts_are_retried_then_lookup_failed(server):
    set_faults(server, slow=1.0, slow_seconds=2.0)
    with provider_for(server, max_retries=1, timeout=0.2) as p, pytest.raises(LookupFailed, match="within 0.2 s"):
        p.lookup(SBER)
    assert injected(server)["slow"] == 2


def test_occasional_faults_are_absorbed_by_retries(server):
    set_faults(server, error_500=0.2, error_503=0.2, drop=0.1, seed=7)
    with provider_for(server, max_retries=10, concurrency=4) as p:
        results = dict(lookup_many(MANY[:30], p))
    assert sorted(results) == sorted(MANY[:30])
    assert all(isinstance(r, LookupResult) and r.status == "ACTIVE" for r in results.values())
    assert sum(injected(server).values()) > 0


def test_429_is_retried_until_answered(registry_file):
    s = serve(registry_file, rps=5)
    try:
        with provider_for(s, max_retries=30, concurrency=4, backoff=0.05, max_backoff=0.2) as p:
            results = dict(lookup_many(MANY[:15], p))
        assert all(isinstance(r, LookupResult) for r in results.values()) and len(results) == 15
        assert stats(s)["rate_limited"] > 0
    finally:
        s.stop()


def test_client_rate_limit_keeps_under_the_server_cap(registry_file):
    s = serve(registry_file, rps=10)
    try:
        with provider_for(s, rate=8, concurrency=8, max_retries=0) as p:
            results = dict(lookup_many(MANY[:12], p))
        assert all(isinstance(r, LookupResult) for r in results.values()) and len(results) == 12
        assert stats(s)["rate_limited"] == 0
    finally:
        s.stop()


@pytest.mark.timeout(20)  # without Retry-After the 30 s backoff below would blow this
def test_retry_after_is_honoured(registry_file, caplog):
    s = serve(registry_file, rps=1)
    try:
        requests.post(s.url + "/_sandbox/config", json={"retry_after": 0.5}, timeout=5).raise_for_status()
        with caplog.at_level(logging.DEBUG, logger="validators.egrul.dadata"), \
                provider_for(s, max_retries=10, backoff=30, max_backoff=60) as p:
            assert [p.lookup(i).status for i in (SBER, GAZPROM)] == ["ACTIVE", "ACTIVE"]
        assert stats(s)["rate_limited"] >= 1
        assert "retrying in 0.50 s" in caplog.text
    finally:
        s.stop()


@pytest.mark.parametrize("value, seconds", [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), (None, None), ("soon", None),
                                            ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value) == seconds


# --- concurrency ----------------------------------------------------------------------------

def test_lookups_overlap_on_few_kept_alive_connections(registry_file):
    s = serve(registry_file, latency=0.5)
    try:
        with provider_for(s, concurrency=8) as p:
            results = dict(lookup_many(MANY[:24], p))
        assert len(results) == 24
        st = stats(s)
        assert st["max_in_flight"] == 8   # all workers waited on the server at once
        assert st["connections"] <= 9     # pooled keep-alive (+1: this stats request)
    finally:
        s.stop()


def test_lookup_many_yields_every_inn_once_and_pulls_lazily(server):
    pulled = 0
    lag: list[int] = []

    def inns() -> Iterator[str]:
        nonlocal pulled
        for inn in MANY + [NOT_IN_REGISTRY]:
            pulled += 1
            yield inn

    seen = []
    with provider_for(server, concurrency=3) as p:
        for inn, result in lookup_many(inns(), p):
            seen.append(inn)
            lag.append(pulled - len(seen))
            assert isinstance(result, LookupResult) and result.inn == inn
    assert sorted(seen) == sorted(MANY + [NOT_IN_REGISTRY])
    assert max(lag) <= 2 * 3  # never more than 2 x concurrency INNs taken ahead of the results


class _Provider:
    """A stand-in registry for what HTTP cannot easily produce: a provider bug, a chosen refusal."""

    name = "stub"
    concurrency = 2

    def __init__(self, refuse_from: int | None = None) -> None:
        self.calls = 0
        self.refuse_from = refuse_from
        self._lock = threading.Lock()

    def lookup(self, inn: str) -> LookupResult:
        with self._lock:
            self.calls += 1
        if inn == "boom":
            raise KeyError("provider bug")
        if inn == "flaky":
            raise LookupFailed(inn, "HTTP 503")
        return LookupResult.from_data(inn, None)

    def close(self) -> None:
        pass


def test_lookup_many_turns_unexpected_errors_into_lookup_failed(caplog):
    results = dict(lookup_many(["a", "boom", "flaky", "b"], _Provider()))
    assert set(results) == {"a", "boom", "flaky", "b"}
    assert isinstance(results["boom"], LookupFailed) and "KeyError" in str(results["boom"])
    assert isinstance(results["flaky"], LookupFailed)
    assert isinstance(results["a"], LookupResult)
    assert "boom" in caplog.text


def test_refusal_stops_new_lookups_drains_the_rest_and_raises(registry_file):
    s = serve(registry_file, daily_quota=5, latency=0.05)
    try:
        got = []
        with provider_for(s, concurrency=2) as p, pytest.raises(ProviderRefused, match="limit"):
            for inn, result in lookup_many(MANY, p):
                got.append((inn, result))
        assert len(got) == 5 and all(isinstance(r, LookupResult) for _, r in got)
        st = stats(s)
        assert st["lookups"] == 5
        assert 1 <= st["quota_exhausted"] <= 2  # only lookups already running when refused
    finally:
        s.stop()


def test_closing_lookup_many_early_stops_it(server):
    with provider_for(server, concurrency=2) as p:
        gen = lookup_many(MANY, p)
        first = [next(gen) for _ in range(3)]
        gen.close()
    assert len(first) == 3
    assert stats(server)["lookups"] <= 3 + 2 * 2


# --- the rate limiter -----------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(round(s, 6))
        self.now += s


def test_rate_limiter_spaces_requests():
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    waits = [round(limiter.reserve(), 6) for _ in range(5)]
    assert waits == [0.0, 0.2, 0.4, 0.6, 0.8]


def test_rate_limiter_allows_a_burst_then_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(10, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(6):
        limiter.acquire()
    assert clock.slept == [0.1, 0.1, 0.1]  # 3 back to back, then one per 0.1 s
    clock.now += 10  # idle: the burst is available again, not ten seconds' worth
    for _ in range(4):
        limiter.acquire()
    assert clock.slept[3:] == [0.1]


def test_rate_limiter_is_shared_fairly_between_threads():
    clock = FakeClock()
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            w = limiter.reserve()
            with lock:
                waits.append(round(w, 6))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [round(i * 0.25, 6) for i in range(200)]  # 200 distinct slots, none shared


@pytest.mark.parametrize("rate, burst", [(0, 1), (-1, 1), (1, 0)])
def test_rate_limiter_rejects_nonsense(rate, burst):
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)


def test_registry_file_provider_answers_offline(tmp_path):
    import json

    from validators.egrul.registry_file import RegistryFileProvider

    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in [
        {"inn": "7707083893", "branch_type": "BRANCH", "kpp": "540602001", "state": {"status": "ACTIVE"}},
        {"inn": "7707083893", "branch_type": "MAIN", "kpp": "773601001", "state": {"status": "ACTIVE"},
         "name": {"short_with_opf": "ПАО СБЕРБАНК"}},
        {"inn": "7736050003", "branch_type": "MAIN", "state": {"status": "LIQUIDATED"}},
    ]), encoding="utf-8")
    with RegistryFileProvider(path) as p:
        sber = p.lookup("7707083893")
        assert (sber.status, sber.kpp, sber.short_name) == ("ACTIVE", "773601001", "ПАО СБЕРБАНК")
        assert p.lookup("7736050003").status == "LIQUIDATED"
        assert p.lookup("7740000076").status == "NOT_FOUND"
