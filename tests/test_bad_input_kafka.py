"""A huge Kafka message must not wedge its partition (not JSON, empty, tombstone and unknown event
types: tests/test_consume.py).

The consumer reads what librdkafka fetches (a message bigger than max.partition.fetch.bytes is
still returned, up to receive.message.max.bytes, 100 MB). What failed was the dead letter: the
DLQ producer refuses a message over message.max.bytes (1 MB), the batch was never committed, and
every restart died on the same message. Now the DLQ gets the message's first 900 KB with a
`crm-etl.truncated-from` header; the whole message stays at its origin offset.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.bad_input_support import ACTIVE, Stage, partner
from tests.test_consume import consume_args

pytestmark = [pytest.mark.kafka]


def event(pid: int, **over: Any) -> bytes:
    return json.dumps({"event_id": f"e{pid}", "event_type": "BP_CHANGED", "partner": partner(pid, **over)},
                      ensure_ascii=False).encode("utf-8")


def read_topic(broker: Any, topic: str, expect: int) -> list[Any]:
    """`expect` messages of the topic's partitions, read without joining a group (no rebalance wait)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "enable.auto.commit": False})
    partitions = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, 0) for p in partitions])
    got: list[Any] = []
    deadline = time.monotonic() + 30
    while len(got) < expect and time.monotonic() < deadline:
        got += [m for m in c.consume(expect - len(got), 0.5) if m.error() is None]
    c.close()
    return got


def committed(broker: Any, group: str, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    (tp,) = c.committed([TopicPartition(topic, 0)], timeout=10)
    c.close()
    return tp.offset


def test_huge_messages_go_to_the_dlq_and_the_stream_goes_on(tmp_path: Path, kafka_broker) -> None:
    from confluent_kafka import Producer

    stage = Stage(tmp_path)
    try:
        topic = "sap.bp.huge." + uuid.uuid4().hex[:8]
        kafka_broker.create_topic(topic)
        stage.env.update({"CRM_ETL_KAFKA_BOOTSTRAP": kafka_broker.bootstrap, "CRM_ETL_SHOP_B_TOPIC": topic})
        huge_text = b"x" * 3_000_000                                    # 3 MB, not JSON
        huge_event = event(2, NAME_ORG1="я" * 600_000)                   # 1.2 MB of UTF-8
        p = Producer({"bootstrap.servers": kafka_broker.bootstrap, "message.max.bytes": 10_000_000})
        for key, value in ((b"1", event(1)), (b"junk", huge_text), (b"2", huge_event), (b"3", event(3))):
            p.produce(topic, key=key, value=value)
        assert p.flush(20) == 0

        group = "bad-input-" + uuid.uuid4().hex[:6]
        r = stage.cli(*consume_args("--group", group, "--max-messages", "4"))
        assert r.exit_code == 0, r.output
        assert "4 messages, 2 dead-lettered" in r.output, r.output
        assert set(stage.crm()[0]) == {ACTIVE[1], ACTIVE[3]}
        rejects = stage.rejects()
        assert rejects[("record", f"{topic}/0/1")]["detail"].startswith("value is not JSON")
        assert "NAME_ORG1: 600000 characters long" in rejects[("company", "0000000002")]["detail"]

        dead = sorted(read_topic(kafka_broker, topic + ".dlq", 2), key=lambda m: m.key())
        assert [m.key() for m in dead] == [b"2", b"junk"]
        for msg, original in zip(dead, (huge_event, huge_text)):
            headers = dict(msg.headers())
            assert headers["crm-etl.truncated-from"] == str(len(original)).encode()
            assert original.startswith(msg.value()) and len(msg.value()) < 1_000_000
        assert committed(kafka_broker, group, topic) == 4   # a restart starts after all of them
    finally:
        stage.stop()
