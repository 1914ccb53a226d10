"""Two consumers in one group, several partitions, one MySQL state store: no duplicate, no loss.

Shop B's whole export is replayed as BP_CREATED events (a full load of shop B is exactly that), so
the shop's own duplicates (one company under two partner numbers, persons in several records)
land in different partitions and the two consumers race on the same INNs and persons.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid

import pytest

from etl.sandbox.truth import compare_crm_with_truth
from tests.conftest import _mysql_connect
from tests.test_faults_kafka import produce_stream
from tests.test_full_load_e2e import Sandbox

pytestmark = [pytest.mark.kafka, pytest.mark.mysql, pytest.mark.slow]


@pytest.fixture
def mysql_state(mysql_server):
    name = "crm_etl_state_" + secrets.token_hex(4)
    conn = _mysql_connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    base = mysql_server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def test_two_consumers_sharing_mysql_state_never_duplicate(tmp_path, mysql_db, mysql_state, kafka_broker):
    box = Sandbox(tmp_path, mysql_db, seed=13, scale=0.003, rate=1000, burst=1000)
    try:
        box.env["CRM_ETL_STATE"] = mysql_state
        box.run("shop-a")
        topic = "sap.bp.changes." + uuid.uuid4().hex[:8]
        kafka_broker.create_topic(topic, partitions=4)
        produced = produce_stream(box, kafka_broker.bootstrap, topic)  # shop B's export as events, then changes

        env = {**os.environ, **box.env, "CRM_ETL_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
               "CRM_ETL_SHOP_B_TOPIC": topic}
        args = [sys.executable, "-m", "etl", "consume", "shop-b", "--session-timeout-ms", "6000",
                "--batch-size", "10", "--linger", "0.1", "--stop-when-idle", "8", "--log-level", "WARNING"]
        procs = [subprocess.Popen(args + ["--instance-id", str(i)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(2)]
        outs = [proc.communicate(timeout=240) for proc in procs]
        for proc, (out, err) in zip(procs, outs):
            assert proc.returncode == 0, err[-3000:]
        handled = [int(out.split(" messages")[0].rsplit(" ", 1)[1]) for out, _ in outs]
        assert sum(handled) >= produced and all(n > 0 for n in handled), (handled, produced)  # both worked

        from etl.state import open_state

        with open_state(mysql_state) as state:
            runs = [r for r in state.list_runs(limit=5) if r.mode == "consume"]
        raced = sum(r.counts.get("crm_waited_for_other_worker", 0) + r.counts.get("contacts_joined_other_worker", 0)
                    for r in runs)
        print(f"race paths taken: {raced}")
        crm = compare_crm_with_truth(box.bitrix.webhook_url, box.dir / "data", after_events=True,
                                     rate=1000, burst=1000)
        assert crm.ok, crm.summary()
    finally:
        box.stop()


def test_two_full_loads_racing_on_every_inn_create_each_entity_once(tmp_path, mysql_db, mysql_state):
    """The harshest race: two workers load the same export at the same moment, sharing the
    MySQL state store, so every company and every person is claimed by both."""
    from etl.state import open_state

    box = Sandbox(tmp_path, mysql_db, seed=17, scale=0.002, rate=1000, burst=1000)
    try:
        box.env["CRM_ETL_STATE"] = mysql_state
        box.run("shop-a")
        env = {**os.environ, **box.env}
        args = [sys.executable, "-m", "etl", *box.args("shop-b"), "--log-level", "WARNING"]
        procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err[-3000:]
        with open_state(mysql_state) as state:
            runs = [r for r in state.list_runs(limit=5) if r.source == "shop-b"]
        raced = sum(r.counts.get("crm_waited_for_other_worker", 0) + r.counts.get("contacts_joined_other_worker", 0)
                    for r in runs)
        assert raced > 0, "the two loads never met: the test did not test the race"
        crm = compare_crm_with_truth(box.bitrix.webhook_url, box.dir / "data", rate=1000, burst=1000)
        assert crm.ok, crm.summary()
    finally:
        box.stop()
