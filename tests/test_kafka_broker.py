"""The broker the Kafka tests rely on: tansu starts, takes topics, and a consumer group reads back."""
import time
import uuid

import pytest

pytestmark = pytest.mark.kafka


def test_broker_round_trip_with_group_commit(kafka_broker):
    from confluent_kafka import Consumer, Producer

    topic = "t-" + uuid.uuid4().hex[:8]
    kafka_broker.create_topic(topic, partitions=3)
    p = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for i in range(50):
        p.produce(topic, key=str(i % 5), value=f"v{i}".encode())
    assert p.flush(10) == 0
    conf = {"bootstrap.servers": kafka_broker.bootstrap, "group.id": "g-" + topic,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    c = Consumer(conf)
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 50 and time.monotonic() < deadline:
        got += [m.value() for m in c.consume(100, 0.5) if m.error() is None]
    c.commit(asynchronous=False)
    c.close()
    assert sorted(got) == sorted(f"v{i}".encode() for i in range(50))
    # the same group resumes after the committed offsets: only what came later is delivered
    p.produce(topic, key="0", value=b"after")
    p.flush(10)
    c2 = Consumer(conf)
    c2.subscribe([topic])
    again = []
    deadline = time.monotonic() + 30
    while not again and time.monotonic() < deadline:
        again += [m.value() for m in c2.consume(100, 0.5) if m.error() is None]
    c2.close()
    assert again == [b"after"]
