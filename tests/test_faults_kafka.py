"""Faults of the Kafka change stream: the broker restarted under a running consumer, and a
rebalance while a consumer holds an uncommitted batch. Each ends with the CRM compared with the
generator's after-events truth (no company or person missing, none twice).

The stream is shop B's whole export as BP_CREATED events plus the generator's change events (shop
B loaded through the consumer, as in test_consume_shared_state), so a lost message is a
missing card. Consumers are the real CLI (`crm-etl consume`), stopped with SIGTERM once the group's
committed offsets reach the end of every partition (a condition, not a sleep).
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from etl.sandbox.truth import compare_crm_with_truth
from etl.state import open_state
from tests.conftest import TansuBroker, start_tansu
from tests.logged_run import Run
from tests.test_full_load_e2e import Sandbox

pytestmark = [pytest.mark.kafka, pytest.mark.mysql, pytest.mark.slow]

PARTITIONS = 4


def produce_stream(box: Sandbox, bootstrap: str, topic: str) -> int:
    """Every shop B partner as BP_CREATED, then the change events; keyed by partner number.
    Event ids derive from the partner number: producing the stream again gives the same messages."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    n = 0
    for export in box.exports:
        with open(export, encoding="utf-8-sig") as f:
            partners = json.load(f)
        for partner in partners:
            value = {"event_id": f"created-{partner['PARTNER']}", "event_type": "BP_CREATED",
                     "occurred_at": "2024-01-01T00:00:00Z", "partner": partner}
            p.produce(topic, key=partner["PARTNER"].encode(), value=json.dumps(value, ensure_ascii=False).encode())
            n += 1
    with open(box.dir / "data" / "shop_b" / "events.jsonl", encoding="utf-8") as f:
        for line in f:
            ev = json.loads(line)
            p.produce(topic, key=ev["key"].encode(), value=ev["value"].encode())
            n += 1
    assert p.flush(15) == 0
    return n


def committed(bootstrap: str, group: str, topic: str) -> int | None:
    """Messages of `topic` the group has committed, over all partitions (None while the broker does
    not answer). Compared with the count produced: tansu's high watermarks lag behind."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        parts = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=5)
        return sum(max(tp.offset, 0) for tp in parts)
    except KafkaException:
        return None
    finally:
        c.close()


def wait_until(what: str, check, timeout: float = 90.0, every: float = 0.3, runs: tuple[Run, ...] = (),
               context=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what} ({context()}):\n" + "\n".join(
            "".join(r.lines)[-4000:] for r in runs)
        time.sleep(every)


@pytest.fixture
def stream_box(tmp_path, mysql_db) -> Iterator[Sandbox]:
    """Shop A loaded; shop B still to come, through the stream."""
    box = Sandbox(tmp_path, mysql_db, seed=29, scale=0.002, rate=1000, burst=1000)
    try:
        box.run("shop-a")
        yield box
    finally:
        box.stop()


@pytest.fixture
def own_broker() -> Iterator[TansuBroker]:
    """A broker of this test's own: it is restarted, the session's broker is not."""
    broker = start_tansu()
    try:
        yield broker
    finally:
        broker.stop()


_started: list[Run] = []


@pytest.fixture(autouse=True)
def _no_consumer_left() -> Iterator[None]:
    """A failed test must not leave its consumers running."""
    yield
    while _started:
        run = _started.pop()
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(10)


def consumer(box: Sandbox, bootstrap: str, topic: str, group: str, instance: str) -> Run:
    return _track(Run(box, ["consume", "shop-b", "--topic", topic, "--group", group, "--instance-id", instance,
                     "--session-timeout-ms", "3000", "--batch-size", "50", "--linger", "0.1"],
               {"CRM_ETL_KAFKA_BOOTSTRAP": bootstrap}, log_level="INFO"))


def _track(run: Run) -> Run:
    _started.append(run)
    return run


def stop_all(*runs: Run) -> list[str]:
    """SIGTERM each consumer (supervisord's stop); each must finish its batch and exit 0."""
    for run in runs:
        run.terminate()
    logs = []
    for run in runs:
        code, out, err = run.finish()
        assert code == 0, err[-3000:]
        logs.append(err)
    return logs


def test_broker_restart_under_a_running_consumer_loses_and_duplicates_nothing(stream_box, own_broker):
    """tansu keeps its log in memory (its PostgreSQL storage is not built into this binary), so a
    restart comes back empty: the broker is started again on the same port and the same messages
    produced again, as a durable broker would still hold them. The group's committed offsets are
    gone with it, so the consumer reads the stream again from the start: at-least-once redelivery
    of everything, which the idempotent load must absorb."""
    box, broker = stream_box, own_broker
    topic, group = "sap.bp.changes." + uuid.uuid4().hex[:8], "crm-etl-restart-" + uuid.uuid4().hex[:6]
    broker.create_topic(topic, PARTITIONS)
    produced = produce_stream(box, broker.bootstrap, topic)
    run = consumer(box, broker.bootstrap, topic, group, "1")
    run.wait_for("CRM at start")  # loading its first batch: the broker dies under it
    broker.proc.kill()
    broker.proc.wait(10)
    broker.__init__(broker.port)  # the same broker, started again on its port
    broker.create_topic(topic, PARTITIONS)
    assert produce_stream(box, broker.bootstrap, topic) == produced
    wait_until("the consumer to commit the whole stream again",
               lambda: committed(broker.bootstrap, group, topic) == produced, timeout=120, runs=(run,))
    (log,) = stop_all(run)
    assert log.count("assigned sap.bp.changes") >= 2, "the consumer never rejoined: no restart was seen"
    with open_state(box.env["CRM_ETL_STATE"]) as state:
        counts = state.list_runs(limit=1)[0].counts
    print("consumer run:", {k: v for k, v in counts.items() if k.startswith(("kafka_", "pending_", "companies_"))})
    crm = compare_crm_with_truth(box.bitrix.webhook_url, box.dir / "data", after_events=True, rate=1000, burst=1000)
    assert crm.ok, crm.summary()


def test_rebalance_while_a_batch_is_held_loses_and_duplicates_nothing(stream_box, kafka_broker):
    """Consumer 1 holds a batch it cannot finish (EGRUL's quota is used up: the batch waits, paused
    and uncommitted, and is tried again) when consumer 2 joins the group and the partitions are
    shared out again; consumer 1 gets its new partitions while still waiting. Then EGRUL comes
    back and both drain the stream: every message loaded, nothing committed that was not."""
    box = stream_box
    topic, group = "sap.bp.changes." + uuid.uuid4().hex[:8], "crm-etl-rebalance-" + uuid.uuid4().hex[:6]
    kafka_broker.create_topic(topic, PARTITIONS)
    produced = produce_stream(box, kafka_broker.bootstrap, topic)
    egrul_config = box.egrul.url + "/_sandbox/config"
    requests.post(egrul_config, json={"daily_quota": 0}, timeout=5).raise_for_status()
    first = consumer(box, kafka_broker.bootstrap, topic, group, "1")
    first.wait_for("batch not completed, retrying")
    second = consumer(box, kafka_broker.bootstrap, topic, group, "2")
    second.wait_for("assigned sap.bp.changes")
    first.wait_for("assigned sap.bp.changes", times=2)  # its share, received while its batch waits
    held = first.count("batch not completed, retrying")
    # still holding it after the rebalance: a message of its new share put back, or another failure
    wait_until("consumer 1 to hold its batch through the rebalance",
               lambda: first.count("put back for later") or first.count("batch not completed, retrying") > held,
               runs=(first,))
    requests.post(egrul_config, json={"daily_quota": None, "reset_quota": True}, timeout=5).raise_for_status()
    wait_until("the group to commit the whole stream",
               lambda: committed(kafka_broker.bootstrap, group, topic) == produced, timeout=120, runs=(first, second),
               context=lambda: (committed(kafka_broker.bootstrap, group, topic), produced))
    stop_all(first, second)
    with open_state(box.env["CRM_ETL_STATE"]) as state:
        assert sum(state.count_pending(source="shop-b").values()) == 0  # nothing left parked either
        runs = [r.counts for r in state.list_runs(limit=2)]
    print("consumer runs:", [{k: v for k, v in c.items() if k.startswith(("kafka_", "pending_"))} for c in runs])
    crm = compare_crm_with_truth(box.bitrix.webhook_url, box.dir / "data", after_events=True, rate=1000, burst=1000)
    assert crm.ok, crm.summary()
