"""Schema versions: a store written by an older crm-etl is migrated on open, its data kept."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from etl.state import INTENT, WRITTEN, StateError, open_state

# The version-1 schema exactly as the first release of the store created it in SQLite.
# Written out here on purpose (not taken from etl.state.schema): it is the fixed past.
V1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL);
CREATE TABLE runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, mode TEXT NOT NULL, source TEXT NOT NULL,
  status TEXT NOT NULL, argv TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, started_at TEXT NOT NULL,
  finished_at TEXT, counts TEXT);
CREATE INDEX runs_by_source ON runs (source, run_id);
CREATE TABLE entities (identity TEXT NOT NULL PRIMARY KEY, entity_type TEXT NOT NULL, bitrix_id INTEGER,
  status TEXT NOT NULL, payload_hash TEXT, intent_hash TEXT, run_id INTEGER, created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL);
CREATE TABLE source_map (source TEXT NOT NULL, kind TEXT NOT NULL, source_id TEXT NOT NULL, identity TEXT NOT NULL,
  updated_at TEXT NOT NULL, PRIMARY KEY (source, kind, source_id));
CREATE TABLE watermarks (name TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE egrul_cache (inn TEXT NOT NULL PRIMARY KEY, status TEXT NOT NULL, payload TEXT, checked_at TEXT NOT NULL);
CREATE TABLE rejects (reject_id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, kind TEXT NOT NULL,
  source_id TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL, raw TEXT, run_id INTEGER NOT NULL,
  first_run_id INTEGER NOT NULL, run_count INTEGER NOT NULL, first_rejected_at TEXT NOT NULL,
  rejected_at TEXT NOT NULL, UNIQUE (source, kind, source_id));
CREATE INDEX rejects_by_run ON rejects (run_id);
CREATE INDEX rejects_by_reason ON rejects (reason);
CREATE TABLE pending (pending_id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, kind TEXT NOT NULL,
  source_id TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL, raw TEXT, attempts INTEGER NOT NULL,
  run_id INTEGER NOT NULL, first_parked_at TEXT NOT NULL, last_tried_at TEXT NOT NULL,
  UNIQUE (source, kind, source_id));
INSERT INTO schema_version VALUES (1, 'runs, entities, source map, watermarks, EGRUL cache, rejects, pending',
  '2024-04-01 00:00:00.000000');
INSERT INTO runs VALUES (1, 'full', 'shop-a', 'ok', 'crm-etl full shop-a', 'old-host', 4242,
  '2024-04-01 10:00:00.000000', '2024-04-01 11:00:00.000000', '{"read": 3, "loaded": 1}');
INSERT INTO entities VALUES ('company:7707083893', 'company', 1001, 'written', 'h1', NULL, 1,
  '2024-04-01 10:30:00.000000', '2024-04-01 10:30:00.000000');
INSERT INTO entities VALUES ('company:7736050003', 'company', NULL, 'intent', NULL, 'h2', 1,
  '2024-04-01 10:31:00.000000', '2024-04-01 10:31:00.000000');
INSERT INTO source_map VALUES ('shop-a', 'company', '17', 'company:7707083893', '2024-04-01 10:30:00.000000');
INSERT INTO watermarks VALUES ('shop-a.companies', '2024-04-01 09:59:59', '2024-04-01 11:00:00.000000');
INSERT INTO egrul_cache VALUES ('7707083893', 'ACTIVE', '{"kpp": "773601001"}', '2024-04-01 10:10:00.000000');
INSERT INTO rejects VALUES (1, 'shop-a', 'company', '18', 'no_inn', 'empty', '{"id": 18}', 1, 1, 1,
  '2024-04-01 10:20:00.000000', '2024-04-01 10:20:00.000000');
INSERT INTO pending VALUES (1, 'shop-a', 'company', '19', 'egrul_unavailable', 'timeout', '{"id": 19}', 1, 1,
  '2024-04-01 10:21:00.000000', '2024-04-01 10:21:00.000000');
"""


def make_v1(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(V1)
    conn.commit()
    conn.close()


def versions(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    finally:
        conn.close()


def test_a_version_1_store_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    make_v1(path)
    with open_state(path) as store:
        assert store.schema_version >= 2
        run = store.get_run(1)
        assert (run.mode, run.status, run.counts, run.host) == ("full", "ok", {"read": 3, "loaded": 1}, "old-host")
        assert run.started_at == datetime(2024, 4, 1, 10, 0, tzinfo=timezone.utc)
        e = store.get_entities(["company:7707083893", "company:7736050003"])
        assert (e["company:7707083893"].status, e["company:7707083893"].bitrix_id) == (WRITTEN, 1001)
        assert (e["company:7736050003"].status, e["company:7736050003"].intent_hash) == (INTENT, "h2")
        assert store.identities_for_sources("shop-a", "company", ["17"]) == {"17": "company:7707083893"}
        assert store.get_watermark("shop-a.companies") == "2024-04-01 09:59:59"
        assert store.get_egrul(["7707083893"])["7707083893"].payload == {"kpp": "773601001"}
        assert [(r.source_id, r.raw) for r in store.iter_rejects()] == [("18", {"id": 18})]
        assert [(p.source_id, p.attempts) for p in store.iter_pending()] == [("19", 1)]
        # what version 2 added works on the migrated store
        assert store.put_contact_keys([("7707083893", "email", "a@b.ru", "contact:1")]) == {}
        assert store.acquire_lock("delta:shop-a", "me", 1, "here", 60) is None
        # and new rows continue the old sequences
        assert store.start_run("delta", "shop-a") == 2
        assert store.integrity_check() == []
    assert versions(path) == list(range(1, store.schema_version + 1))


def test_opening_a_current_store_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with open_state(path) as store:
        store.set_watermark("w", "1")
        version = store.schema_version
    before = versions(path)
    with open_state(path) as store:
        assert store.schema_version == version and store.get_watermark("w") == "1"
    assert versions(path) == before


def test_a_store_from_a_newer_crm_etl_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    open_state(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (999, 'from the future', '2030-01-01 00:00:00.000000')")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="newer") as e:
        open_state(path)
    assert str(path) in str(e.value) and "upgrade" in str(e.value)
    assert versions(path)[-1] == 999  # left as it was


def test_a_failed_migration_leaves_the_old_version_intact(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    make_v1(path)
    conn = sqlite3.connect(path)  # something already squats on a name version 2 creates
    conn.execute("CREATE TABLE locks (x INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="locks"):
        open_state(path)
    assert versions(path) == [1]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'contact_keys'").fetchone() == (0,)
        assert conn.execute("SELECT bitrix_id FROM entities WHERE identity = 'company:7707083893'").fetchone() == (
            1001,)
    finally:
        conn.close()


def shape(path: Path) -> dict[str, list[tuple]]:
    """Tables and indexes with their columns (types, nullability, keys): the schema as SQLite sees it."""
    conn = sqlite3.connect(path)
    try:
        out = {}
        for kind, name in conn.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"):
            pragma = "table_info" if kind == "table" else "index_info"
            out[f"{kind}:{name}"] = sorted(tuple(r) for r in conn.execute(f"PRAGMA {pragma}({name})"))
        return out
    finally:
        conn.close()


def test_a_migrated_store_has_the_same_schema_as_a_new_one(tmp_path: Path) -> None:
    old, new = tmp_path / "old.sqlite", tmp_path / "new.sqlite"
    make_v1(old)
    open_state(old).close()
    open_state(new).close()
    assert shape(old) == shape(new)
