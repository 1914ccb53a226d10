"""`crm-etl delta shop-a` against the real MariaDB replica and the emulators."""
from __future__ import annotations

import json
import os
import socket
from datetime import timedelta
from urllib.parse import urlsplit

import pymysql
import pytest
import requests
from click.testing import CliRunner

from etl.cli import main
from etl.state import open_state
from tests.test_full_load_e2e import Sandbox

pytestmark = [pytest.mark.mysql, pytest.mark.slow]


def connect(dsn: str):
    u = urlsplit(dsn)
    return pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root", password=u.password or "",
                           database=u.path.lstrip("/"), autocommit=True, charset="latin1", use_unicode=False)


@pytest.fixture
def replica(tmp_path, mysql_db):
    box = Sandbox(tmp_path, mysql_db, seed=3, scale=0.002, rate=200, burst=200)
    box.dsn = mysql_db
    box.run("shop-a")
    yield box
    box.stop()


def delta(box, env=None):
    return CliRunner().invoke(main, ["delta", "shop-a"], env=env or box.env, catch_exceptions=False)


def newest(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT GREATEST((SELECT MAX(updated_at) FROM b2b_company), (SELECT MAX(updated_at) FROM b2b_contact))")
        return cur.fetchone()[0]


def loaded_company(box, conn) -> tuple[int, str]:
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM b2b_company ORDER BY id")
        ids = [str(r[0]) for r in cur.fetchall()]
    with open_state(box.env["CRM_ETL_STATE"]) as state:
        mapped = state.identities_for_sources("shop-a", "company", ids)
    source_id, identity = sorted(mapped.items())[0]
    return int(source_id), identity.split(":", 1)[1]


def crm(box, method, params):
    r = requests.post(box.bitrix.webhook_url + method + ".json", json=params, timeout=10)
    return r.json()["result"]


def test_a_delta_brings_exactly_the_changes(replica):
    conn = connect(replica.dsn)
    company_id, inn = loaded_company(replica, conn)
    ts = newest(conn) + timedelta(seconds=1)
    with conn.cursor() as cur:
        cur.execute("UPDATE b2b_company SET phone = %s, updated_at = %s WHERE id = %s",
                    ("8 (495) 111-22-33".encode("cp1251"), ts, company_id))
        cur.execute("INSERT INTO b2b_contact (company_id, full_name, position, phone, mobile, email, is_deleted,"
                    " created_at, updated_at) VALUES (%s, %s, %s, NULL, NULL, %s, 0, %s, %s)",
                    (company_id, "Дельтов Тест Тестович".encode("utf-8"), "Бухгалтер".encode("utf-8"),
                     b"Delta.Test@Example.ru", ts, ts))
    before = replica.stats()["methods"]
    r = delta(replica)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("delta shop-a: run") and r.stdout.count("\n") == 1  # one line for cron
    assert r.stderr == ""
    after = replica.stats()["methods"]
    added = {m: after.get(m, 0) - before.get(m, 0) for m in after if after.get(m, 0) != before.get(m, 0)}
    assert added.get("crm.contact.add") == 1 and "crm.company.add" not in added, added

    with open_state(replica.env["CRM_ETL_STATE"]) as state:
        company = state.get_entities([f"company:{inn}"])[f"company:{inn}"]
    card = crm(replica, "crm.company.get", {"id": company.bitrix_id})
    assert "+74951112233" in [p["VALUE"] for p in card.get("PHONE", [])]
    found = crm(replica, "crm.contact.list", {"filter": {"EMAIL": "delta.test@example.ru"},
                                              "select": ["ID", "LAST_NAME", "COMPANY_ID", "EMAIL"]})
    assert len(found) == 1 and found[0]["LAST_NAME"] == "Дельтов"
    assert int(found[0]["COMPANY_ID"]) == company.bitrix_id


def test_a_delta_with_nothing_to_do_makes_no_crm_request(replica):
    before = replica.stats()["http_requests"]
    r = delta(replica)
    assert r.exit_code == 0, r.output
    assert replica.stats()["http_requests"] == before
    assert "0 CRM write requests" in r.output


def test_overlapping_runs_are_refused_and_a_dead_holders_lock_is_released(replica):
    with open_state(replica.env["CRM_ETL_STATE"]) as state:
        assert state.acquire_lock("delta:shop-a", "cron-run-1", os.getpid(), socket.gethostname(), 3600) is None
    r = delta(replica)
    assert r.exit_code == 4
    assert "cron-run-1" in r.output and f"pid {os.getpid()}" in r.output and "nothing was done" in r.output
    with open_state(replica.env["CRM_ETL_STATE"]) as state:
        state.release_lock("delta:shop-a", "cron-run-1")
        # a run killed with -9 leaves its lock behind: its pid is gone on this host
        dead_pid = 2 ** 22 + 12345
        assert state.acquire_lock("delta:shop-a", "killed-run", dead_pid, socket.gethostname(), 3600) is None
    r = delta(replica)
    assert r.exit_code == 0, r.output


def test_pending_from_an_egrul_outage_is_loaded_by_the_next_run(replica):
    conn = connect(replica.dsn)
    # an active registry company that shop A does not have yet
    with open_state(replica.env["CRM_ETL_STATE"]) as state:
        for line in (replica.dir / "data" / "egrul_registry.jsonl").read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            if d["state"]["status"] == "ACTIVE" and len(d["inn"]) == 10 and \
                    not state.get_entities([f"company:{d['inn']}"]):
                inn = d["inn"]
                break
    ts = newest(conn) + timedelta(seconds=1)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO b2b_company (name, legal_form, inn, is_active, created_at, updated_at)"
                    " VALUES (%s, %s, %s, 1, %s, %s)", ("Новая".encode("cp1251"), b"OOO", inn.encode(), ts, ts))
        new_id = cur.lastrowid
        cur.execute("INSERT INTO b2b_contact (company_id, full_name, email, is_deleted, created_at, updated_at)"
                    " VALUES (%s, %s, %s, 0, %s, %s)", (new_id, "Новиков Нил".encode("cp1251"), b"nil@new.ru", ts, ts))
    faults = replica.egrul.url + "/_sandbox/faults"
    requests.post(faults, json={"error_503": 1.0, "seed": 1}, timeout=5).raise_for_status()
    r = delta(replica)
    assert r.exit_code == 0, r.output                   # parked, not lost: the watermark may move
    assert "1 pending" not in r.output and "2 pending" in r.output
    with open_state(replica.env["CRM_ETL_STATE"]) as state:
        assert sum(state.count_pending(source="shop-a").values()) == 2
        assert not state.get_entities([f"company:{inn}"])   # never loaded unverified
    requests.post(faults, json={}, timeout=5).raise_for_status()
    r = delta(replica)
    assert r.exit_code == 0, r.output
    with open_state(replica.env["CRM_ETL_STATE"]) as state:
        assert state.count_pending(source="shop-a") == {}
        assert state.get_entities([f"company:{inn}"])[f"company:{inn}"].bitrix_id
    found = crm(replica, "crm.contact.list", {"filter": {"EMAIL": "nil@new.ru"}, "select": ["ID"]})
    assert len(found) == 1
