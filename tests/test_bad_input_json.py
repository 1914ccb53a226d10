"""Bad shop B export files through `crm-etl full shop-b --file`, the emulators and the CRM's HTTP API.

Damaged files stop with an error naming the file, the byte and the fix (exit 1), after every item
read before the damage was loaded and reported (issue 3). Items of the wrong shape or type become
rejects with a reason, or are read when the meaning is unambiguous; nothing crashes, nothing
disappears without a trace.
"""
from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import pytest

from tests.bad_input_support import ACTIVE, Stage, partner, write_export


@pytest.fixture
def stage(tmp_path: Path):
    s = Stage(tmp_path)
    yield s
    s.stop()


def dump(items: list[Any]) -> bytes:
    return json.dumps(items, ensure_ascii=False).encode("utf-8")


def last_run(stage: Stage) -> dict[str, Any]:
    r = stage.cli("report", "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


GOOD = [partner(1), partner(2)]
HEAD = dump(GOOD)[:-1] + b", "          # two good items, then the damaged third one
THIRD = json.dumps(partner(3), ensure_ascii=False).encode("utf-8")

# name -> (file bytes, offset of the damage, what the message says, what it tells to do)
DAMAGED = {
    "truncated": (HEAD + THIRD[:40], len(HEAD) + 40, "ends in the middle", "get the complete file"),
    "cp1251 item in a UTF-8 file (mixed encodings)": (
        HEAD + THIRD.decode("utf-8").encode("cp1251") + b"]",
        len(HEAD) + THIRD.decode("utf-8").encode("cp1251").index(b'"\xca') + 1,
        "look like Windows-1251", "iconv -f CP1251"),
    "invalid UTF-8 bytes": (HEAD + THIRD[:30] + b"\x98\x99\xa0" + THIRD[30:] + b"]", len(HEAD) + 30,
                            "not valid UTF-8", "re-export the file as UTF-8"),
    "raw NUL byte inside a string": (HEAD + THIRD[:30] + b"\x00" + THIRD[30:] + b"]", len(HEAD) + 30,
                                     "control byte 0x00", "escaped"),
    # a parse (not lexical) error: yajl points just past the token it could not take
    "garbage between items": (HEAD + b"}}" + THIRD + b"]", len(HEAD) + 1, "not valid JSON", "fix the file"),
}


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_damaged_file_loads_what_came_before_and_names_file_byte_and_fix(stage: Stage, damage: str) -> None:
    data, offset, problem, fix = DAMAGED[damage]
    path = stage.dir / "export.json"
    path.write_bytes(data)
    r = stage.full_b(path)
    assert r.exit_code == 1, r.output
    message = r.output.strip().splitlines()[-1]
    assert str(path) in message and f"at byte {offset})" in message, message
    assert problem in message and fix in message, message
    companies, _ = stage.crm()
    assert set(companies) == {ACTIVE[1], ACTIVE[2]}, "the two items before the damage are loaded"
    run = last_run(stage)
    assert run["status"] == "failed" and run["companies"]["created"] == 2, run
    assert str(path) in run["error"]


def test_second_file_damaged_first_file_loaded(stage: Stage) -> None:
    good = write_export(stage.dir / "2024.json", [partner(4)])
    bad = stage.dir / "2025.json"
    bad.write_bytes(dump([partner(5), partner(6)])[:-20])
    r = stage.full_b(good, bad)
    assert r.exit_code == 1 and "2025.json" in r.output and "2024.json" not in r.output.splitlines()[-1]
    assert set(stage.crm()[0]) == {ACTIVE[4], ACTIVE[5]}  # and the complete item of the damaged one


@pytest.mark.parametrize("name, data, exit_code, says", [
    # a UTF-8 BOM is allowed by the format (sources/README.md): read as if it were not there
    ("bom", codecs.BOM_UTF8 + dump([partner(6)]), 0, ""),
    ("utf-16", json.dumps([partner(6)], ensure_ascii=False).encode("utf-16"), 1, "iconv -f UTF-16"),
    ("empty", b"", 1, "the file is empty"),
    ("only whitespace", b" \n\t\n", 1, "the file is empty"),
    ("gzip", b"\x1f\x8b\x08\x00garbage", 1, "gzip-compressed"),
    ("empty array", b"[]", 0, ""),
])
def test_file_encodings_and_empty_files(stage: Stage, name: str, data: bytes, exit_code: int, says: str) -> None:
    path = stage.dir / "export.json"
    path.write_bytes(data)
    r = stage.full_b(path)
    assert r.exit_code == exit_code, r.output
    assert says in r.output and (not says or str(path) in r.output)
    loaded = set(stage.crm()[0])
    assert loaded == ({ACTIVE[6]} if name == "bom" else set())


def test_a_file_that_is_not_an_array(stage: Stage) -> None:
    """Decision: a file whose first character is not `[` is read as JSON lines (the format's
    alternative), so a lone object or scalar is one record, and one that is not a partner is a
    `bad_record` reject naming what it is; a pretty-printed object (the usual wrapper) is an error
    that says how to point item_path at the items."""
    one_line = stage.dir / "object.json"
    one_line.write_text(json.dumps({"export": "SAP", "count": 2}), encoding="utf-8")
    r = stage.full_b(one_line)
    assert r.exit_code == 0, r.output
    run = last_run(stage)
    rejects = stage.cli("rejects", "--run", str(run["run"]), "--format", "json").output.splitlines()
    assert len(rejects) == 1 and json.loads(rejects[0])["reason"] == "bad_record"
    assert "PARTNER: missing" in json.loads(rejects[0])["detail"]

    wrapper = stage.dir / "wrapper.json"
    wrapper.write_text(json.dumps({"data": [partner(7)]}, indent=2), encoding="utf-8")
    r = stage.full_b(wrapper)
    assert r.exit_code == 1 and "wrapper.json" in r.output and "item_path" in r.output, r.output


def test_a_string_of_megabytes_costs_linear_time_and_rejects_only_its_record(stage: Stage) -> None:
    """yajl re-scans a token split over read chunks; the extractor's growing reads keep a 24 MB
    string of escapes (4 M Cyrillic letters) cheap. The record is rejected naming the field; a huge
    value in a field we do not map is ignored; the items around them load."""
    items = [partner(8, NAME_ORG1="я" * 4_000_000), partner(9, NOTES="x" * 3_000_000),
             partner(10, CONTACTS=[{"PARTNER": "0000090001", "NAME_LAST": "Щ" * 1_000_000}])]
    path = stage.dir / "export.json"
    path.write_bytes(json.dumps(items).encode("ascii"))  # \u escapes: the slow kind for yajl
    r = stage.full_b(path)
    assert r.exit_code == 0, r.output
    rejects = stage.rejects()
    assert rejects[("company", "0000000008")]["reason"] == "bad_record"
    assert "NAME_ORG1: 4000000 characters long" in rejects[("company", "0000000008")]["detail"]
    assert rejects[("contact", "0000090001")]["detail"].startswith("CONTACTS[0].NAME_LAST: 1000000 characters")
    assert set(stage.crm()[0]) == {ACTIVE[9], ACTIVE[10]}


def nulls(item: dict[str, Any]) -> dict[str, Any]:
    """Every field of the item null except the ones a partner cannot be told apart without."""
    keep = ("PARTNER", "STATUS", "TAXNUMS")
    return {k: (v if k in keep else None) for k, v in item.items()}


# The items of one export, each a different kind of wrong; (kind, source_id) -> the reject expected
# (reason, words of its detail), or None: the item loads.
WRONG = [
    (5, ("record", "#0"), ("bad_record", "record #0 is a number, not an object")),
    ("x", ("record", "#1"), ("bad_record", "is a string, not an object")),
    (None, ("record", "#2"), ("bad_record", "is null, not an object")),
    ([partner(11)], ("record", "#3"), ("bad_record", "is a list, not an object")),
    # INN as a JSON number: read as text; one that lost its leading zero gets it back
    (partner(11, TAXNUMS=[{"TAXTYPE": "RU1", "TAXNUM": int(ACTIVE[11])}]), ("company", "0000000011"), None),
    (partner(12, inn=None, TAXNUMS=[{"TAXTYPE": "RU1", "TAXNUM": 274062111}]),
     ("company", "0000000012"), ("egrul_not_found", "")),   # 0274062111: valid, not in our registry
    (partner(13, TAXNUMS=[{"TAXTYPE": "RU1", "TAXNUM": [ACTIVE[1]]}]), ("company", "0000000013"),
     ("bad_record", "TAXNUMS[0].TAXNUM: expected text, got a list")),
    (partner(14, TAXNUMS=[{"TAXTYPE": "RU1", "TAXNUM": True}]), ("company", "0000000014"),
     ("bad_record", "TAXNUMS[0].TAXNUM: expected text, got a boolean")),
    (partner(15, TAXNUMS={"RU1": ACTIVE[1]}), ("company", "0000000015"),
     ("bad_record", "TAXNUMS: expected a list, got an object")),
    # phones: a number and a list of numbers are read; a list where objects belong is a bad record
    (partner(16, inn=ACTIVE[3], COMM={"PHONE": [{"TEL_NUMBER": 84951234567}],
                                      "MOBILE": [{"TEL_NUMBER": ["8 916 123-45-67", "8 926 765-43-21"]}]}),
     ("company", "0000000016"), None),
    (partner(17, COMM={"PHONE": ["8 495 123-45-67"]}), ("company", "0000000017"),
     ("bad_record", "COMM.PHONE[0]: expected an object, got a string")),
    (partner(18, COMM={"PHONE": 84951234567}), ("company", "0000000018"),
     ("bad_record", "COMM.PHONE: expected a list, got a number")),
    # nulls everywhere: a partner without identity is a bad record; nulls elsewhere mean blank
    ({k: None for k in partner(19)}, ("company", "#12"), ("bad_record", "PARTNER: missing")),
    (nulls(partner(20, inn=ACTIVE[0])), ("company", "0000000020"), None),
    (partner(21, STATUS=None), ("company", "0000000021"), ("source_inactive", "STATUS = ''")),
    (partner(22, TAXNUMS=None), ("company", "0000000022"), ("no_inn", "TAXNUMS has no RU1")),
    (partner(23, TAXNUMS=[{"TAXTYPE": "RU1", "TAXNUM": None}]), ("company", "0000000023"), ("no_inn", "")),
    (partner(24, inn=ACTIVE[5], CONTACTS=[None, {"PARTNER": None}, {k: None for k in partner(0)["CONTACTS"][0]}
                                          | {"PARTNER": "0000090024"}]),
     ("contact", "0000000024/0"), ("bad_record", "CONTACTS[0]: expected an object, got null")),
    (partner(25, CHANGED_AT=20250115103000.5), ("company", "0000000025"),
     ("bad_record", "CHANGED_AT: expected YYYYMMDDhhmmss text, got a number")),
]


def test_items_of_the_wrong_shape_or_type(stage: Stage) -> None:
    path = write_export(stage.dir / "export.json", [item for item, _, _ in WRONG])
    r = stage.full_b(path)
    assert r.exit_code == 0, r.output
    rejects = stage.rejects()
    for item, key, expected in WRONG:
        if expected is None:
            assert key not in rejects, (key, rejects.get(key))
            continue
        assert key in rejects, (key, item if not isinstance(item, dict) else item.get("PARTNER"))
        reason, words = expected
        assert rejects[key]["reason"] == reason and words in rejects[key]["detail"], rejects[key]
    # the other two contacts of partner 24: no partner number; nothing to identify a person by
    assert rejects[("contact", "0000000024/1")]["reason"] == "bad_record"
    assert rejects[("contact", "0000090024")]["reason"] == "contact_empty"
    companies, _ = stage.crm()
    assert set(companies) == {ACTIVE[11], ACTIVE[3], ACTIVE[0], ACTIVE[5]}
    phones = {p["VALUE"] for p in companies[ACTIVE[3]]["PHONE"]}
    assert phones == {"+74951234567", "+79161234567", "+79267654321"}
    # the all-null partner: blank fields, its registry name, no phone, no contact
    assert companies[ACTIVE[0]]["TITLE"] and "PHONE" not in companies[ACTIVE[0]]
    assert last_run(stage)["status"] == "ok"
