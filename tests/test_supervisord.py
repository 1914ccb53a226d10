"""The consumer under a real supervisord: kill -9 mid-load (supervisord restarts it), SIGTERM mid-batch
(clean stop within stopwaitsecs), and in the end the CRM holds exactly the expected entities."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from etl.sandbox.truth import compare_crm_with_truth
from tests.test_consume import produce_events
from tests.test_full_load_e2e import Sandbox

pytestmark = [pytest.mark.kafka, pytest.mark.mysql, pytest.mark.slow]

GROUP = "crm-etl-sv"


class Supervisor:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.conf = tmp / "supervisord.conf"
        env_line = ",".join(f'{k}="{v}"' for k, v in env.items())
        self.conf.write_text(f"""
[supervisord]
nodaemon=true
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}
[unix_http_server]
file={tmp}/supervisor.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{tmp}/supervisor.sock
[program:consumer]
command={sys.executable} -m etl consume shop-b --session-timeout-ms 6000 --batch-size 3 --linger 0.1 --group {GROUP}
directory={Path(__file__).resolve().parents[1]}
autostart=true
autorestart=true
startsecs=1
stopsignal=TERM
stopwaitsecs=60
redirect_stderr=true
stdout_logfile={tmp}/consumer.log
environment=PYTHONUNBUFFERED="1",CRM_ETL_INSTANCE="00",{env_line}
""", encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)])
        self.wait(lambda: self.status().startswith("RUNNING"), 30, "the consumer to start")

    def ctl(self, *args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args],
                           capture_output=True, text=True, timeout=90)
        return r.stdout.strip()

    def status(self) -> str:
        out = self.ctl("status", "consumer")
        return out.split(None, 1)[1] if " " in out else out

    def pid(self) -> int:
        return int(self.ctl("pid", "consumer") or 0)

    @staticmethod
    def wait(cond, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=90)


def committed_total(broker, topic: str, partitions: int) -> int:
    """How many messages of the topic the group has committed (offsets start at 0 in each
    partition; tansu 0.6 answers ListOffsets wrongly, so the high watermark is not asked)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": GROUP})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return sum(max(tp.offset, 0) for tp in c.committed(tps, timeout=10))
    finally:
        c.close()


def test_consumer_survives_kill_and_sigterm_under_supervisord(tmp_path, mysql_db, kafka_broker):
    box = Sandbox(tmp_path, mysql_db, seed=9, scale=0.004, rate=400, burst=400)
    try:
        box.run("shop-a")
        box.run("shop-b")
        topic = "sap.bp.changes." + uuid.uuid4().hex[:8]
        kafka_broker.create_topic(topic, partitions=2)
        env = {**box.env, "CRM_ETL_KAFKA_BOOTSTRAP": kafka_broker.bootstrap, "CRM_ETL_SHOP_B_TOPIC": topic}
        env.pop("CRM_ETL_CONFIG")
        # a slow portal (3 req/s, burst 1) so that the kills land while batches are being loaded
        config = tmp_path / "slow.toml"
        config.write_text("[bitrix24]\nrate = 3\nburst = 1\n[egrul]\nrate = 1000\n", encoding="utf-8")
        env["CRM_ETL_CONFIG"] = str(config)
        import requests

        requests.post(box.bitrix.url + "/_sandbox/config", json={"rate": 3, "burst": 1}, timeout=5).raise_for_status()
        events = box.dir / "data" / "shop_b" / "events.jsonl"
        produced = produce_events(kafka_broker, topic, events)
        assert produced >= 20
        sv = Supervisor(tmp_path, env)
        try:
            first = sv.pid()
            start = box.writes()
            Supervisor.wait(lambda: box.writes() > start, 60, "the consumer to write")
            os.kill(first, signal.SIGKILL)                       # kill -9 while it loads
            Supervisor.wait(lambda: sv.pid() not in (0, first) and sv.status().startswith("RUNNING"), 60,
                            "supervisord to restart the consumer")
            second = sv.pid()
            mid = box.writes()
            Supervisor.wait(lambda: box.writes() > mid, 60, "the restarted consumer to write")
            t0 = time.monotonic()
            out = sv.ctl("stop", "consumer")                    # SIGTERM mid-batch
            assert "stopped" in out, out
            assert time.monotonic() - t0 < 60                     # within stopwaitsecs, not killed
            log = (tmp_path / "supervisord.log").read_text()
            assert f"stopped: consumer (exit status 0)" in log, log[-2000:]
            assert "pid %d" % second in log
            # the kill and the stop are proven: let the rest of the stream drain at full speed
            config.write_text("[bitrix24]\nrate = 400\nburst = 400\n[egrul]\nrate = 1000\n", encoding="utf-8")
            requests.post(box.bitrix.url + "/_sandbox/config", json={"rate": 400, "burst": 400},
                          timeout=5).raise_for_status()
            sv.ctl("start", "consumer")
            Supervisor.wait(lambda: committed_total(kafka_broker, topic, 2) == produced, 180,
                            "the stream to be drained")
        finally:
            sv.stop()
        requests.post(box.bitrix.url + "/_sandbox/config", json={"rate": 1000, "burst": 1000}, timeout=5)
        crm = compare_crm_with_truth(box.bitrix.webhook_url, box.dir / "data", after_events=True,
                                     rate=1000, burst=1000)
        assert crm.ok, crm.summary()
    finally:
        box.stop()
