"""Kafka consumer: produce-to-readable latency at a steady trickle, and throughput with the CRM limit lifted.

Everything real and in its own process: tansu broker, `crm-etl consume shop-b`, the Bitrix24 and
EGRUL emulators. Latency: one BP_CREATED event every 0.5 s for companies new to the CRM, against a
portal at its real limits (2 req/s, burst 50) and EGRUL at 0.4 s per lookup; a company counts as
readable when its card exists in the portal's database. Throughput: shop B's whole export plus its
change events as one backlog, portal limits lifted, EGRUL at 0.02 s.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from tests.bench.bench_full_load import _port, _wait_http
from tests.conftest import TansuBroker

PY = sys.executable
TRICKLE = int(os.environ.get("BENCH_TRICKLE", "40"))


def start_services(work: Path, data: Path, *, limits: bool, egrul_latency: float) -> tuple[list, dict, Path]:
    code, token = secrets.token_hex(8), secrets.token_hex(8)
    bport, eport = _port(), _port()
    db = work / f"crm-{uuid.uuid4().hex[:6]}.sqlite"
    bitrix = [PY, "-m", "etl", "emulate", "bitrix24", "--port", str(bport), "--code", code, "--db", str(db)]
    bitrix += ["--rate", "2", "--burst", "50"] if limits else ["--no-limits"]
    procs = [subprocess.Popen(bitrix, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen([PY, "-m", "etl", "emulate", "egrul", "--port", str(eport), "--token", token,
                               "--registry", str(data / "egrul_registry.jsonl"), "--latency", str(egrul_latency),
                               "--rps", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    _wait_http(f"http://127.0.0.1:{bport}/_sandbox/health")
    _wait_http(f"http://127.0.0.1:{eport}/_sandbox/health")
    config = work / f"c-{uuid.uuid4().hex[:6]}.toml"
    rate = "rate = 2.0\nburst = 50\n" if limits else "rate = 100000\nburst = 100000\n"
    config.write_text(f"[bitrix24]\n{rate}[egrul]\nconcurrency = 16\nrate = 1000\n")
    env = {**os.environ, "CRM_ETL_CONFIG": str(config),
           "CRM_ETL_BITRIX24_WEBHOOK": f"http://127.0.0.1:{bport}/rest/1/{code}/",
           "CRM_ETL_EGRUL_URL": f"http://127.0.0.1:{eport}/suggestions/api/4_1/rs",
           "CRM_ETL_EGRUL_TOKEN": token, "CRM_ETL_STATE": str(work / f"state-{uuid.uuid4().hex[:6]}.sqlite")}
    return procs, env, db


def start_consumer(env: dict, broker: TansuBroker, topic: str, *extra: str) -> tuple[subprocess.Popen, threading.Event]:
    env = {**env, "CRM_ETL_KAFKA_BOOTSTRAP": broker.bootstrap, "CRM_ETL_SHOP_B_TOPIC": topic}
    proc = subprocess.Popen([PY, "-m", "etl", "consume", "shop-b", "--session-timeout-ms", "6000", "--group",
                             "bench-" + topic, *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assigned = threading.Event()

    def watch() -> None:
        for line in proc.stderr:
            if "assigned" in line:
                assigned.set()

    threading.Thread(target=watch, daemon=True).start()
    if not assigned.wait(60):
        raise RuntimeError("the consumer did not join the group")
    return proc, assigned


def partners(data: Path) -> list[dict]:
    out = []
    for export in sorted((data / "shop_b").glob("export_*.json")):
        out += json.loads(export.read_text(encoding="utf-8-sig"))
    return out


def event(partner: dict) -> bytes:
    return json.dumps({"event_id": uuid.uuid4().hex, "event_type": "BP_CREATED",
                       "occurred_at": "2026-01-01T00:00:00Z", "partner": partner}, ensure_ascii=False).encode()


def latency(work: Path, data: Path, broker: TansuBroker) -> list[float]:
    from confluent_kafka import Producer

    loaded = {json.loads(line)["inn"] for line in (data / "truth" / "companies.jsonl").read_text().splitlines()}
    chosen, seen_inns = [], set()
    for p in partners(data):
        inn = next((t.get("TAXNUM") for t in p.get("TAXNUMS") or [] if t.get("TAXTYPE") == "RU1"), None)
        if inn in loaded and inn not in seen_inns and p.get("STATUS") == "E0002" and not p.get("XDELE"):
            chosen.append((inn, p))
            seen_inns.add(inn)
        if len(chosen) >= TRICKLE:
            break
    procs, env, db = start_services(work, data, limits=True, egrul_latency=0.4)
    topic = "lat-" + uuid.uuid4().hex[:6]
    broker.create_topic(topic, partitions=2)
    consumer, _ = start_consumer(env, broker, topic, "--linger", "0.05", "--batch-size", "50")
    try:
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
        produced_at: dict[str, float] = {}
        readable: dict[str, float] = {}
        done = threading.Event()

        def probe() -> None:
            conn = None
            while not done.is_set():
                try:
                    conn = conn or sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                    for inn in [i for i in produced_at if i not in readable]:
                        if conn.execute("SELECT 1 FROM company WHERE json_extract(doc,'$.ORIGIN_ID') = ?",
                                        (f"company:{inn}",)).fetchone():
                            readable[inn] = time.monotonic()
                except sqlite3.Error:
                    conn = None
                time.sleep(0.01)

        threading.Thread(target=probe, daemon=True).start()
        for inn, p in chosen:
            produced_at[inn] = time.monotonic()
            producer.produce(topic, key=p["PARTNER"].encode(), value=event(p))
            producer.flush(5)
            time.sleep(0.5)
        deadline = time.monotonic() + 60
        while len(readable) < len(produced_at) and time.monotonic() < deadline:
            time.sleep(0.1)
        done.set()
        return sorted(readable[i] - produced_at[i] for i in readable) + [float("inf")] * (len(produced_at) - len(readable))
    finally:
        consumer.terminate()
        consumer.wait(60)
        for p in procs:
            p.terminate()
            p.wait(10)


def throughput(work: Path, data: Path, broker: TansuBroker) -> tuple[int, float]:
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = "thr-" + uuid.uuid4().hex[:6]
    broker.create_topic(topic, partitions=2)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    n = 0
    for p in partners(data):
        producer.produce(topic, key=str(p.get("PARTNER")).encode(), value=event(p))
        n += 1
    for line in (data / "shop_b" / "events.jsonl").read_text(encoding="utf-8").splitlines():
        ev = json.loads(line)
        producer.produce(topic, key=ev["key"].encode(), value=ev["value"].encode())
        n += 1
    producer.flush(30)
    procs, env, _ = start_services(work, data, limits=False, egrul_latency=0.02)
    try:
        t0 = time.monotonic()
        consumer, _ = start_consumer(env, broker, topic, "--linger", "0.2", "--batch-size", "500")
        t_joined = time.monotonic()
        probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "bench-" + topic})
        while True:
            tps = probe.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
            if sum(max(tp.offset, 0) for tp in tps) >= n or time.monotonic() - t0 > 600:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - t_joined
        probe.close()
        consumer.terminate()
        consumer.wait(60)
        return n, elapsed
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def main(report) -> None:
    from etl.sandbox.generator import generate

    work = Path(tempfile.mkdtemp(prefix="bench-consume-"))
    broker = TansuBroker()
    try:
        data = work / "data"
        generate(data, seed=4, scale=float(os.environ.get("BENCH_CONSUME_SCALE", "0.01")))
        lat = latency(work, data, broker)
        finite = [x for x in lat if x != float("inf")]
        report("trickle: events (1 every 0.5 s), companies readable", f"{len(finite)} / {len(lat)}")
        if finite:
            report("produce -> readable in the CRM, median", statistics.median(finite), "s")
            report("produce -> readable in the CRM, p95", lat[max(0, int(len(lat) * 0.95) - 1)], "s", "< 2")
        n, seconds = throughput(work, data, broker)
        report("backlog (export as events + change events)", n, "msgs")
        report("consumer throughput, CRM limit lifted", n / seconds, "msg/s")
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
