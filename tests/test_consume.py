"""`crm-etl consume shop-b` against the real broker (tansu), the emulators and the ground truth."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from click.testing import CliRunner

from etl.cli import main
from etl.state import open_state
from etl.sandbox.truth import compare_crm_with_truth, compare_rejects
from tests.test_full_load_e2e import Sandbox

pytestmark = [pytest.mark.kafka, pytest.mark.mysql, pytest.mark.slow]

POISON = [b"not json at all", b"", None, json.dumps({"event_type": "BP_EXPLODED", "partner": {}}).encode(),
          b"\xff\xfe\x00garbage", json.dumps(["a", "list"]).encode()]


def produce_events(broker, topic: str, events_file, poison: list | None = None) -> int:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": broker.bootstrap})
    n = 0
    with open(events_file, encoding="utf-8") as f:
        for i, line in enumerate(f):
            ev = json.loads(line)
            p.produce(topic, key=ev["key"].encode(), value=ev["value"].encode("utf-8"))
            n += 1
            if poison and i % 3 == 0 and poison:
                p.produce(topic, key=b"junk", value=poison.pop())
                n += 1
    for junk in poison or ():
        p.produce(topic, key=b"junk", value=junk)
        n += 1
    assert p.flush(10) == 0
    return n


def dlq_messages(broker, topic: str, expect: int) -> list:
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "dlq-reader-" + uuid.uuid4().hex[:6],
                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < expect and time.monotonic() < deadline:
        got += [m for m in c.consume(50, 0.5) if m.error() is None]
    c.close()
    return got


@pytest.fixture
def loaded(tmp_path, mysql_db, kafka_broker):
    box = Sandbox(tmp_path, mysql_db, seed=5, scale=0.002, rate=200, burst=200)
    box.run("shop-a")
    box.run("shop-b")
    box.topic = "sap.bp.changes." + uuid.uuid4().hex[:8]
    kafka_broker.create_topic(box.topic, partitions=3)
    box.env.update({"CRM_ETL_KAFKA_BOOTSTRAP": kafka_broker.bootstrap, "CRM_ETL_SHOP_B_TOPIC": box.topic})
    yield box
    box.stop()


def consume_args(*extra: str) -> list[str]:
    return ["consume", "shop-b", "--session-timeout-ms", "6000", "--linger", "0.2", *extra]


def test_events_reach_the_crm_poison_goes_to_the_dlq_and_redelivery_is_harmless(loaded, kafka_broker):
    events = loaded.dir / "data" / "shop_b" / "events.jsonl"
    produced = produce_events(kafka_broker, loaded.topic, events, poison=list(POISON))
    r = CliRunner().invoke(main, consume_args("--stop-when-idle", "4", "--batch-size", "7"), env=loaded.env,
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert f"{produced} messages" in r.output

    crm = compare_crm_with_truth(loaded.bitrix.webhook_url, loaded.dir / "data", after_events=True,
                                 rate=1000, burst=1000)
    assert crm.ok, crm.summary()
    with open_state(loaded.env["CRM_ETL_STATE"]) as state:
        all_rejects = list(state.iter_rejects())
    poison_rejects = [r for r in all_rejects if r.kind == "record"]
    assert len(poison_rejects) == len(POISON) and all(r.reason == "bad_record" for r in poison_rejects)
    rej = compare_rejects(((r.source, r.kind, r.source_id, r.reason) for r in all_rejects if r.kind != "record"),
                          loaded.dir / "data", after_events=True)
    assert rej.ok, rej.summary()

    dead = dlq_messages(kafka_broker, loaded.topic + ".dlq", len(POISON))
    assert sorted((m.value() or b"") for m in dead) == sorted((p or b"") for p in POISON)
    headers = dict(dead[0].headers())
    assert headers["crm-etl.origin.topic"].decode() == loaded.topic and "crm-etl.error" in headers

    # the same events delivered again (at least once): nothing is written twice
    writes = loaded.writes()
    produce_events(kafka_broker, loaded.topic, events)
    r = CliRunner().invoke(main, consume_args("--stop-when-idle", "4"), env=loaded.env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert loaded.writes() == writes
    assert compare_crm_with_truth(loaded.bitrix.webhook_url, loaded.dir / "data", after_events=True,
                                  rate=1000, burst=1000).ok


def test_max_messages_commits_what_it_handled(loaded, kafka_broker):
    events = loaded.dir / "data" / "shop_b" / "events.jsonl"
    produced = produce_events(kafka_broker, loaded.topic, events)
    r = CliRunner().invoke(main, consume_args("--max-messages", "5", "--batch-size", "5"), env=loaded.env,
                           catch_exceptions=False)
    assert r.exit_code == 0 and "5 messages" in r.output, r.output
    r = CliRunner().invoke(main, consume_args("--stop-when-idle", "4"), env=loaded.env, catch_exceptions=False)
    assert f"{produced - 5} messages" in r.output, r.output  # resumes after the committed offsets


def test_missing_broker_settings_is_a_configuration_error(loaded):
    env = {**loaded.env, "CRM_ETL_KAFKA_BOOTSTRAP": ""}
    r = CliRunner().invoke(main, consume_args("--max-messages", "1"), env=env)
    assert r.exit_code == 2 and "CRM_ETL_KAFKA_BOOTSTRAP" in r.output
