"""The sandbox data generator: determinism, scale, the shops' formats, encodings, memory, CLI."""
from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from stdnum.ru import inn as stdnum_inn
from stdnum.ru import ogrn as stdnum_ogrn

from etl.cli import main as cli
from etl.sandbox.generator import Manifest, generate

NOW = date(2025, 6, 1)
SMALL = 0.003
PARTNER_KEYS = {"PARTNER", "BU_TYPE", "NAME_ORG1", "NAME_ORG2", "LEGAL_ENTY", "TAXNUMS", "STATUS", "XDELE",
                "ADDRESS", "COMM", "BANKS", "CONTACTS", "CHANGED_AT"}
CONTACT_KEYS = {"PARTNER", "NAME_LAST", "NAME_FIRST", "NAME_MIDDLE", "FUNCTION", "XDELE", "COMM"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(out, seed=3, scale=SMALL, now=NOW)
    return out


def _files(out: Path) -> dict[str, str]:
    return {k: v["sha256"] for k, v in Manifest.load(out).files.items()}


def export_elements(out: Path):
    for path in sorted((out / "shop_b").glob("export_*.json")):
        for element in json.loads(path.read_text(encoding="utf-8-sig")):
            yield path, element


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path, dataset):
    again = tmp_path / "again"
    generate(again, seed=3, scale=SMALL, now=NOW)
    first = _files(dataset)
    assert first == _files(again)
    for rel in first:  # the manifest's hashes are of the files really there
        assert (again / rel).read_bytes() == (dataset / rel).read_bytes()
    other = tmp_path / "other"
    generate(other, seed=4, scale=SMALL, now=NOW)
    differ = {k for k, v in _files(other).items() if first.get(k) != v}
    assert {"shop_a.sqlite", "egrul_registry.jsonl", "truth/companies.jsonl", "truth/contacts.jsonl"} <= differ


def test_counts_grow_roughly_linearly_with_scale(tmp_path):
    small = generate(tmp_path / "s", seed=1, scale=0.002, now=NOW).counts["records"]
    large = generate(tmp_path / "l", seed=1, scale=0.008, now=NOW).counts["records"]
    for key in ("shop-a/company", "shop-a/contact", "shop-b/company", "shop-b/contact"):
        assert 3.0 < large[key] / small[key] < 5.3, (key, small[key], large[key])
    # the mix matches the reference case: B has ~2.4x the companies of A and ~4.8 contacts each
    assert 1.8 < large["shop-b/company"] / large["shop-a/company"] < 3.0
    assert 4.0 < large["shop-b/contact"] / large["shop-b/company"] < 5.6
    assert 1.1 < large["shop-a/contact"] / large["shop-a/company"] < 1.8


def test_manifest_records_the_run(dataset):
    m = Manifest.load(dataset)
    assert (m.seed, m.scale, m.now, m.since) == (3, SMALL, "2025-06-01", "2024-01-01")
    lines = {name: len((dataset / "truth" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines())
             for name in ("companies", "contacts", "rejects")}
    assert (lines["companies"], lines["contacts"], lines["rejects"]) == (
        m.counts["truth"]["companies"], m.counts["truth"]["contacts"], m.counts["truth"]["rejects"])
    summary = json.loads((dataset / "truth/summary.json").read_text())
    assert summary["rejects"] == sum(summary["rejects_by_reason"].values()) == m.counts["truth"]["rejects"]
    for rel, info in m.files.items():
        assert (dataset / rel).stat().st_size == info["bytes"]


def test_shop_b_export_is_one_json_array_per_year_with_the_documented_keys(dataset):
    partners = set()
    statuses = Counter()
    for path, element in export_elements(dataset):
        assert PARTNER_KEYS <= element.keys()
        assert re.fullmatch(r"\d{10}", element["PARTNER"]) and element["PARTNER"] not in partners
        partners.add(element["PARTNER"])
        assert re.fullmatch(r"\d{14}", element["CHANGED_AT"])
        assert path.name == f"export_{element['CHANGED_AT'][:4]}.json"
        assert len(element["NAME_ORG1"]) <= 40 and len(element["NAME_ORG2"]) <= 40
        assert {t["TAXTYPE"] for t in element["TAXNUMS"]} <= {"RU1", "RU2", "RU3"}
        statuses[element["STATUS"]] += 1
        for phone in element["COMM"]["PHONE"]:
            assert set(phone) == {"TEL_NUMBER", "TEL_EXTENS"}
        for contact in element["CONTACTS"]:
            assert CONTACT_KEYS <= contact.keys() and re.fullmatch(r"\d{10}", contact["PARTNER"])
    assert set(statuses) == {"E0001", "E0002", "E0003"}
    assert len(partners) == Manifest.load(dataset).counts["records"]["shop-b/company"]


def test_bom_only_when_asked(tmp_path, dataset):
    path = next((dataset / "shop_b").glob("export_*.json"))
    assert not path.read_bytes().startswith(b"\xef\xbb\xbf")
    generate(tmp_path, seed=3, scale=0.0005, now=NOW, bom=True)
    for path in (tmp_path / "shop_b").glob("export_*.json"):
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        assert isinstance(json.loads(raw.decode("utf-8-sig")), list)


def test_sole_proprietors_and_name_splits_appear(dataset):
    sole = long = 0
    for _, element in export_elements(dataset):
        inn = next((t["TAXNUM"] for t in element["TAXNUMS"] if t["TAXTYPE"] == "RU1"), "").strip()
        if re.fullmatch(r"\d{12}", inn) and stdnum_inn.is_valid(inn):
            sole += 1
            assert "RU2" not in {t["TAXTYPE"] for t in element["TAXNUMS"]}
        long += bool(element["NAME_ORG2"])
    assert sole and long


def test_events_parse_and_keep_each_partners_order(dataset):
    lines = (dataset / "shop_b/events.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines
    last_time: dict[str, str] = {}
    kinds = Counter()
    seen_ids = Counter()
    for line in lines:
        msg = json.loads(line)
        assert set(msg) == {"key", "value"} and isinstance(msg["value"], str)
        event = json.loads(msg["value"])
        assert {"event_id", "event_type", "occurred_at", "partner"} <= event.keys()
        assert event["partner"]["PARTNER"] == msg["key"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["occurred_at"])
        assert event["occurred_at"] >= last_time.get(msg["key"], "")
        last_time[msg["key"]] = event["occurred_at"]
        kinds[event["event_type"]] += 1
        seen_ids[event["event_id"]] += 1
        if event["event_type"] == "BP_DELETED":
            assert event["partner"] == {"PARTNER": msg["key"]}
        else:
            assert PARTNER_KEYS <= event["partner"].keys()
            assert event["partner"]["CHANGED_AT"] == event["occurred_at"].replace("-", "").replace(
                "T", "").replace(":", "").rstrip("Z")
    assert set(kinds) <= {"BP_CREATED", "BP_CHANGED", "BP_DELETED"} and kinds["BP_CHANGED"]
    # a repeated delivery is the identical message
    for line in lines:
        event_id = json.loads(json.loads(line)["value"])["event_id"]
        if seen_ids[event_id] > 1:
            assert lines.count(line) == seen_ids[event_id]


def test_registry_lines_carry_the_required_fields(dataset):
    branches = statuses = 0
    seen = Counter()
    for line in (dataset / "egrul_registry.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        for key in ("inn", "kpp", "ogrn", "type", "branch_type", "name", "opf", "address", "state"):
            assert key in d, key
        assert {"full_with_opf", "short_with_opf", "full", "short"} <= d["name"].keys()
        assert {"code", "full", "short"} <= d["opf"].keys() and d["address"]["value"]
        assert d["state"]["status"] in {"ACTIVE", "LIQUIDATING", "LIQUIDATED", "BANKRUPT", "REORGANIZING"}
        assert {"actuality_date", "registration_date", "liquidation_date"} <= d["state"].keys()
        assert stdnum_inn.is_valid(d["inn"])
        if d["type"] == "INDIVIDUAL":
            assert len(d["inn"]) == 12 and d["kpp"] is None and d["fio"]["surname"]
            assert len(d["ogrn"]) == 15 and int(d["ogrn"][:14]) % 13 % 10 == int(d["ogrn"][14])
        else:
            assert len(d["inn"]) == 10 and re.fullmatch(r"\d{4}[\dA-Z]{2}\d{3}", d["kpp"])
            assert stdnum_ogrn.is_valid(d["ogrn"])
            assert d["branch_type"] == "BRANCH" or d["management"]["name"]
        branches += d["branch_type"] == "BRANCH"
        statuses += d["state"]["status"] != "ACTIVE"
        if d["branch_type"] == "MAIN":
            seen[d["inn"]] += 1
    assert branches and statuses
    assert max(seen.values()) == 1  # one head office per INN


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1251")


def test_shop_a_holds_cp1251_and_utf8_bytes_by_row_age(dataset):
    db = sqlite3.connect(dataset / "shop_a.sqlite")
    kinds = Counter()
    for name, created in db.execute("SELECT name, created_at FROM b2b_company"):
        assert isinstance(name, bytes)
        if not re.search(rb"[\x80-\xff]", name):
            continue
        if created < "2021-01-01":
            with pytest.raises(UnicodeDecodeError):
                name.decode("utf-8")
            assert re.search("[А-Яа-я]", name.decode("cp1251"))
            kinds["cp1251"] += 1
        else:
            assert re.search("[А-Яа-я]", name.decode("utf-8"))
            kinds["utf-8"] += 1
    assert kinds["cp1251"] and kinds["utf-8"]


def test_shop_a_mess_is_there(dataset):
    db = sqlite3.connect(dataset / "shop_a.sqlite")
    phones = [_decode(p) for (p,) in db.execute("SELECT phone FROM b2b_contact WHERE phone IS NOT NULL")]
    assert any("доб" in p for p in phones) and any(p.startswith("8") for p in phones)
    company_phones = [_decode(p) for (p,) in db.execute("SELECT phone FROM b2b_company WHERE phone IS NOT NULL")]
    assert any(re.search(r"[,;]", p) for p in company_phones)
    forms = {_decode(f) for (f,) in db.execute("SELECT legal_form FROM b2b_company WHERE legal_form IS NOT NULL")}
    assert {"ООО", "ооо", ""} <= forms
    names = [_decode(n) for (n,) in db.execute("SELECT full_name FROM b2b_contact WHERE full_name IS NOT NULL")]
    assert any(re.fullmatch(r"\S+ \S\.\s?\S\.", n.strip()) for n in names)
    assert db.execute("SELECT count(*) FROM b2b_company WHERE is_active = 0").fetchone()[0]
    assert db.execute("SELECT count(*) FROM b2b_contact WHERE is_deleted = 1").fetchone()[0]


def test_shop_a_ddl_is_the_shops_own():
    from etl.sandbox.generator.shop_a_ddl import SHOP_A_DDL

    source = Path("/work/shared/sources/shop_a.sql")
    if not source.is_file():
        pytest.skip("the shared sources are not on this machine")
    assert SHOP_A_DDL == source.read_text(encoding="utf-8")


def test_contact_identity_guarantees_hold_in_the_truth(dataset):
    by_inn: dict[str, list[dict]] = defaultdict(list)
    for line in (dataset / "truth/contacts.jsonl").read_text(encoding="utf-8").splitlines():
        person = json.loads(line)
        by_inn[person["company_inn"]].append(person)
    shared_phones = 0
    for inn, persons in by_inn.items():
        emails = Counter(e for p in persons for e in p["emails"])
        assert max(emails.values(), default=1) == 1, inn
        by_phone = defaultdict(set)
        for p in persons:
            for ph in p["phones"]:
                by_phone[ph].add(p["last_name"].lower().replace("ё", "е"))
        for ph, lasts in by_phone.items():
            holders = sum(ph in p["phones"] for p in persons)
            assert len(lasts) == holders, (inn, ph)   # a shared switchboard: all surnames differ
            shared_phones += holders > 1
    assert shared_phones


def test_memory_stays_flat_when_scale_grows(tmp_path):
    code = ("import resource, sys; from datetime import date; from etl.sandbox.generator import generate; "
            "generate(sys.argv[1], seed=1, scale=float(sys.argv[2]), now=date(2025, 6, 1)); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")

    def peak(scale: float) -> int:
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / str(scale)), str(scale)],
                             capture_output=True, text=True, check=True)
        return int(out.stdout.strip().splitlines()[-1])

    small, large = peak(0.002), peak(0.02)   # 10x the records
    assert large < small * 1.5, (small, large)


def test_cli_writes_the_data_set_and_prints_a_summary(tmp_path):
    result = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path), "--seed", "2", "--scale", "0.001",
                                      "--now", "2025-06-01"])
    assert result.exit_code == 0, result.output
    m = Manifest.load(tmp_path)
    assert (m.seed, m.now) == (2, "2025-06-01")
    assert f"{m.counts['records']['shop-b/company']} shop B partners" in result.output


def test_cli_never_prints_the_dsn_password(tmp_path):
    from tests.conftest import free_port

    dsn = f"mysql://root:Pa55w0rd-Hidden@127.0.0.1:{free_port()}/shop"
    result = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path), "--scale", "0.001", "--mysql-dsn", dsn])
    assert result.exit_code == 3, result.output
    assert "Pa55w0rd-Hidden" not in result.output and "shop" in result.output


def test_cli_refuses_a_bad_date(tmp_path):
    result = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path), "--now", "01.06.2025"])
    assert result.exit_code == 2 and "2025-06-01" in result.output
