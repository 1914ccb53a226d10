"""The state store through its public interface (`etl.state.open_state`), on every backend.

Tests taking `store` or `state_url` run twice: on a temporary SQLite file and on a fresh MariaDB
database (the `mysql_db` fixture: skipped locally without a server, failing in CI). Tests about
one backend's own ways (file paths, MySQL URLs) take neither; MySQL's live in test_state_mysql.py.
"""
from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from etl.config import ConfigError
from etl.dto import Company, Phone, Reject
from etl.secrets import register
from etl.state import (
    INTENT, RUNNING, WRITTEN, EgrulCacheEntry, PendingItem, StateError, StateStore, open_state,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "mysql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new, empty store goes: a SQLite file, or a fresh MariaDB database."""
    if request.param == "mysql":
        return request.getfixturevalue("mysql_db")
    return str(tmp_path / "state.sqlite")


@pytest.fixture
def store(state_url: str):
    with open_state(state_url) as s:
        yield s


def company(n: int) -> str:
    return f"company:{7700000000 + n}"


# -- opening -----------------------------------------------------------------------------------

def test_a_plain_path_creates_the_file_and_its_directory_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "state.sqlite"
    with open_state(str(path)) as s:
        s.set_watermark("w", "1")
    assert path.is_file()
    with open_state(path) as s:
        assert s.get_watermark("w") == "1"


def test_sqlite_urls_follow_the_sqlalchemy_convention(tmp_path: Path, monkeypatch) -> None:
    absolute = tmp_path / "abs.sqlite"
    with open_state(f"sqlite:///{absolute}") as s:  # sqlite:// + / + /abs/path
        s.set_watermark("w", "abs")
    assert absolute.is_file()
    monkeypatch.chdir(tmp_path)
    with open_state("sqlite:///rel/state.sqlite") as s:
        s.set_watermark("w", "rel")
    assert (tmp_path / "rel" / "state.sqlite").is_file()


def test_memory_store_works_and_is_private() -> None:
    with open_state(":memory:") as a, open_state("sqlite://") as b:
        a.set_watermark("w", "a")
        assert a.get_watermark("w") == "a"
        assert b.get_watermark("w") is None


def test_an_unusable_mysql_url_is_a_config_error_that_hides_the_password() -> None:
    with pytest.raises(ConfigError) as e:
        open_state("mysql://etl:s3cretpass@db.example:3306/")  # no database named
    assert "database" in str(e.value)
    assert "s3cretpass" not in str(e.value)


@pytest.mark.parametrize("url", ["postgres://u:pa55word@h/db", "redis://h:6379/0"])
def test_unknown_scheme_is_a_config_error_naming_the_choices(url: str) -> None:
    with pytest.raises(ConfigError) as e:
        open_state(url)
    assert "sqlite://" in str(e.value) and "pa55word" not in str(e.value)


@pytest.mark.parametrize("url", ["", "   ", "sqlite:///x.sqlite?mode=ro", "sqlite://host/x.sqlite"])
def test_unusable_locations_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        open_state(url)


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="directory"):
        open_state(tmp_path)


def test_a_file_that_is_not_a_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    content = b"these are not the rows you are looking for\n" * 100
    path.write_bytes(content)
    with pytest.raises(StateError) as e:
        open_state(path)
    assert str(path) in str(e.value)
    assert path.read_bytes() == content


def test_store_is_a_backend_neutral_state_store(store: StateStore) -> None:
    assert isinstance(store, StateStore)
    assert store.schema_version >= 2
    assert store.integrity_check() == []


def test_closed_store_refuses_calls(state_url: str) -> None:
    s = open_state(state_url)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StateError, match="closed"):
        s.get_watermark("w")
    with pytest.raises(StateError, match="closed"):
        s.set_watermark("w", "1")


# -- persistence -------------------------------------------------------------------------------

def test_everything_survives_a_reopen(state_url: str) -> None:
    with open_state(state_url) as s:
        run = s.start_run("full", "shop-a")
        s.record_written([(company(1), "company", 101, "h1")], run_id=run)
        s.record_intents([(company(2), "company", "h2")], run_id=run)
        s.put_contact_keys([("7700000001", "email", "a@b.ru", "contact:x")])
        s.map_sources([("shop-a", "company", "17", company(1))])
        s.set_watermark("shop-a.companies", "2024-05-01 12:00:00")
        s.put_egrul([EgrulCacheEntry("7700000001", "ACTIVE", {"name": "ООО Ромашка"}, T0)])
        s.add_rejects(run, [Reject("shop-a", "18", "company", "no_inn", "empty INN", {"id": 18})])
        s.park(run, [PendingItem("shop-a", "company", "19", "egrul_unavailable", "timeout", {"id": 19})])
        s.finish_run(run, "ok", {"read": 3})
        assert s.acquire_lock("delta:shop-a", "me", os.getpid(), "here", 60) is None
    with open_state(state_url) as s:
        assert s.get_run(run).counts == {"read": 3}
        assert s.get_entities([company(1)])[company(1)].bitrix_id == 101
        assert s.get_entities([company(2)])[company(2)].status == INTENT
        assert s.find_contact_keys([("7700000001", "email", "a@b.ru")]) == {
            ("7700000001", "email", "a@b.ru"): "contact:x"}
        assert s.identities_for_sources("shop-a", "company", ["17"]) == {"17": company(1)}
        assert s.get_watermark("shop-a.companies") == "2024-05-01 12:00:00"
        assert s.get_egrul(["7700000001"])["7700000001"].payload == {"name": "ООО Ромашка"}
        assert [r.source_id for r in s.iter_rejects()] == ["18"]
        assert [p.source_id for p in s.iter_pending()] == ["19"]
        assert s.get_lock("delta:shop-a").holder == "me"


# -- runs --------------------------------------------------------------------------------------

def test_runs_start_finish_and_list(store: StateStore) -> None:
    a = store.start_run("full", "shop-a", "crm-etl full shop-a")
    b = store.start_run("full", "shop-b", "crm-etl full shop-b --file x.json")
    c = store.start_run("delta", "shop-a")
    running = store.get_run(a)
    assert running.status == RUNNING and running.finished_at is None and running.counts == {}
    assert running.pid == os.getpid() and running.host
    store.finish_run(a, "ok", {"read": 10, "rejected": {"no_inn": 2}})
    store.finish_run(b, "failed", {"read": 1})
    done = store.get_run(a)
    assert done.status == "ok" and done.finished_at >= done.started_at
    assert done.counts == {"read": 10, "rejected": {"no_inn": 2}}
    assert store.get_run(999) is None
    assert store.last_run().run_id == c
    assert store.last_run(source="shop-b").run_id == b
    assert store.last_run(source="shop-a", status="ok").run_id == a
    assert store.last_run(source="shop-a", mode="delta").run_id == c
    assert store.last_run(source="shop-c") is None
    assert [r.run_id for r in store.list_runs()] == [c, b, a]
    assert [r.run_id for r in store.list_runs(limit=2)] == [c, b]
    assert [r.run_id for r in store.list_runs(source="shop-a")] == [c, a]


def test_finishing_an_unknown_run_is_an_error(store: StateStore) -> None:
    with pytest.raises(StateError, match="no run 42"):
        store.finish_run(42, "ok", {})


def test_run_argv_never_keeps_a_registered_secret(store: StateStore) -> None:
    register("hunter2-webhook-code")
    run = store.start_run("full", "shop-a", "crm-etl full --webhook https://p/rest/1/hunter2-webhook-code/")
    assert "hunter2-webhook-code" not in store.get_run(run).argv
    assert "crm-etl full" in store.get_run(run).argv


def test_run_counts_with_odd_values_are_stored(store: StateStore) -> None:
    run = store.start_run("full", "shop-a")
    store.finish_run(run, "ok", {"elapsed": Decimal("1.5"), "at": T0, "nan": math.nan})
    counts = store.get_run(run).counts
    assert counts["elapsed"] == "1.5" and counts["at"] == T0.isoformat() and counts["nan"] == "nan"


# -- entities ----------------------------------------------------------------------------------

def test_intent_then_written(store: StateStore) -> None:
    created = store.record_intents([(company(1), "company", "h1"), ("contact:a", "contact", "hc")], run_id=7)
    assert created == {company(1), "contact:a"}
    e = store.get_entities([company(1), "contact:a", "contact:unknown"])
    assert set(e) == {company(1), "contact:a"}
    assert (e[company(1)].status, e[company(1)].bitrix_id, e[company(1)].payload_hash) == (INTENT, None, None)
    assert e[company(1)].intent_hash == "h1" and e[company(1)].run_id == 7
    assert e["contact:a"].entity_type == "contact"

    store.record_written([(company(1), "company", 501, "h1")], run_id=8)
    w = store.get_entities([company(1)])[company(1)]
    assert (w.status, w.bitrix_id, w.payload_hash, w.intent_hash, w.run_id) == (WRITTEN, 501, "h1", None, 8)
    assert w.updated_at.tzinfo is not None


def test_intent_on_an_existing_identity_keeps_its_crm_id_and_last_hash(store: StateStore) -> None:
    store.record_written([(company(1), "company", 501, "h1")])
    assert store.record_intents([(company(1), "company", "h2"), (company(2), "company", "x")]) == {company(2)}
    e = store.get_entities([company(1)])[company(1)]
    assert (e.status, e.bitrix_id, e.payload_hash, e.intent_hash) == (INTENT, 501, "h1", "h2")
    store.record_written([(company(1), "company", 501, "h2")])
    e = store.get_entities([company(1)])[company(1)]
    assert (e.status, e.payload_hash, e.intent_hash) == (WRITTEN, "h2", None)


def test_an_identity_is_created_once_however_often_it_is_claimed(store: StateStore) -> None:
    assert store.record_intents([(company(1), "company", "a"), (company(1), "company", "b")]) == {company(1)}
    assert store.record_intents([(company(1), "company", "c")]) == set()
    assert store.get_entities([company(1)])[company(1)].intent_hash == "c"


def test_written_without_intent_and_a_replaced_crm_id(store: StateStore) -> None:
    store.record_written([(company(1), "company", 501, "h1")], run_id=1)
    store.record_written([(company(1), "company", 777, "h1")])  # re-created in the CRM
    e = store.get_entities([company(1)])[company(1)]
    assert e.bitrix_id == 777 and e.run_id == 1  # no run given: the last one is kept


def test_large_batches_of_entities(store: StateStore) -> None:
    n = 2345  # several IN (...) chunks
    store.record_written([(company(i), "company", 10_000 + i, f"h{i}") for i in range(n)])
    got = store.get_entities([company(i) for i in range(n + 10)])
    assert len(got) == n
    assert all(got[company(i)].bitrix_id == 10_000 + i for i in range(n))


@pytest.mark.parametrize("bad", ["", "x" * 256])
def test_an_unstorable_identity_is_a_value_error(store: StateStore, bad: str) -> None:
    with pytest.raises(ValueError, match="identity"):
        store.record_intents([(bad, "company", "h")])
    with pytest.raises(ValueError, match="identity"):
        store.record_written([(bad, "company", 1, "h")])
    assert store.get_entities([bad]) == {}


# -- contact match index -----------------------------------------------------------------------

def test_contact_keys_first_writer_wins(store: StateStore) -> None:
    k_mail, k_phone, k_name = ("7700000001", "email", "a@b.ru"), ("7700000001", "phone", "+74951234567"), \
        ("7700000001", "name", "иванов иван")
    conflicts = store.put_contact_keys([(*k_mail, "contact:1"), (*k_phone, "contact:1"), (*k_mail, "contact:2")])
    assert conflicts == {k_mail: "contact:1"}  # within the batch, the first one given wins
    conflicts = store.put_contact_keys([(*k_mail, "contact:3"), (*k_name, "contact:3"), (*k_phone, "contact:1")])
    assert conflicts == {k_mail: "contact:1"}  # holder keeps it; giving a key to its holder is fine
    assert store.find_contact_keys([k_mail, k_phone, k_name, ("7700000001", "email", "none@b.ru")]) == {
        k_mail: "contact:1", k_phone: "contact:1", k_name: "contact:3"}


def test_contact_keys_are_scoped_by_company_and_kind(store: StateStore) -> None:
    store.put_contact_keys([("7700000001", "email", "a@b.ru", "contact:1")])
    assert store.put_contact_keys([("7700000002", "email", "a@b.ru", "contact:2"),
                                   ("7700000001", "name", "a@b.ru", "contact:3")]) == {}
    assert store.find_contact_keys([("7700000002", "email", "a@b.ru")]) == {
        ("7700000002", "email", "a@b.ru"): "contact:2"}


def test_long_contact_key_values_are_found_again(store: StateStore) -> None:
    long_a, long_b = "а" * 300 + "1", "а" * 300 + "2"  # same first 255 characters
    assert store.put_contact_keys([("7700000001", "name", long_a, "contact:a"),
                                   ("7700000001", "name", long_b, "contact:b")]) == {}
    assert store.find_contact_keys([("7700000001", "name", long_a), ("7700000001", "name", long_b)]) == {
        ("7700000001", "name", long_a): "contact:a", ("7700000001", "name", long_b): "contact:b"}


def test_many_contact_keys(store: StateStore) -> None:
    items = [("7700000001", "email", f"p{i}@b.ru", f"contact:{i % 97}") for i in range(1200)]
    assert store.put_contact_keys(items) == {}
    found = store.find_contact_keys([(inn, k, v) for inn, k, v, _ in items])
    assert found == {(inn, k, v): ident for inn, k, v, ident in items}


# -- source map --------------------------------------------------------------------------------

def test_source_map_upserts_and_filters_by_source_and_kind(store: StateStore) -> None:
    store.map_sources([("shop-a", "company", "1", company(1)), ("shop-a", "contact", "1", "contact:x"),
                       ("shop-b", "company", "1", company(9))])
    store.map_sources([("shop-a", "company", "1", company(2))])  # the record's INN changed
    assert store.identities_for_sources("shop-a", "company", ["1", "2"]) == {"1": company(2)}
    assert store.identities_for_sources("shop-a", "contact", ["1"]) == {"1": "contact:x"}
    assert store.identities_for_sources("shop-b", "company", ["1"]) == {"1": company(9)}


def test_source_map_in_bulk_with_long_ids(store: StateStore) -> None:
    ids = [f"{i:06d}" for i in range(1500)] + ["L" * 400]
    store.map_sources([("shop-b", "company", sid, company(n)) for n, sid in enumerate(ids)])
    got = store.identities_for_sources("shop-b", "company", ids + ["missing"])
    assert got == {sid: company(n) for n, sid in enumerate(ids)}


# -- watermarks --------------------------------------------------------------------------------

def test_watermarks(store: StateStore) -> None:
    assert store.get_watermark("shop-a.companies") is None
    store.set_watermark("shop-a.companies", "2024-05-01T00:00:00|17")
    store.set_watermark("shop-a.contacts", "5")
    store.set_watermark("shop-a.companies", "2024-05-02T00:00:00|3")
    assert store.get_watermark("shop-a.companies") == "2024-05-02T00:00:00|3"
    assert store.get_watermark("shop-a.contacts") == "5"


# -- EGRUL cache -------------------------------------------------------------------------------

def test_egrul_cache_round_trip_and_upsert(store: StateStore) -> None:
    store.put_egrul([EgrulCacheEntry("7707083893", "ACTIVE", {"kpp": "773601001", "n": [1, 2]}, T0),
                     EgrulCacheEntry("500100732259", "NOT_FOUND", None, T0)])
    got = store.get_egrul(["7707083893", "500100732259", "0000000000"])
    assert set(got) == {"7707083893", "500100732259"}
    assert got["7707083893"] == EgrulCacheEntry("7707083893", "ACTIVE", {"kpp": "773601001", "n": [1, 2]}, T0)
    assert got["500100732259"].payload is None
    store.put_egrul([EgrulCacheEntry("7707083893", "LIQUIDATED", {"kpp": ""}, T0 + timedelta(days=1))])
    again = store.get_egrul(["7707083893"])["7707083893"]
    assert (again.status, again.payload, again.checked_at) == ("LIQUIDATED", {"kpp": ""}, T0 + timedelta(days=1))


def test_egrul_entry_without_checked_at_is_stamped_now(store: StateStore) -> None:
    before = datetime.now(timezone.utc)
    store.put_egrul([EgrulCacheEntry("7707083893", "ACTIVE", {})])
    assert store.get_egrul(["7707083893"])["7707083893"].checked_at >= before - timedelta(seconds=1)


def test_egrul_freshness_per_status(store: StateStore) -> None:
    store.put_egrul([EgrulCacheEntry("1000000001", "ACTIVE", {}, T0),
                     EgrulCacheEntry("1000000002", "LIQUIDATING", {}, T0),
                     EgrulCacheEntry("1000000003", "STRANGE", {}, T0)])
    days = {"ACTIVE": 14, "LIQUIDATING": 3}
    inns = ["1000000001", "1000000002", "1000000003"]
    assert set(store.get_egrul(inns, days, now=T0 + timedelta(days=2))) == {"1000000001", "1000000002"}
    assert set(store.get_egrul(inns, days, now=T0 + timedelta(days=5))) == {"1000000001"}
    assert set(store.get_egrul(inns, days, now=T0 + timedelta(days=15))) == set()
    assert set(store.get_egrul(inns)) == set(inns)  # no policy: everything cached


# -- rejects -----------------------------------------------------------------------------------

class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


@dataclass
class Opaque:
    value: object


def _circular() -> list:
    a: list = [1]
    a.append(a)
    return a


WEIRD_RAW = {
    "bytes": (b"\x00\xcf\xf0\xe8\xe2\xe5\xf2\xff", lambda raw: raw == b"\x00\xcf\xf0\xe8\xe2\xe5\xf2\xff"),
    "nul in text": ({"name": "ООО\x00Ромашка"}, lambda raw: raw == {"name": "ООО\x00Ромашка"}),
    "lone surrogate": ({"name": "caf\udce9"}, lambda raw: raw == {"name": "caf\udce9"}),
    "datetime": ({"updated": datetime(2024, 1, 2, 3, 4, 5)}, lambda raw: raw == {"updated": "2024-01-02T03:04:05"}),
    "decimal and set": ({"sum": Decimal("10.50"), "tags": {"b", "a"}},
                        lambda raw: raw == {"sum": "10.50", "tags": ["a", "b"]}),
    "nested bytes": ({"row": [1, b"\xff"]}, lambda raw: raw == {"row": [1, b"\xff"]}),
    "non-string keys": ({(1, 2): "x", 3: "y"}, lambda raw: set(raw.values()) == {"x", "y"}),
    "nan": ({"x": math.nan}, lambda raw: raw == {"x": "nan"}),
    "circular": (_circular(), lambda raw: raw[0] == 1 and "circular" in json.dumps(raw)),
    "broken repr": (BrokenRepr(), lambda raw: "unrepresentable" in raw),
    "object": (Opaque(object()), lambda raw: "object" in json.dumps(raw)),
    "dto": (Company("shop-a", "1", "7707083893", "Ромашка", phones=(Phone("+74951234567"),)),
            lambda raw: raw["inn"] == "7707083893" and raw["phones"][0]["e164"] == "+74951234567"),
    "plain string": ("just text", lambda raw: raw == "just text"),
    "none": (None, lambda raw: raw is None),
}


@pytest.mark.parametrize("case", sorted(WEIRD_RAW))
def test_rejects_keep_any_raw_record(store: StateStore, case: str) -> None:
    raw, check = WEIRD_RAW[case]
    run = store.start_run("full", "shop-a")
    assert store.add_rejects(run, [Reject("shop-a", "1", "company", "bad_record", f"case {case}", raw)]) == 1
    (row,) = store.iter_rejects(run_id=run)
    assert row.detail == f"case {case}"
    assert check(row.raw), row.raw


def test_a_huge_raw_record_is_cut_with_a_marker(store: StateStore) -> None:
    raw = {"blob": "x" * 300_000}
    run = store.start_run("full", "shop-b")
    store.add_rejects(run, [Reject("shop-b", "1", "company", "bad_record", "", raw)])
    (row,) = store.iter_rejects()
    marker = row.raw["$truncated"]
    assert marker["chars"] == len(json.dumps(raw, separators=(",", ":")))
    assert marker["head"].startswith('{"blob":"xxx') and len(marker["head"]) == 64 * 1024


def test_odd_text_in_reject_fields_is_stored(store: StateStore) -> None:
    run = store.start_run("full", "shop-a")
    store.add_rejects(run, [Reject("shop-a", 12345, "company", "no_inn", "bad \udcff byte " + "d" * 20_000)])
    (row,) = store.iter_rejects()
    assert row.source_id == "12345"
    assert row.detail.startswith("bad \\udcff byte ddd") and "cut" in row.detail and len(row.detail) < 9000


def test_a_rerun_updates_the_current_reject_instead_of_piling_up(store: StateStore) -> None:
    r1, r2 = store.start_run("full", "shop-a"), store.start_run("full", "shop-a")
    store.add_rejects(r1, [Reject("shop-a", "1", "company", "inn_checksum", "first", {"v": 1}),
                           Reject("shop-a", "2", "company", "no_inn", "", {"v": 2})])
    store.add_rejects(r2, [Reject("shop-a", "1", "company", "egrul_not_found", "second", {"v": 3})])
    store.add_rejects(r2, [Reject("shop-a", "1", "company", "egrul_not_found", "second again", {"v": 4})])
    rows = {r.source_id: r for r in store.iter_rejects()}
    assert set(rows) == {"1", "2"}
    one = rows["1"]
    assert (one.run_id, one.first_run_id, one.run_count) == (r2, r1, 2)
    assert (one.reason, one.detail, one.raw) == ("egrul_not_found", "second again", {"v": 4})
    assert one.first_rejected_at <= one.rejected_at
    assert [r.source_id for r in store.iter_rejects(run_id=r1)] == ["2"]
    assert store.count_rejects() == {"egrul_not_found": 1, "no_inn": 1}
    assert store.count_rejects(run_id=r2) == {"egrul_not_found": 1}


def test_rejects_without_source_id_stay_distinct_but_do_not_repeat(store: StateStore) -> None:
    run = store.start_run("full", "shop-b")
    store.add_rejects(run, [Reject("shop-b", "", "record", "bad_record", "not an object", "[1, 2")])
    store.add_rejects(run, [Reject("shop-b", "", "record", "bad_record", "not an object", "[1, 2"),
                            Reject("shop-b", "", "record", "bad_record", "not an object", "{{")])
    assert sorted(r.raw for r in store.iter_rejects()) == ["[1, 2", "{{"]


def test_reject_filters_and_resolve(store: StateStore) -> None:
    run = store.start_run("full", "shop-a")
    store.add_rejects(run, [Reject("shop-a", "1", "company", "no_inn"), Reject("shop-a", "1", "contact", "no_inn"),
                            Reject("shop-b", "1", "company", "inactive:LIQUIDATED"),
                            Reject("shop-a", "2", "contact", "contact_empty")])
    assert {(r.source, r.kind, r.source_id) for r in store.iter_rejects(reason="no_inn")} == {
        ("shop-a", "company", "1"), ("shop-a", "contact", "1")}
    assert [r.reason for r in store.iter_rejects(source="shop-b")] == ["inactive:LIQUIDATED"]
    assert {r.source_id for r in store.iter_rejects(source="shop-a", kind="contact")} == {"1", "2"}
    assert store.count_rejects(source="shop-a") == {"contact_empty": 1, "no_inn": 2}
    assert store.resolve_rejects([("shop-a", "company", "1"), ("shop-a", "company", "404")]) == 1
    assert store.count_rejects() == {"contact_empty": 1, "inactive:LIQUIDATED": 1, "no_inn": 1}


def test_resolving_and_unparking_many_at_once_count_each_record_once(store: StateStore) -> None:
    run = store.start_run("full", "shop-b")
    store.add_rejects(run, [Reject("shop-b", str(i), "contact", "company_rejected") for i in range(1200)])
    store.park(run, [PendingItem("shop-b", "contact", str(i), "company_pending") for i in range(1200)])
    keys = [("shop-b", "contact", str(i)) for i in range(0, 1200, 2)] * 2 + [("shop-b", "contact", "x")]
    assert store.resolve_rejects(iter(keys)) == 600 == store.unpark(iter(keys))
    assert store.count_rejects() == {"company_rejected": 600} and store.count_pending() == {"company_pending": 600}
    assert {r.source_id for r in store.iter_rejects()} == {p.source_id for p in store.iter_pending()} == {
        str(i) for i in range(1, 1200, 2)}


def test_rejects_accept_a_generator_and_stream_back_in_order(store: StateStore) -> None:
    run = store.start_run("full", "shop-b")
    n = 2500  # more than one page
    assert store.add_rejects(run, (Reject("shop-b", str(i), "contact", "contact_empty", "", {"i": i})
                                   for i in range(n))) == n
    assert [r.raw["i"] for r in store.iter_rejects(run_id=run)] == list(range(n))


def test_iterating_rejects_does_not_block_other_threads(store: StateStore) -> None:
    run = store.start_run("full", "shop-b")
    store.add_rejects(run, [Reject("shop-b", str(i), "contact", "contact_empty") for i in range(1500)])
    rows = store.iter_rejects()
    next(rows)  # suspended mid-way through the first page
    errors: list[BaseException] = []

    def write() -> None:
        try:
            store.record_written([(company(1), "company", 1, "h")])
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    t = threading.Thread(target=write)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive() and not errors
    assert sum(1 for _ in rows) == 1499


# -- pending -----------------------------------------------------------------------------------

def test_park_counts_attempts_and_unpark(store: StateStore) -> None:
    r1, r2 = store.start_run("full", "shop-a"), store.start_run("delta", "shop-a")
    store.park(r1, [PendingItem("shop-a", "company", "1", "egrul_unavailable", "timeout", {"id": 1, "b": b"\x01"}),
                    PendingItem("shop-b", "company", "X", "egrul_unavailable", "503", {"ID": "X"})])
    store.park(r2, [PendingItem("shop-a", "company", "1", "egrul_rate_limited", "429", {"id": 1, "v": 2})])
    items = {p.source_id: p for p in store.iter_pending()}
    one = items["1"]
    assert (one.attempts, one.reason, one.detail, one.raw, one.run_id) == (
        2, "egrul_rate_limited", "429", {"id": 1, "v": 2}, r2)
    assert one.first_parked_at <= one.last_tried_at
    assert items["X"].attempts == 1 and items["X"].raw == {"ID": "X"}
    assert [p.source_id for p in store.iter_pending(source="shop-b", kind="company")] == ["X"]
    assert store.count_pending() == {"egrul_rate_limited": 1, "egrul_unavailable": 1}
    assert store.count_pending(source="shop-a") == {"egrul_rate_limited": 1}
    assert store.unpark([("shop-a", "company", "1"), ("shop-a", "company", "2")]) == 1
    assert [p.source_id for p in store.iter_pending()] == ["X"]


def test_parked_bytes_come_back_as_bytes(store: StateStore) -> None:
    run = store.start_run("full", "shop-a")
    store.park(run, [PendingItem("shop-a", "company", "1", "egrul_unavailable", raw={"name": b"\xce\xce\xce"})])
    (item,) = store.iter_pending()
    assert item.raw == {"name": b"\xce\xce\xce"}


# -- locks -------------------------------------------------------------------------------------

def test_lock_is_exclusive_reentrant_and_released_by_its_holder(store: StateStore) -> None:
    me = os.getpid()
    assert store.acquire_lock("delta:shop-a", "run-1", me, "host-a", 300, now=T0) is None
    held = store.acquire_lock("delta:shop-a", "run-2", me, "host-a", 300, now=T0 + timedelta(seconds=10))
    assert (held.holder, held.pid, held.host, held.heartbeat_at) == ("run-1", me, "host-a", T0)
    assert store.acquire_lock("delta:shop-a", "run-1", me, "host-a", 300, now=T0 + timedelta(seconds=20)) is None
    assert store.get_lock("delta:shop-a").heartbeat_at == T0 + timedelta(seconds=20)
    assert store.acquire_lock("delta:shop-b", "run-2", me, "host-a", 300) is None  # other name, other lock
    assert store.release_lock("delta:shop-a", "run-2") is False
    assert store.release_lock("delta:shop-a", "run-1") is True
    assert store.get_lock("delta:shop-a") is None
    assert store.acquire_lock("delta:shop-a", "run-2", me, "host-a", 300) is None


def test_a_lock_whose_process_died_on_this_host_is_taken_over(store: StateStore) -> None:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid now names no process
    assert store.acquire_lock("delta:shop-a", "dead-run", child.pid, "host-a", 3600) is None
    # on another host the pid means nothing: still held
    assert store.acquire_lock("delta:shop-a", "run-2", os.getpid(), "host-b", 3600).holder == "dead-run"
    assert store.acquire_lock("delta:shop-a", "run-2", os.getpid(), "host-a", 3600) is None
    assert store.get_lock("delta:shop-a").holder == "run-2"


def test_a_silent_lock_is_taken_over_and_its_old_holder_notices(store: StateStore) -> None:
    me = os.getpid()
    assert store.acquire_lock("delta:shop-a", "run-1", me, "host-a", 60, now=T0) is None
    assert store.heartbeat_lock("delta:shop-a", "run-1", now=T0 + timedelta(seconds=50)) is True
    assert store.acquire_lock("delta:shop-a", "run-2", me, "host-b", 60,
                              now=T0 + timedelta(seconds=100)).holder == "run-1"  # 50 s silent
    assert store.acquire_lock("delta:shop-a", "run-2", me, "host-b", 60, now=T0 + timedelta(seconds=111)) is None
    assert store.heartbeat_lock("delta:shop-a", "run-1") is False
    assert store.release_lock("delta:shop-a", "run-1") is False
    assert store.get_lock("delta:shop-a").holder == "run-2"


def test_a_heartbeat_that_changes_nothing_still_finds_the_lock_held(store: StateStore) -> None:
    assert store.acquire_lock("delta:shop-a", "run-1", os.getpid(), "host-a", 60, now=T0) is None
    assert store.heartbeat_lock("delta:shop-a", "run-1", now=T0) is True  # same stamp: a matched row counts
    assert store.heartbeat_lock("delta:shop-a", "run-1", now=T0) is True
    assert store.heartbeat_lock("delta:shop-a", "run-2", now=T0) is False


# -- transactions and concurrency ----------------------------------------------------------------

def test_a_transaction_is_all_or_nothing(store: StateStore) -> None:
    store.set_watermark("w", "old")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.record_written([(company(1), "company", 1, "h")])
            store.map_sources([("shop-a", "company", "1", company(1))])
            store.set_watermark("w", "new")
            assert store.get_watermark("w") == "new"  # visible inside
            raise RuntimeError("the CRM batch failed")
    assert store.get_watermark("w") == "old"
    assert store.get_entities([company(1)]) == {}
    assert store.identities_for_sources("shop-a", "company", ["1"]) == {}
    with store.transaction():
        store.record_written([(company(1), "company", 1, "h")])
        store.set_watermark("w", "new")
    assert store.get_watermark("w") == "new" and company(1) in store.get_entities([company(1)])


def test_a_failed_inner_block_undoes_only_itself(store: StateStore) -> None:
    with store.transaction():
        store.set_watermark("outer", "1")
        with pytest.raises(KeyError):
            with store.transaction():
                store.set_watermark("inner", "1")
                raise KeyError("x")
        store.set_watermark("after", "1")
    assert (store.get_watermark("outer"), store.get_watermark("inner"), store.get_watermark("after")) == (
        "1", None, "1")


def test_uncommitted_writes_are_invisible_to_another_connection(state_url: str, store: StateStore) -> None:
    with open_state(state_url) as other:
        with store.transaction():
            store.set_watermark("w", "1")
            assert other.get_watermark("w") is None
        assert other.get_watermark("w") == "1"


def test_a_second_writer_waits_for_the_first_instead_of_failing(state_url: str, store: StateStore) -> None:
    errors: list[BaseException] = []
    entered = threading.Event()

    with open_state(state_url) as other:
        def second_writer() -> None:
            entered.set()
            try:
                other.set_watermark("w", "second")
            except BaseException as e:  # noqa: BLE001 - reported by the assertion below
                errors.append(e)

        with store.transaction():
            store.set_watermark("w", "first")
            t = threading.Thread(target=second_writer)
            t.start()
            entered.wait()
            t.join(timeout=0.5)  # it is blocked on our write lock meanwhile
        t.join(timeout=30)
        assert not t.is_alive() and errors == []
    assert store.get_watermark("w") == "second"


def test_threads_share_one_store(store: StateStore) -> None:
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for b in range(20):
                base = t * 10_000 + b * 10
                store.put_egrul([EgrulCacheEntry(str(1_000_000_000 + base + i), "ACTIVE", {"t": t}, T0)
                                 for i in range(10)])
                store.record_written([(company(base + i), "company", base + i, "h") for i in range(10)])
                with store.transaction():
                    store.set_watermark(f"t{t}", str(b))
                    store.map_sources([("shop-a", "company", str(base), company(base))])
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.get_egrul(str(1_000_000_000 + t * 10_000 + i) for t in range(8) for i in range(200))) == 1600
    assert len(store.get_entities(company(t * 10_000 + i) for t in range(8) for i in range(200))) == 1600
    assert all(store.get_watermark(f"t{t}") == "19" for t in range(8))


def test_contact_names_fill_blanks_and_round_trip(store: StateStore) -> None:
    store.put_contact_names([("contact:a", "иванов", "иван", ""), ("contact:b", "петров", "", "")])
    store.put_contact_names([("contact:a", "", "", "петрович"), ("contact:b", "сидоров", "пётр", "")])
    names = store.get_contact_names(["contact:a", "contact:b", "contact:zzz"])
    # an empty part keeps the stored one; a given part replaces it
    assert names == {"contact:a": ("иванов", "иван", "петрович"), "contact:b": ("сидоров", "пётр", "")}
