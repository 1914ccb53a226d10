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
