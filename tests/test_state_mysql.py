"""The MySQL/MariaDB state store's own ways: URLs, schema, migrations, lost connections,
deadlocks and processes racing on one database (as workers on several hosts do).

Everything the two backends share runs on both in test_state.py and test_state_processes.py.
Tests here get a fresh database each from the `mysql_db` fixture (skipped locally without a
server, failing in CI).
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pymysql
import pytest

from etl.config import ConfigError
from etl.state import StateError, StateStore, open_state, schema
from etl.state.mysql import parse_mysql_url
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 3
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def admin(url: str, database: str | None = None) -> pymysql.connections.Connection:
    """A connection of our own to the test server, beside the store's."""
    u = urlsplit(url)
    return pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", database=database, autocommit=True, charset="utf8mb4")


def db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def sql(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    conn = admin(url, db_name(url))
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def versions(url: str) -> list[int]:
    return [v for (v,) in sql(url, "SELECT version FROM schema_version ORDER BY version")]


@pytest.fixture
def store(mysql_db: str) -> Iterator[StateStore]:
    with open_state(mysql_db) as s:
        yield s


@pytest.fixture
def other_db(mysql_db: str) -> Iterator[str]:
    """A second fresh database on the same server."""
    name = f"{db_name(mysql_db)}_b"
    conn = admin(mysql_db)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield mysql_db.rsplit("/", 1)[0] + "/" + name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_together(script: str, n: int, go: Path, *args: str,
                 around: Callable[[Callable[[], None]], None] | None = None) -> list[dict]:
    """Start n copies of `script`, release them at once (the `go` file), return their JSON answers.

    `around(release)`, if given, is what releases them. Each prints one JSON line, then stays
    alive until all have answered (its stdin closes): no racer's pid is gone while others race."""
    procs = [spawn(script, str(go), f"p{i}", *args) for i in range(n)]
    time.sleep(0.4)  # let them import and connect
    (around or (lambda release: release()))(go.touch)
    lines = [proc.stdout.readline() for proc in procs]
    answers = []
    for proc, line in zip(procs, lines):
        _, err = proc.communicate(input="", timeout=120)
        assert proc.returncode == 0 and line, err
        answers.append(json.loads(line))
    return answers


# -- URLs ------------------------------------------------------------------------------------

def test_a_url_gives_host_port_database_and_options_and_hides_the_password() -> None:
    u = parse_mysql_url("mysql+pymysql://etl%40corp:p%40ss-w0rd@db.example:3307/crm_state"
                        "?connect_timeout=3&lock_timeout=20&read_timeout=90")
    assert (u.host, u.port, u.user, u.database) == ("db.example", 3307, "etl@corp", "crm_state")
    assert (u.connect_timeout, u.lock_timeout, u.read_timeout) == (3, 20, 90)
    assert u.password.reveal() == "p@ss-w0rd"
    assert u.location == "mysql://etl@corp@db.example:3307/crm_state"
    assert parse_mysql_url("mysql://etl@db.example/state").port == 3306


@pytest.mark.parametrize("url, says", [
    ("mysql://etl:Pa55-word@db.example:3306/", "database"),
    ("mysql://etl:Pa55-word@:3306/state", "host"),
    ("mysql://etl:Pa55-word@db.example:3306/state?timeout=5", "unknown option"),
    ("mysql://etl:Pa55-word@db.example:3306/state?lock_timeout=-1", "lock_timeout"),
    ("mysql://etl:Pa55-word@db.example:3306/state?connect_timeout=soon", "connect_timeout"),
    ("mysql://etl:Pa55-word@db.example:3306/state?lock_timeout=120&read_timeout=60", "read_timeout"),
    ("mysql://etl:Pa55-word@db.example:99999/state", "port"),
])
def test_an_unusable_url_is_a_config_error_without_the_password(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as e:
        open_state(url)
    assert "Pa55-word" not in str(e.value)


def test_an_unreachable_server_is_a_state_error_naming_it_and_the_fix() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(StateError) as e:
        open_state(f"mysql://etl:Unreach4ble-pw@127.0.0.1:{port}/crm_state?connect_timeout=2")
    text = str(e.value)
    assert f"127.0.0.1:{port}/crm_state" in text and "server is running" in text
    assert "Unreach4ble-pw" not in text


def test_a_missing_database_is_named_and_not_created(mysql_db: str) -> None:
    missing = db_name(mysql_db) + "_missing"
    with pytest.raises(StateError, match="CREATE DATABASE") as e:
        open_state(mysql_db.rsplit("/", 1)[0] + "/" + missing)
    assert missing in str(e.value)
    assert sql(mysql_db, "SHOW DATABASES LIKE %s", (missing,)) == []


@pytest.fixture
def user_with_password(mysql_db: str) -> Iterator[tuple[str, str]]:
    user, password = "crm_etl_u_" + secrets.token_hex(3), "Sw0rdfish-" + secrets.token_hex(4)
    conn = admin(mysql_db)
    with conn.cursor() as cur:
        for host in ("%", "localhost"):
            cur.execute(f"CREATE USER '{user}'@'{host.replace('%', '%%')}' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL ON `{db_name(mysql_db)}`.* TO '{user}'@'{host}'")
    try:
        yield user, password
    finally:
        with conn.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        conn.close()


def test_a_password_is_used_but_never_shown(mysql_db: str, user_with_password: tuple[str, str]) -> None:
    user, password = user_with_password
    server = urlsplit(mysql_db)
    url = f"mysql://{user}:{password}@{server.hostname}:{server.port}/{db_name(mysql_db)}"
    with open_state(url) as store:
        store.set_watermark("w", "1")
        assert store.get_watermark("w") == "1"
        assert password not in store.location and user in store.location
        with pytest.raises(StateError) as e:  # a failing statement names the store, not the password
            store.map_sources([("s" * 100, "company", "1", "company:1")])
        assert password not in str(e.value) and db_name(mysql_db) in str(e.value)
    with pytest.raises(StateError, match="user name and password") as e:
        open_state(url.replace(password, password + "-wrong"))
    assert password not in str(e.value)


# -- schema ----------------------------------------------------------------------------------

def test_a_fresh_database_gets_every_table_in_utf8mb4_with_byte_exact_keys(store: StateStore,
                                                                           mysql_db: str) -> None:
    assert store.schema_version == schema.LATEST_VERSION
    assert versions(mysql_db) == [m.version for m in schema.MIGRATIONS]
    tables = sql(mysql_db, "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES"
                           " WHERE TABLE_SCHEMA = DATABASE()")
    assert {t for t, _, _ in tables} >= {"runs", "entities", "contact_keys", "locks", "rejects", "pending"}
    for table, engine, collation in tables:  # the database itself defaults to latin1 (the fixture)
        assert engine == "InnoDB" and collation in ("utf8mb4_nopad_bin", "utf8mb4_0900_bin"), table
    types = dict(sql(mysql_db, "SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME), COLUMN_TYPE FROM"
                               " information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"))
    assert types["rejects.raw"] == "mediumtext" and types["rejects.rejected_at"] == "datetime(6)"
    assert types["entities.identity"] == "varchar(255)"
    assert store.integrity_check() == []


def test_keys_differing_in_case_accents_or_trailing_space_stay_apart(store: StateStore) -> None:
    variants = ["a@b.ru", "A@b.ru", "a@b.ru ", "é@b.ru", "e\u0301@b.ru", "😀@b.ru"]
    assert store.put_contact_keys([("7700000001", "email", v, f"contact:{n}") for n, v in enumerate(variants)]) == {}
    found = store.find_contact_keys([("7700000001", "email", v) for v in variants])
    assert [found[("7700000001", "email", v)] for v in variants] == [f"contact:{n}" for n in range(len(variants))]
    identities = ["company:x", "company:X", "company:x "]
    assert store.record_intents([(i, "company", "h") for i in identities]) == set(identities)


def test_reopening_applies_no_migration_twice(mysql_db: str) -> None:
    open_state(mysql_db).close()
    before = sql(mysql_db, "SELECT version, applied_at FROM schema_version ORDER BY version")
    for _ in range(2):
        with open_state(mysql_db) as store:
            assert store.schema_version == schema.LATEST_VERSION
    assert sql(mysql_db, "SELECT version, applied_at FROM schema_version ORDER BY version") == before


def test_a_store_from_a_newer_crm_etl_is_refused(mysql_db: str) -> None:
    open_state(mysql_db).close()
    sql(mysql_db, "INSERT INTO schema_version VALUES (999, 'from the future', '2030-01-01 00:00:00')")
    with pytest.raises(StateError, match="newer") as e:
        open_state(mysql_db)
    assert db_name(mysql_db) in str(e.value) and "upgrade" in str(e.value)
    assert versions(mysql_db)[-1] == 999


def shape(url: str) -> dict[str, list[tuple]]:
    """Columns and indexes as the server sees them."""
    cols = sql(url, "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLLATION_NAME,"
                    " COLUMN_KEY, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()")
    idx = sql(url, "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE FROM"
                   " information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()")
    return {"columns": sorted(cols), "indexes": sorted(idx)}


def test_a_version_1_store_is_migrated_keeps_its_data_and_matches_a_new_one(
        mysql_db: str, other_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from etl.dto import Reject

    with monkeypatch.context() as m:  # what the first release created
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        m.setattr(schema, "LATEST_VERSION", 1)
        with open_state(mysql_db) as old:
            assert old.schema_version == 1
            run = old.start_run("full", "shop-a")
            old.record_written([("company:7707083893", "company", 1001, "h1")], run_id=run)
            old.add_rejects(run, [Reject("shop-a", "18", "company", "no_inn", "empty", {"id": 18})])
    with open_state(mysql_db) as store:
        assert store.schema_version == schema.LATEST_VERSION
        assert store.get_entities(["company:7707083893"])["company:7707083893"].bitrix_id == 1001
        assert [(r.source_id, r.raw) for r in store.iter_rejects()] == [("18", {"id": 18})]
        assert store.put_contact_keys([("7707083893", "email", "a@b.ru", "contact:1")]) == {}
        assert store.start_run("delta", "shop-a") == run + 1
    open_state(other_db).close()
    assert shape(mysql_db) == shape(other_db)


def test_an_interrupted_migration_is_resumed(mysql_db: str, other_db: str) -> None:
    open_state(mysql_db).close()
    # as if the process died inside version 2: its first table made, the second not, no version row
    sql(mysql_db, "DROP TABLE locks")
    sql(mysql_db, "DROP TABLE contact_names")
    sql(mysql_db, "DELETE FROM schema_version WHERE version >= 2")
    with open_state(mysql_db) as store:
        assert store.schema_version == schema.LATEST_VERSION
        assert store.acquire_lock("delta:shop-a", "me", 1, "here", 60) is None
    assert versions(mysql_db) == [m.version for m in schema.MIGRATIONS]
    open_state(other_db).close()
    assert shape(mysql_db) == shape(other_db)


def test_a_foreign_table_in_the_way_of_a_migration_is_refused_by_name(mysql_db: str) -> None:
    open_state(mysql_db).close()
    sql(mysql_db, "DROP TABLE locks")
    sql(mysql_db, "DELETE FROM schema_version WHERE version >= 2")
    sql(mysql_db, "CREATE TABLE locks (x INTEGER)")  # someone else's table of that name
    with pytest.raises(StateError, match="`locks`.*not crm-etl's"):
        open_state(mysql_db)
    assert versions(mysql_db) == [1]
    sql(mysql_db, "DROP TABLE locks")
    with open_state(mysql_db) as store:
        assert store.schema_version == schema.LATEST_VERSION


OPENER = """
    import json, sys, time
    from pathlib import Path
    from etl.state import open_state

    go, me, url = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    while not go.exists():
        time.sleep(0.002)
    with open_state(url) as store:
        print(json.dumps({"version": store.schema_version}), flush=True)
    sys.stdin.read()
"""


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_processes_opening_a_new_database_at_once_migrate_it_once(mysql_db: str, tmp_path: Path,
                                                                   round_: int) -> None:
    answers = run_together(OPENER, 5, tmp_path / "go", mysql_db)
    assert [a["version"] for a in answers] == [schema.LATEST_VERSION] * 5
    assert versions(mysql_db) == [m.version for m in schema.MIGRATIONS]
    with open_state(mysql_db) as store:
        assert store.integrity_check() == []


def test_integrity_check_reports_a_missing_table(store: StateStore, mysql_db: str) -> None:
    sql(mysql_db, "DROP TABLE pending")
    assert store.integrity_check() == ["table pending is missing"]


# -- values ----------------------------------------------------------------------------------

def test_a_value_too_long_for_its_column_is_an_error_not_a_silent_cut(store: StateStore) -> None:
    long_inn = "7" * 100  # contact_keys.company_inn holds 64 characters
    with pytest.raises(StateError, match="company_inn.*longer than its column"):
        store.put_contact_keys([(long_inn, "email", "a@b.ru", "contact:1")])
    assert store.find_contact_keys([(long_inn, "email", "a@b.ru"), (long_inn[:64], "email", "a@b.ru")]) == {}
    with pytest.raises(StateError, match="source"):
        store.map_sources([("s" * 65, "company", "1", "company:1")])


# -- connections -----------------------------------------------------------------------------

def kill_store_connections(url: str) -> None:
    """End the store's server session(s), as a server restart or wait_timeout would."""
    conn = admin(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
                        (db_name(url),))
            ids = [i for (i,) in cur.fetchall()]
            assert ids, "the store has no connection to kill"
            for i in ids:
                cur.execute(f"KILL {int(i)}")
            for _ in range(500):  # wait until they are gone
                cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (%s)"
                            % ", ".join(str(int(i)) for i in ids))
                if cur.fetchone()[0] == 0:
                    return
                time.sleep(0.01)
    finally:
        conn.close()


def test_a_connection_the_server_closed_while_idle_is_reopened_unnoticed(store: StateStore, mysql_db: str) -> None:
    store.set_watermark("w", "1")
    kill_store_connections(mysql_db)
    assert store.get_watermark("w") == "1"
    kill_store_connections(mysql_db)
    store.set_watermark("w", "2")
    with store.transaction():
        assert store.get_watermark("w") == "2"


def test_a_connection_lost_inside_a_transaction_fails_it_and_keeps_none_of_it(store: StateStore,
                                                                             mysql_db: str) -> None:
    store.set_watermark("w", "before")
    with pytest.raises(StateError, match="lost|rolled"):
        with store.transaction():
            store.set_watermark("w", "inside")
            store.record_written([("company:1", "company", 1, "h")])
            kill_store_connections(mysql_db)
            store.map_sources([("shop-a", "company", "1", "company:1")])  # must not reconnect and go on
    assert store.get_watermark("w") == "before"  # the store reconnects for the next call
    assert store.get_entities(["company:1"]) == {}
    assert store.identities_for_sources("shop-a", "company", ["1"]) == {}


def test_a_writer_waiting_longer_than_lock_timeout_gets_a_state_error(store: StateStore, mysql_db: str) -> None:
    with open_state(mysql_db + "?lock_timeout=1") as impatient:
        with store.transaction():
            store.set_watermark("w", "held")
            with pytest.raises(StateError, match="lock_timeout"):
                impatient.set_watermark("w", "waited")
    assert store.get_watermark("w") == "held"


def test_a_lock_timeout_inside_a_transaction_keeps_none_of_it(store: StateStore, mysql_db: str) -> None:
    with open_state(mysql_db + "?lock_timeout=1") as impatient:
        with store.transaction():
            store.set_watermark("w", "held")
            with pytest.raises(StateError, match="nothing of it was committed"):
                with impatient.transaction():
                    impatient.set_watermark("mine", "x")
                    with pytest.raises(StateError, match="lock_timeout"):
                        impatient.set_watermark("w", "waited")  # the caller swallows it and carries on
        assert impatient.get_watermark("mine") is None
    assert store.get_watermark("w") == "held"


# -- uniqueness under concurrent writers ------------------------------------------------------

def test_a_batch_meeting_an_identity_another_worker_is_creating_creates_the_rest(store: StateStore,
                                                                               mysql_db: str) -> None:
    result: list[object] = []
    with open_state(mysql_db) as other:
        t = threading.Thread(target=lambda: result.append(other.record_intents(
            [("company:2", "company", "other"), ("company:1", "company", "other"), ("company:3", "company", "other")])))
        with store.transaction():  # the winner: not committed yet when the other batch looks
            assert store.record_intents([("company:2", "company", "winner")]) == {"company:2"}
            t.start()
            wait_for_lock_wait(mysql_db)  # the other batch waits for company:2
        t.join(timeout=60)
    assert result == [{"company:1", "company:3"}]
    assert store.get_entities(["company:2"])["company:2"].intent_hash == "winner"  # left as the winner wrote it


def test_a_contact_key_another_worker_is_giving_away_is_reported_as_its(store: StateStore, mysql_db: str) -> None:
    result: list[object] = []
    key, free = ("7700000001", "email", "a@b.ru"), ("7700000001", "phone", "+74950000000")
    with open_state(mysql_db) as other:
        t = threading.Thread(target=lambda: result.append(other.put_contact_keys(
            [(*key, "contact:other"), (*free, "contact:other")])))
        with store.transaction():
            assert store.put_contact_keys([(*key, "contact:first")]) == {}
            t.start()
            wait_for_lock_wait(mysql_db)
        t.join(timeout=60)
    assert result == [{key: "contact:first"}]
    assert store.find_contact_keys([key, free]) == {key: "contact:first", free: "contact:other"}


# -- deadlocks -------------------------------------------------------------------------------

def wait_for_lock_wait(url: str, waiting: int = 1) -> None:
    """Block until `waiting` transactions on this database wait for a row lock."""
    conn = admin(url)
    try:
        with conn.cursor() as cur:
            for _ in range(200):
                cur.execute("SELECT COUNT(*) FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p"
                            " ON p.ID = t.trx_mysql_thread_id WHERE t.trx_state = 'LOCK WAIT' AND p.DB = %s",
                            (db_name(url),))
                if cur.fetchone()[0] >= waiting:
                    return
                time.sleep(0.15)  # InnoDB refreshes this table only when unread for 0.1 s
        raise AssertionError(f"fewer than {waiting} transaction(s) started waiting for a lock")
    finally:
        conn.close()


def deadlocks(url: str) -> int:
    return int(sql(url, "SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")[0][1])


def test_a_store_call_that_loses_a_deadlock_is_run_again(store: StateStore, mysql_db: str) -> None:
    fillers = [(f"company:f{i}", "company", i, "h") for i in range(100)]
    before = deadlocks(mysql_db)
    errors: list[BaseException] = []
    with open_state(mysql_db) as small:
        def small_writer() -> None:
            try:  # takes company:x, then waits for company:y
                small.record_written([("company:x", "company", 2, "small"), ("company:y", "company", 2, "small")])
            except BaseException as e:  # noqa: BLE001 - reported by the assertion below
                errors.append(e)

        with store.transaction():  # the heavier transaction: the server keeps it, rolls the small one back
            store.record_written([*fillers, ("company:y", "company", 1, "big")])
            t = threading.Thread(target=small_writer)
            t.start()
            wait_for_lock_wait(mysql_db)
            store.record_written([("company:x", "company", 1, "big")])  # closes the cycle
        t.join(timeout=60)
        assert not t.is_alive() and errors == []
        assert small.deadlocks_retried == 1
    assert deadlocks(mysql_db) > before
    got = store.get_entities(["company:x", "company:y", "company:f99"])
    assert {i: e.payload_hash for i, e in got.items()} == {
        "company:x": "small", "company:y": "small", "company:f99": "h"}  # its second run came last


def test_a_deadlock_inside_a_transaction_fails_the_whole_transaction(store: StateStore, mysql_db: str) -> None:
    errors: list[BaseException] = []
    with open_state(mysql_db) as heavy:
        def heavy_writer() -> None:
            try:
                with heavy.transaction():
                    for i in range(50):
                        heavy.set_watermark(f"h{i}", "x")
                    heavy.set_watermark("q", "heavy")
                    heavy.set_watermark("p", "heavy")  # waits for the light one
            except BaseException as e:  # noqa: BLE001 - reported by the assertion below
                errors.append(e)

        with pytest.raises(StateError, match="nothing of it was committed"):
            with store.transaction():
                store.set_watermark("p", "light")
                t = threading.Thread(target=heavy_writer)
                t.start()
                wait_for_lock_wait(mysql_db)
                with pytest.raises(StateError, match="deadlock"):
                    store.set_watermark("q", "light")  # the cycle: the light transaction is rolled back
                # a caller that swallows the error cannot go on as if its transaction were alive
                with pytest.raises(StateError, match="already failed on the server"):
                    store.set_watermark("r", "light")
        t.join(timeout=60)
        assert not t.is_alive() and errors == []
    assert (store.get_watermark("p"), store.get_watermark("q"), store.get_watermark("r")) == ("heavy", "heavy", None)
    store.set_watermark("r", "after")  # the store itself is fine
    assert store.get_watermark("r") == "after"


# -- processes racing on one database ----------------------------------------------------------

TAKER = """
    import json, os, sys, time
    from pathlib import Path
    from etl.state import open_state

    go, me, url, host = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    store = open_state(url)
    while not go.exists():
        time.sleep(0.002)
    held = store.acquire_lock("delta:shop-a", me, os.getpid(), host, 60)
    print(json.dumps({"me": me, "won": held is None, "holder": None if held is None else held.holder}), flush=True)
    sys.stdin.read()  # alive (its pid in use) until every taker has answered
"""


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def holding_the_lock_row(store: StateStore, mysql_db: str, takers: int, heartbeat: datetime
                         ) -> Callable[[Callable[[], None]], None]:
    """Release the takers while the lock row is locked (its heartbeat rewritten unchanged, not yet
    committed), and let it go only when all of them have judged the lock and wait to take it:
    so they really try to take it at once."""
    def hold(release: Callable[[], None]) -> None:
        with store.transaction():
            store.heartbeat_lock("delta:shop-a", "old", now=heartbeat)
            release()
            wait_for_lock_wait(mysql_db, takers)
    return hold


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_of_processes_taking_over_a_silent_lock_at_once_exactly_one_wins(store: StateStore, mysql_db: str,
                                                                         tmp_path: Path, round_: int) -> None:
    silent_since = datetime.now(timezone.utc) - timedelta(hours=1)
    assert store.acquire_lock("delta:shop-a", "old", os.getpid(), "host-x", 60, now=silent_since) is None
    answers = run_together(TAKER, 6, tmp_path / "go", mysql_db, "host-y",
                           around=holding_the_lock_row(store, mysql_db, 6, silent_since))
    winners = [a["me"] for a in answers if a["won"]]
    assert len(winners) == 1
    assert store.get_lock("delta:shop-a").holder == winners[0]
    assert {a["holder"] for a in answers if not a["won"]} == {winners[0]}


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_lock_of_a_dead_process_is_taken_over_once_and_only_on_its_host(store: StateStore, mysql_db: str,
                                                                          tmp_path: Path, round_: int) -> None:
    now = datetime.now(timezone.utc)
    assert store.acquire_lock("delta:shop-a", "old", dead_pid(), "host-x", 3600, now=now) is None
    elsewhere = run_together(TAKER, 3, tmp_path / "go-elsewhere", mysql_db, "host-y")
    assert [a["holder"] for a in elsewhere] == ["old"] * 3  # the pid means nothing on another host
    here = run_together(TAKER, 6, tmp_path / "go-here", mysql_db, "host-x",
                        around=holding_the_lock_row(store, mysql_db, 6, now))
    winners = [a["me"] for a in here if a["won"]]
    assert len(winners) == 1
    assert store.get_lock("delta:shop-a").holder == winners[0]
