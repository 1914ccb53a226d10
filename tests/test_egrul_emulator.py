"""The EGRUL emulator over HTTP: DaData findById/party protocol, limits, admin routes, registry loading."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from stdnum.ru import inn as stdnum_inn

from etl.sandbox.egrul import start_egrul

# --- a small registry with every case (shared by the client tests) ---------------------------

SBER, GAZPROM, MTS, RZD, ROSTELECOM, TENSOR, YANDEX = (
    "7707083893", "7736050003", "7740000076", "7708503727", "7707049388", "7605016030", "7736207543")
SOLE = "123456789047"                                  # valid 12-digit INN, two ИП records
NOT_IN_REGISTRY = "500100732" + stdnum_inn.calc_company_check_digit("500100732")
STATUSES = {SBER: "ACTIVE", GAZPROM: "ACTIVE", MTS: "LIQUIDATING", RZD: "LIQUIDATED",
            ROSTELECOM: "BANKRUPT", TENSOR: "REORGANIZING", YANDEX: "SUSPENDED"}


def company(inn: str, name: str, *, status: str = "ACTIVE", kpp: str | None = "773601001",
            branch: str | None = "MAIN", ogrn: str = "1027700132195", code: str | None = None,
            kind: str = "LEGAL", opf: str = "ПАО") -> dict[str, Any]:
    return {"inn": inn, "kpp": kpp, "ogrn": ogrn, "type": kind, "branch_type": branch,
            "name": {"full_with_opf": f"ПУБЛИЧНОЕ АКЦИОНЕРНОЕ ОБЩЕСТВО \"{name}\"",
                     "short_with_opf": f"{opf} {name}", "full": name, "short": name},
            "opf": {"code": "12247", "full": "Публичное акционерное общество", "short": opf},
            "management": {"name": "Иванов Иван Иванович", "post": "ПРЕЗИДЕНТ"},
            "address": {"value": "г Москва, ул Вавилова, д 19", "data": {"qc": "0"}},
            "state": {"status": status, "code": code, "actuality_date": 1700000000000}}


def sample_records() -> list[dict[str, Any]]:
    sole = dict(company(SOLE, "ИВАНОВ ИВАН", kpp=None, branch=None, kind="INDIVIDUAL", opf="ИП",
                        ogrn="304500116000157"), management=None)
    return [
        # a branch placed before the head office: the head office must still come first
        company(SBER, "СИБИРСКИЙ БАНК ПАО СБЕРБАНК", kpp="540602001", branch="BRANCH"),
        company(SBER, "СБЕРБАНК", kpp="773601001"),
        company(SBER, "БАЙКАЛЬСКИЙ БАНК ПАО СБЕРБАНК", kpp="380802001", branch="BRANCH"),
        company(GAZPROM, "ГАЗПРОМ", ogrn="1027700070518", kpp="772801001"),
        company(MTS, "МТС", status="LIQUIDATING", ogrn="1027700149124", code="101"),
        company(RZD, "РЖД", status="LIQUIDATED", ogrn="1037739877295", code="201"),
        company(ROSTELECOM, "РОСТЕЛЕКОМ", status="BANKRUPT", ogrn="1027700198767", code="113"),
        company(TENSOR, "ТЕНЗОР", status="REORGANIZING", ogrn="1027700229193", code="124"),
        company(YANDEX, "ЯНДЕКС", status="SUSPENDED", ogrn="1027700229000"),
        dict(sole, state={"status": "LIQUIDATED"}, ogrn="304500116000111"),
        sole,
    ]


def synthetic_inns(n: int, prefix: str = "77") -> list[str]:
    """n distinct checksum-valid 10-digit INNs."""
    body = [f"{prefix}{i:07d}" for i in range(1, n + 1)]
    return [b + stdnum_inn.calc_company_check_digit(b) for b in body]


def write_registry(path: Path, records: list[dict[str, Any]], extra_lines: list[str] = ()) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    return write_registry(tmp_path / "registry.jsonl",
                          sample_records() + [company(i, f"ОБЩЕСТВО {i}") for i in synthetic_inns(40)])


@pytest.fixture
def server(registry_file: Path) -> Iterator[Any]:
    s = start_egrul(registry_file, latency=0.0, rps=None)
    try:
        yield s
    finally:
        s.stop()


def find(server: Any, body: Any, token: str | None = "", raw: bytes | None = None,
         method: str = "POST") -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Token {token or server.token}"
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.request(method, server.base_url + "/findById/party", data=data, headers=headers, timeout=10)


def stats(server: Any) -> dict[str, Any]:
    return requests.get(server.url + "/_sandbox/stats", timeout=5).json()


# --- protocol --------------------------------------------------------------------------------

def test_found_answers_the_registry_line_as_a_dadata_suggestion(server):
    r = find(server, {"query": GAZPROM})
    assert r.status_code == 200
    [s] = r.json()["suggestions"]
    assert s["value"] == "ПАО ГАЗПРОМ"
    assert s["unrestricted_value"] == 'ПУБЛИЧНОЕ АКЦИОНЕРНОЕ ОБЩЕСТВО "ГАЗПРОМ"'
    assert s["data"] == company(GAZPROM, "ГАЗПРОМ", ogrn="1027700070518", kpp="772801001")


def test_not_found_is_200_with_empty_suggestions(server):
    r = find(server, {"query": NOT_IN_REGISTRY})
    assert (r.status_code, r.json()) == (200, {"suggestions": []})
    assert stats(server)["not_found"] == 1


def test_empty_registry_answers_not_found(egrul):
    r = find(egrul, {"query": SBER})
    assert (r.status_code, r.json()) == (200, {"suggestions": []})


def test_lookup_by_ogrn(server):
    [s] = find(server, {"query": "1027700070518"}).json()["suggestions"]
    assert s["data"]["inn"] == GAZPROM


@pytest.mark.parametrize("header", [None, "", "Token", "Token   ", "Bearer " + "x" * 40, "Basic abc"])
def test_missing_or_malformed_authorization_is_401(server, header):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Authorization"] = header
    r = requests.post(server.base_url + "/findById/party", json={"query": SBER}, headers=headers, timeout=5)
    assert r.status_code == 401
    assert r.json()["family"] == "CLIENT_ERROR"


def test_unknown_token_is_403(server):
    r = find(server, {"query": SBER}, token="0" * 40)
    assert r.status_code == 403
    assert stats(server)["forbidden"] == 1


def test_every_given_token_is_accepted_and_exposed(registry_file):
    s = start_egrul(registry_file, latency=0, tokens=["key-one-1111", "key-two-2222"])
    try:
        assert s.tokens == {"key-one-1111", "key-two-2222"}
        assert [find(s, {"query": SBER}, token=t).status_code for t in sorted(s.tokens)] == [200, 200]
        assert find(s, {"query": SBER}, token="key-three-3333").status_code == 403
    finally:
        s.stop()


def test_default_token_is_random_per_server(registry_file):
    a, b = start_egrul(registry_file, latency=0), start_egrul(registry_file, latency=0)
    try:
        assert len(a.token) >= 32 and a.token != b.token
        assert find(a, {"query": SBER}, token=b.token).status_code == 403
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_methods_other_than_post_are_405(server, method):
    r = find(server, {"query": SBER}, method=method)
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST"


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'{"count": 1}', b'{"query": null}',
                                 b'{"query": "7707083893", "count": 0}', b'{"query": "x", "status": "ACTIVE"}',
                                 "{\"query\": \"\xff\"}".encode("latin-1")])
def test_invalid_body_is_400(server, raw):
    r = find(server, None, raw=raw)
    assert r.status_code == 400
    assert r.json()["reason"] == "Bad Request"


def test_body_over_64_kib_is_413(server):
    r = find(server, {"query": SBER, "pad": "x" * 70_000})
    assert r.status_code == 413


def test_unknown_method_path_is_404(server):
    r = requests.post(server.base_url + "/findById/address", json={"query": SBER},
                      headers={"Authorization": f"Token {server.token}"}, timeout=5)
    assert r.status_code == 404


# --- branches and filters ---------------------------------------------------------------------

def kpps(r: requests.Response) -> list[str]:
    assert r.status_code == 200
    return [s["data"]["kpp"] for s in r.json()["suggestions"]]


def test_branches_come_after_the_head_office_in_file_order(server):
    assert kpps(find(server, {"query": SBER})) == ["773601001", "540602001", "380802001"]


@pytest.mark.parametrize("filters, expected", [
    ({"branch_type": "MAIN"}, ["773601001"]),
    ({"branch_type": "BRANCH"}, ["540602001", "380802001"]),
    ({"kpp": "540602001"}, ["540602001"]),
    ({"kpp": "000000000"}, []),
    ({"count": 2}, ["773601001", "540602001"]),
    ({"type": "INDIVIDUAL"}, []),
    ({"status": ["ACTIVE"]}, ["773601001", "540602001", "380802001"]),
    ({"status": ["LIQUIDATED"]}, []),
])
def test_filters(server, filters, expected):
    assert kpps(find(server, {"query": SBER, **filters})) == expected


def test_sole_proprietor_records_are_all_returned(server):
    r = find(server, {"query": SOLE})
    statuses = [s["data"]["state"]["status"] for s in r.json()["suggestions"]]
    assert statuses == ["LIQUIDATED", "ACTIVE"]
    assert r.json()["suggestions"][0]["value"] == "ИП ИВАНОВ ИВАН"


# --- limits ---------------------------------------------------------------------------------

def test_requests_above_the_rps_cap_get_429(registry_file):
    s = start_egrul(registry_file, latency=0, rps=3)
    try:
        codes = [find(s, {"query": SBER}).status_code for _ in range(12)]
        assert set(codes) == {200, 429}
        assert codes[:3] == [200, 200, 200]  # the burst the cap allows
        st = stats(s)
        assert st["rate_limited"] == codes.count(429)
        assert st["lookups"] == codes.count(200)
        r429 = next(r for r in (find(s, {"query": SBER}) for _ in range(10)) if r.status_code == 429)
        assert r429.json()["reason"] == "Too Many Requests"
        assert "Retry-After" not in r429.headers  # DaData is not known to send it
    finally:
        s.stop()


def test_retry_after_is_sent_when_configured(registry_file):
    s = start_egrul(registry_file, latency=0, rps=1)
    try:
        assert requests.post(s.url + "/_sandbox/config", json={"retry_after": 2}, timeout=5).ok
        answers = [find(s, {"query": SBER}) for _ in range(3)]
        limited = [r for r in answers if r.status_code == 429]
        assert limited and all(r.headers["Retry-After"] == "2" for r in limited)
    finally:
        s.stop()


def test_daily_quota_exhausted_is_403_until_reset(registry_file):
    s = start_egrul(registry_file, latency=0, rps=None, daily_quota=2)
    try:
        codes = [find(s, {"query": SBER}).status_code for _ in range(3)]
        assert codes == [200, 200, 403]
        refused = find(s, {"query": SBER})
        assert refused.status_code == 403 and "limit" in refused.json()["message"]
        assert stats(s)["quota_exhausted"] == 2
        cfg = requests.post(s.url + "/_sandbox/config", json={"reset_quota": True}, timeout=5).json()
        assert cfg["quota_used"] == 0
        assert find(s, {"query": SBER}).status_code == 200
    finally:
        s.stop()


def test_config_route_changes_limits_and_rejects_nonsense(server):
    ok = requests.post(server.url + "/_sandbox/config", json={"latency": 0.01, "daily_quota": 0}, timeout=5)
    assert ok.status_code == 200 and ok.json()["latency"] == 0.01
    assert find(server, {"query": SBER}).status_code == 403  # quota 0
    for bad in ({"latency": -1}, {"rps": 0}, {"bogus": 1}, {"latency": "slow"}, [1]):
        r = requests.post(server.url + "/_sandbox/config", json=bad, timeout=5)
        assert r.status_code == 400, bad
    assert requests.get(server.url + "/_sandbox/config", timeout=5).json()["latency"] == 0.01


def test_stats_count_and_reset(server):
    find(server, {"query": SBER})
    find(server, {"query": NOT_IN_REGISTRY})
    find(server, {"query": SBER}, token=None)
    st = stats(server)
    assert (st["requests"], st["lookups"], st["found"], st["not_found"], st["unauthorized"]) == (3, 2, 1, 1, 1)
    assert st["registry"] == {"records": 11 + 40, "inns": 8 + 40, "bad_lines": 0}
    after = requests.delete(server.url + "/_sandbox/stats", timeout=5).json()
    assert after["requests"] == 0 and after["lookups"] == 0


@pytest.mark.parametrize("status, reason", [(500, "Internal Server Error"), (503, "Service Unavailable")])
def test_injected_5xx_have_dadata_error_bodies(server, status, reason):
    requests.post(server.url + "/_sandbox/faults", json={f"error_{status}": 1.0}, timeout=5)
    r = find(server, {"query": SBER})
    assert r.status_code == status
    assert r.json() == {"family": "SERVER_ERROR", "reason": reason,
                        "message": "Temporary failure, please retry later"}


# --- the registry file ------------------------------------------------------------------------

def test_bad_registry_lines_are_reported_by_number_and_skipped(tmp_path, caplog):
    path = write_registry(tmp_path / "r.jsonl", sample_records()[:2],
                          ["{broken json", "", "[1, 2, 3]", '{"kpp": "773601001"}', '{"inn": 7707083893}'])
    extra = b"\xff\xfe not utf-8\n" + json.dumps(company(GAZPROM, "ГАЗПРОМ"), ensure_ascii=False).encode() + b"\n"
    path.write_bytes(path.read_bytes() + extra)
    with caplog.at_level(logging.WARNING, logger="etl.sandbox.egrul"):
        s = start_egrul(path, latency=0)
    try:
        assert [b.line for b in s.registry.bad_lines] == [3, 5, 6, 7, 8]
        assert "not valid JSON" in s.registry.bad_lines[0].reason
        for n in (3, 5, 6, 7, 8):
            assert f"line {n}:" in caplog.text
        assert len(find(s, {"query": SBER}).json()["suggestions"]) == 2
        assert len(find(s, {"query": GAZPROM}).json()["suggestions"]) == 1
    finally:
        s.stop()


def test_registry_with_bom_and_without_final_newline(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(company(SBER, "СБЕРБАНК")).encode() + b"\n"
                     + json.dumps(company(GAZPROM, "ГАЗПРОМ")).encode())
    s = start_egrul(path, latency=0)
    try:
        assert s.registry.bad_lines == []
        assert len(find(s, {"query": SBER}).json()["suggestions"]) == 1
        assert len(find(s, {"query": GAZPROM}).json()["suggestions"]) == 1
    finally:
        s.stop()


def test_missing_registry_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="registry"):
        start_egrul(tmp_path / "nope.jsonl")


def test_registry_lines_read_back_exactly_whatever_their_numbers(tmp_path):
    from etl.sandbox.egrul import load_registry

    plain = {"inn": "7707083893", "ogrn_date": 1440201600000, "capital": {"value": 10000.5}, "x": None}
    big = {"inn": "7707083894", "serial": 123456789012345678901234567890, "neg": -98765432109876543210}
    for rows in ([plain], [plain, big]):  # orjson reads the first file, the standard library the second
        path = tmp_path / f"registry{len(rows)}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        registry = load_registry(path)
        try:
            for row in rows:
                (found,) = registry.find(row["inn"])
                assert found == row and repr(found) == repr(row)
        finally:
            registry.close()
