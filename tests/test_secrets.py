"""Secrets never leak (issue 5): not in stdout, stderr, logs, reports, rejects, the state stores,
the CRM or exception messages, in any form (as is, percent-encoded, JSON-escaped, or in part).

The real CLI runs in child processes (the emulators in this process register the webhook code
with `etl.secrets` themselves, which would hide a leak from an in-process run), at DEBUG level,
with recognisable secret values:

- shop A from MariaDB as a dedicated user whose password has non-ASCII letters and characters that
  must be percent-encoded in the DSN; the state store on MariaDB as the same user; shop B from the
  generated JSON exports;
- full loads of both shops, the Kafka consumer, a delta, the reports, rejects and status;
- failures that carry the secrets' context: a wrong MySQL password for the shop and for the state
  store, a password written into the DSN unencoded, an unreachable webhook host, the webhook
  turning invalid between two deltas, a consumer whose webhook is refused, an EGRUL key refused
  (403) and an EGRUL quota used up (403 with the right key);
- `crm-etl demo` at a small scale, with the same webhook code and EGRUL key.

Then every captured output, every file under the test's directory (logs, generated data, SQLite
state stores, the emulated CRMs' databases) and a dump of every table of every state store are
searched for the secrets.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, quote_plus, urlsplit

import pytest
import requests

from etl.sandbox.bitrix24 import start_bitrix24
from etl.sandbox.egrul import start_egrul
from etl.sandbox.generator import generate
from etl.sandbox.seed import apply_seed
from tests.conftest import _mysql_connect, free_port
from tests.test_consume import produce_events

pytestmark = [pytest.mark.mysql, pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent

# Recognisable values: no piece of 8 characters of any of them occurs by chance, so a piece found
# anywhere is a leak (a message cut short, a password split by a parser). Inside are characters
# that must be escaped in URLs and JSON, and non-ASCII letters.
WEBHOOK_CODE = "wh7Kq9Zx31cQd5Lp8Vn2Rt6Jy"
EGRUL_TOKEN = 'dd4Hy6Kp3W+vG/Tk=e"n\\Ts1Jf7Qm'
MYSQL_PASSWORD = "my0Pa55Gx5 Пр:P@ss/%3F+&?#Nc2Ud7Ew"
WRONG_MYSQL_PASSWORD = "wr9Bz47Mq1#Pw?&=Ve9Lo3Kx"
UNENCODED_MYSQL_PASSWORD = "un8Hf3@Wq/x?y#Kd7Lm2:Ps@Vb"   # written into the DSN as is, not encoded
WRONG_EGRUL_TOKEN = "wt5Rt5Yu8I+Tk/Io2Pa6Zc"
WRONG_WEBHOOK_CODE = "ww3Ge8Nt4Uy7Hs1Ox6Bq9Cj"
SECRETS = {
    "webhook code": WEBHOOK_CODE,
    "wrong webhook code": WRONG_WEBHOOK_CODE,
    "EGRUL token": EGRUL_TOKEN,
    "MySQL password": MYSQL_PASSWORD,
    "wrong MySQL password": WRONG_MYSQL_PASSWORD,
    "unencoded MySQL password": UNENCODED_MYSQL_PASSWORD,
    "wrong EGRUL token": WRONG_EGRUL_TOKEN,
}
USER_ID = 1
PIECE = 8
# failed runs with a SQLite state store of their own (read back afterwards)
OWN_STATE = ("wrong-shop-password", "unencoded-shop-password", "unreachable-webhook", "egrul-key-refused",
             "egrul-quota-used-up", "consume-webhook-refused")


def needles() -> dict[str, list[str]]:
    """Every form of every secret that must not appear: secret -> its forms, whole ones first."""
    out: dict[str, list[str]] = {}
    for name, value in SECRETS.items():
        forms = [value, quote(value, safe=""), quote(value), quote_plus(value), json.dumps(value)[1:-1],
                 json.dumps(value, ensure_ascii=False)[1:-1]]
        if name.endswith("webhook code"):
            forms.append(f"{USER_ID}/{value}")  # the user id/code path segment
        forms += [value[i:i + PIECE] for i in range(len(value) - PIECE + 1)]
        out[name] = list(dict.fromkeys(forms))
    return out


def find_leaks(where: str, text: str | bytes) -> list[str]:
    """`where: secret as 'form' in ...context...`, for each secret found in `text` in any form."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    found = []
    for name, forms in needles().items():
        for form in forms:
            i = data.find(form.encode("utf-8"))
            if i >= 0:
                context = data[max(0, i - 80):i + len(form) + 40].decode("utf-8", "replace")
                found.append(f"{where}: {name} as {form!r} in ...{context!r}...")
                break
    return found


@dataclass
class Ran:
    name: str
    args: list[str]
    code: int
    stdout: str
    stderr: str
    started: float = 0.0
    seconds: float = 0.0

    def __str__(self) -> str:
        return (f"`crm-etl {' '.join(self.args)}` ({self.name}) exited {self.code} after {self.seconds:.1f} s\n"
                f"{self.stdout}\n{self.stderr}")


class Cli:
    """Runs `python -m etl ...` in child processes; their stdout and stderr are kept as log files."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.ran: list[Ran] = []
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, Ran]:
        out = open(self.logs / f"{name}.out", "wb")
        err = open(self.logs / f"{name}.err", "wb")
        full_env = {**os.environ, **self.env, **(env or {})}
        proc = subprocess.Popen([sys.executable, "-m", "etl", *args], cwd=ROOT, env=full_env,
                                stdout=out, stderr=err)
        out.close()
        err.close()
        return proc, Ran(name, list(args), -1, "", "", started=time.monotonic())

    def wait(self, started: tuple[subprocess.Popen, Ran], timeout: float = 180) -> Ran:
        proc, ran = started
        ran.code = proc.wait(timeout=timeout)
        ran.seconds = time.monotonic() - ran.started
        ran.stdout = (self.logs / f"{ran.name}.out").read_text("utf-8", "replace")
        ran.stderr = (self.logs / f"{ran.name}.err").read_text("utf-8", "replace")
        self.ran.append(ran)
        return ran

    def run(self, name: str, *args: str, env: dict[str, str] | None = None) -> Ran:
        return self.wait(self.start(name, *args, env=env))

    def read_many(self, commands: list[tuple[str, list[str], dict[str, str]]]) -> list[Ran]:
        """Run many short commands `(name, args, env)` in ONE child process (through click's test
        runner there, each with its own output), which saves starting a process per command."""
        proc = subprocess.run([sys.executable, "-c", READ_MANY, str(self.logs)], cwd=ROOT,
                              env={**os.environ, **self.env}, input=json.dumps(commands), text=True,
                              capture_output=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        codes = json.loads(proc.stdout)
        out = []
        for name, args, _ in commands:
            ran = Ran(name, args, codes[name], (self.logs / f"{name}.out").read_text("utf-8"),
                      (self.logs / f"{name}.err").read_text("utf-8"))
            self.ran.append(ran)
            out.append(ran)
        return out


READ_MANY = """
import json, sys, traceback
from pathlib import Path
from click.testing import CliRunner
from etl.cli import main

logs, codes = Path(sys.argv[1]), {}
for name, args, env in json.load(sys.stdin):
    r = CliRunner().invoke(main, args, env=env)
    err = r.stderr
    if r.exc_info and not isinstance(r.exception, SystemExit):
        err += "".join(traceback.format_exception(*r.exc_info))
    (logs / f"{name}.out").write_text(r.stdout, "utf-8")
    (logs / f"{name}.err").write_text(err, "utf-8")
    codes[name] = r.exit_code
json.dump(codes, sys.stdout)
"""


def mysql_user_dsn(server: str, user: str, password: str, database: str, encode: bool = True) -> str:
    u = urlsplit(server)
    password = quote(password, safe="") if encode else password
    return f"mysql://{user}:{password}@{u.hostname}:{u.port or 3306}/{database}"


@pytest.fixture
def secret_mysql(mysql_db):
    """A database for the state store and a user with the recognisable password, allowed to read the
    shop's database (`mysql_db`) and to own the state database; dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    user, state_db = f"crm_secret_{suffix}", f"crm_etl_t_state_{suffix}"
    shop_db = urlsplit(mysql_db).path.lstrip("/")
    conn = _mysql_connect()
    hosts = ("127.0.0.1", "localhost")
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{state_db}` CHARACTER SET utf8mb4")
            for host in hosts:
                cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, MYSQL_PASSWORD))
                cur.execute(f"GRANT SELECT ON `{shop_db}`.* TO %s@%s", (user, host))
                cur.execute(f"GRANT ALL ON `{state_db}`.* TO %s@%s", (user, host))
        yield user, shop_db, state_db
    finally:
        with conn.cursor() as cur:
            for host in hosts:
                cur.execute("DROP USER IF EXISTS %s@%s", (user, host))
            cur.execute(f"DROP DATABASE IF EXISTS `{state_db}`")
        conn.close()


def dump_mysql(database: str) -> str:
    """Every row of every table of a database, as text."""
    conn = _mysql_connect(database)
    lines = []
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            for (table,) in cur.fetchall():
                cur.execute(f"SELECT * FROM `{table}`")
                cols = [c[0] for c in cur.description]
                for row in cur.fetchall():
                    lines.append(f"{table} " + json.dumps(dict(zip(cols, row)), default=_text, ensure_ascii=False))
    finally:
        conn.close()
    return "\n".join(lines)


def dump_sqlite(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def test_no_secret_leaks_anywhere(tmp_path, mysql_db, secret_mysql, kafka_broker):
    user, shop_db, state_db = secret_mysql
    data = tmp_path / "data"
    manifest = generate(data, seed=13, scale=0.002, mysql_dsn=mysql_db)
    exports = sorted(str(p) for p in (data / "shop_b").glob("export_*.json"))
    files = [a for f in exports for a in ("--file", f)]
    registry = data / "egrul_registry.jsonl"

    portal = start_bitrix24(db=tmp_path / "crm.sqlite", rate=200, burst=200, code=WEBHOOK_CODE, user_id=USER_ID)
    egrul = start_egrul(registry, latency=0.0, rps=None, tokens=[EGRUL_TOKEN])
    no_quota = start_egrul(registry, latency=0.0, rps=None, tokens=[EGRUL_TOKEN], daily_quota=0)
    try:
        apply_seed(portal.webhook_url, data / "crm_seed.json", rate=200, burst=200)
        config = tmp_path / "crm-etl.toml"
        config.write_text("[bitrix24]\nrate = 200\nburst = 200\n[egrul]\nrate = 1000\n", encoding="utf-8")
        topic = "sap.bp.changes.secrets." + uuid.uuid4().hex[:8]
        kafka_broker.create_topic(topic)
        assert WEBHOOK_CODE in portal.webhook_url
        env = {
            "CRM_ETL_CONFIG": str(config),
            "CRM_ETL_BITRIX24_WEBHOOK": portal.webhook_url,
            "CRM_ETL_EGRUL_URL": egrul.base_url,
            "CRM_ETL_EGRUL_TOKEN": EGRUL_TOKEN,
            "CRM_ETL_SHOP_A_DSN": mysql_user_dsn(mysql_db, user, MYSQL_PASSWORD, shop_db),
            "CRM_ETL_STATE": mysql_user_dsn(mysql_db, user, MYSQL_PASSWORD, state_db),
            "CRM_ETL_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
            "CRM_ETL_SHOP_B_TOPIC": topic,
        }
        cli = Cli(tmp_path / "logs", env)
        debug = ("--log-level", "DEBUG")
        full_a = ("full", "shop-a", "--since", manifest.since, "--no-progress", *debug)
        full_b = ("full", "shop-b", "--no-progress", *files, *debug)

        def own_state(name: str) -> dict[str, str]:
            return {"CRM_ETL_STATE": str(tmp_path / f"state-{name}.sqlite")}

        produced = produce_events(kafka_broker, topic, data / "shop_b" / "events.jsonl", poison=[b"not json"])
        consume = ("consume", "shop-b", "--session-timeout-ms", "6000", "--linger", "0.2",
                   "--max-messages", str(produced), "--stop-when-idle", "60", *debug)

        # Failures with the secrets in their context, in parallel with the main runs (each has its
        # own state store, so it has everything to write).
        dead_port = free_port()
        failing = [
            cli.start("wrong-shop-password", *full_a, env={
                **own_state("wrong-shop-password"),
                "CRM_ETL_SHOP_A_DSN": mysql_user_dsn(mysql_db, user, WRONG_MYSQL_PASSWORD, shop_db)}),
            cli.start("unencoded-shop-password", *full_a, env={
                **own_state("unencoded-shop-password"),
                "CRM_ETL_SHOP_A_DSN": mysql_user_dsn(mysql_db, user, UNENCODED_MYSQL_PASSWORD, shop_db, encode=False)}),
            cli.start("wrong-state-password", *full_b, env={
                "CRM_ETL_STATE": mysql_user_dsn(mysql_db, user, WRONG_MYSQL_PASSWORD, state_db)}),
            cli.start("unreachable-webhook", *full_b, env={
                **own_state("unreachable-webhook"),
                "CRM_ETL_BITRIX24_WEBHOOK": f"http://127.0.0.1:{dead_port}/rest/{USER_ID}/{WEBHOOK_CODE}/"}),
            cli.start("egrul-key-refused", *full_b, env={
                **own_state("egrul-key-refused"), "CRM_ETL_EGRUL_TOKEN": WRONG_EGRUL_TOKEN}),
            cli.start("egrul-quota-used-up", *full_b, env={
                **own_state("egrul-quota-used-up"), "CRM_ETL_EGRUL_URL": no_quota.base_url}),
            cli.start("consume-webhook-refused", *consume, "--group", "secrets-" + uuid.uuid4().hex[:6], env={
                **own_state("consume-webhook-refused"),
                "CRM_ETL_BITRIX24_WEBHOOK": portal.webhook_url.replace(WEBHOOK_CODE, WRONG_WEBHOOK_CODE)}),
            cli.start("demo", "demo", "--dir", str(tmp_path / "demo"), "--scale", "0.0005", "--rate", "1000",
                      "--burst", "1000", "--egrul-latency", "0", "--no-progress", env={
                          "CRM_ETL_SANDBOX_WEBHOOK_CODE": WEBHOOK_CODE,
                          "CRM_ETL_SANDBOX_EGRUL_TOKEN": EGRUL_TOKEN}),
        ]

        # The main line: full loads, the consumer, a delta through an invalidated webhook, a good delta.
        for ran in (cli.run("full-shop-a", *full_a), cli.run("full-shop-b", *full_b)):
            assert ran.code == 0, ran
        ran = cli.run("consume", *consume, "--group", "secrets-" + uuid.uuid4().hex[:6])
        assert ran.code == 0 and f"{produced} messages" in ran.stdout, ran

        change_a_loaded_company(mysql_db, shop_db, env["CRM_ETL_STATE"])
        _sandbox_config(portal.url, {"invalidate_code": True})
        ran = cli.run("delta-webhook-invalid", "delta", "shop-a", *debug)
        assert ran.code == 3 and "PortalRefused" in ran.stderr + ran.stdout, ran
        _sandbox_config(portal.url, {"code": WEBHOOK_CODE})
        ran = cli.run("delta", "delta", "shop-a", *debug)
        assert ran.code == 0 and "0 companies created, 1 enriched" in ran.stdout, ran  # the new phone

        main_runs = run_ids(cli.ran)
        assert len(main_runs) == 5, main_runs
        for started in failing:
            cli.wait(started)
        outcome = {r.name: r for r in cli.ran}
        # (an EGRUL refusal parks the records and ends the run with 1; the others stop it with 3)
        for name, codes, expect in (("wrong-shop-password", {3}, "Access denied"),
                                    ("unencoded-shop-password", {3}, f"Access denied for user '{user}'"),
                                    ("wrong-state-password", {3}, "Access denied"),
                                    ("unreachable-webhook", {3}, "Connection refused"),
                                    ("egrul-key-refused", {1, 3}, "403 Forbidden (Unknown API key)"),
                                    ("egrul-quota-used-up", {1, 3}, "403 Forbidden (Daily request limit"),
                                    ("consume-webhook-refused", {3}, "PortalRefused")):
            r = outcome[name]
            assert r.code in codes and expect in r.stderr, r
        demo = outcome["demo"]
        assert demo.code == 0 and "demo OK" in demo.stdout, demo

        # What people read afterwards, from every state store: the MySQL one, the demo's, and
        # those of the failed runs (their errors are stored with the run).
        stores = {"": ({}, main_runs),
                  "demo": ({"CRM_ETL_STATE": str(tmp_path / "demo" / "state.sqlite")}, run_ids([demo]))}
        stores.update({name: (own_state(name), [1]) for name in OWN_STATE})
        for r in cli.read_many([c for label, (extra, runs) in stores.items()
                                for c in reading(label, runs, extra, debug)]):
            assert r.code == 0, r
            assert r.stdout.strip() or r.args[0] == "rejects", r
        assert any(" DEBUG " in r.stderr for r in cli.ran), "no run logged at DEBUG"
        state_dump = dump_mysql(state_db)
    finally:
        portal.stop()
        egrul.stop()
        no_quota.stop()

    leaks = find_leaks("MySQL state store", state_dump)
    for r in cli.ran:
        leaks += find_leaks(f"stdout of {r.name}", r.stdout) + find_leaks(f"stderr of {r.name}", r.stderr)
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file():
            leaks += find_leaks(str(path.relative_to(tmp_path)), path.read_bytes())
            if path.suffix == ".sqlite":
                leaks += find_leaks(f"dump of {path.relative_to(tmp_path)}", dump_sqlite(path))
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)


def run_ids(ran: list[Ran]) -> list[int]:
    """The runs these commands reported (`run N` in their output)."""
    return sorted({int(n) for r in ran for n in re.findall(r"\brun (\d+)\b", r.stdout)})


def reading(label: str, runs: list[int], env: dict[str, str],
            debug: tuple[str, ...]) -> list[tuple[str, list[str], dict[str, str]]]:
    """What people read afterwards: the report of every run in both formats, the rejects in both
    formats, the status, as `(name, args, env)` for `Cli.read_many`."""
    assert runs, f"no run to report on in {label or 'the main state store'}"
    commands = [["status"], ["status", "--format", "json"], ["rejects", "--format", "csv"],
                ["rejects", "--format", "json"]]
    commands += [["report", "--run", str(run), "--format", fmt] for run in runs for fmt in ("text", "json")]
    prefix = f"read-{label}-" if label else "read-"
    return [(prefix + "-".join(args).replace("--", ""), [*args, *debug], env) for args in commands]


def change_a_loaded_company(server: str, shop_db: str, state_url: str) -> None:
    """Give one company that is in the CRM a new phone, one second after the newest change."""
    from etl.state import open_state

    conn = _mysql_connect(shop_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM b2b_company ORDER BY id")
            ids = [str(r[0]) for r in cur.fetchall()]
            with open_state(state_url) as state:
                loaded = sorted(int(i) for i in state.identities_for_sources("shop-a", "company", ids))
            cur.execute("SELECT GREATEST((SELECT MAX(updated_at) FROM b2b_company),"
                        " (SELECT MAX(updated_at) FROM b2b_contact))")
            ts = cur.fetchone()[0] + timedelta(seconds=1)
            cur.execute("UPDATE b2b_company SET phone = %s, updated_at = %s WHERE id = %s",
                        (b"+7 495 765-43-21", ts, loaded[0]))
    finally:
        conn.close()


def _sandbox_config(url: str, changes: dict) -> None:
    r = requests.post(url + "/_sandbox/config", json=changes, timeout=10)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("where", ["main thread", "worker thread"])
def test_an_unhandled_exception_prints_its_traceback_without_the_secret(where):
    """A bug's traceback (no command catches it) is printed scrubbed, in any thread."""
    raising = f"raise RuntimeError('cannot use ' + {WEBHOOK_CODE!r})"
    if where == "worker thread":
        raising = f"import threading\ndef work():\n    {raising}\nt = threading.Thread(target=work)\nt.start(); t.join()"
    code = ("from etl.log import setup_logging\nfrom etl.secrets import register\n"
            f"setup_logging()\nregister({WEBHOOK_CODE!r})\n{raising}\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "RuntimeError: cannot use ***" in r.stderr and "Traceback" in r.stderr, r.stderr
    assert not find_leaks(where, r.stderr)


BAD_SETTINGS = {
    "webhook with an unclosed IPv6 bracket": (
        {"CRM_ETL_BITRIX24_WEBHOOK": f"http://[::1/rest/{USER_ID}/{WEBHOOK_CODE}/"}, "full-b", 2,
        f"Bitrix24 webhook http://[::1/rest/{USER_ID}/***/ is not a URL"),
    "webhook without a scheme": (
        {"CRM_ETL_BITRIX24_WEBHOOK": f"portal.example/rest/{USER_ID}/{WEBHOOK_CODE}/"}, "full-b", 2,
        f"Bitrix24 webhook portal.example/rest/{USER_ID}/***/ is not a URL"),
    "shop DSN with an unclosed IPv6 bracket": (
        {"CRM_ETL_SHOP_A_DSN": f"mysql://someone:{quote(MYSQL_PASSWORD, safe='')}@[127.0.0.1:3306/shop"},
        "full-a", 3, "bad MySQL DSN mysql://someone:***@[127.0.0.1:3306/shop: Invalid IPv6 URL"),
    "EGRUL URL with an unclosed IPv6 bracket and its key in the query": (
        {"CRM_ETL_EGRUL_URL": f"http://[::1/rs?token={EGRUL_TOKEN}"}, "full-b", 3,
        "CRM_ETL_EGRUL_URL='http://[::1/rs?token=***' is not an http(s) URL"),
    "state URL with an unencoded password and a bad option": (
        {"CRM_ETL_STATE": f"mysql://someone:{UNENCODED_MYSQL_PASSWORD}@127.0.0.1:3306/crm_state?bogus=1"},
        "status", 2, "state store mysql://someone:***@127.0.0.1:3306/crm_state?bogus=1: unknown option(s) bogus"),
}


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_a_malformed_setting_is_refused_by_name_without_its_secret(tmp_path, case):
    """Settings holding a secret that cannot be used: a clear error naming the setting, its URL's
    structure kept (so the mistake can be seen) and the secret masked; no traceback."""
    env, command, code, message = BAD_SETTINGS[case]
    export = tmp_path / "export.json"
    export.write_text("[]", encoding="utf-8")
    args = {"full-a": ["full", "shop-a"], "full-b": ["full", "shop-b", "--file", str(export)],
            "status": ["status"]}[command]
    base = {"CRM_ETL_STATE": str(tmp_path / "state.sqlite"), "CRM_ETL_EGRUL_TOKEN": EGRUL_TOKEN,
            "CRM_ETL_BITRIX24_WEBHOOK": f"http://127.0.0.1:9/rest/{USER_ID}/{WEBHOOK_CODE}/"}
    r = subprocess.run([sys.executable, "-m", "etl", *args, "--log-level", "DEBUG"], cwd=ROOT,
                       capture_output=True, text=True, env={**os.environ, **base, **env}, timeout=60)
    assert r.returncode == code and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not find_leaks(case, r.stdout + r.stderr)


def test_kafka_credentials_in_the_config_file_are_secrets(tmp_path):
    """librdkafka settings passed through `[kafka.extra]` (SASL, SSL key passwords) are hidden from
    every message; the other settings are not."""
    from etl.config import load_settings
    from etl.secrets import scrub

    password, username = "Kafka-Sasl-" + uuid.uuid4().hex, "user-" + uuid.uuid4().hex[:8]
    config = tmp_path / "kafka.toml"
    config.write_text(f'[kafka]\nbootstrap = "127.0.0.1:1"\n[kafka.extra]\n"sasl.username" = "{username}"\n'
                      f'"sasl.password" = "{password}"\n"ssl.key.password" = "{password}-2"\n', encoding="utf-8")
    settings = load_settings(config, env={})
    assert settings.kafka.extra["sasl.password"] == password      # librdkafka still gets the value
    shown = scrub(f"connect failed: sasl.password={password} ssl.key.password={password}-2 user={username}")
    assert password not in shown and username in shown, shown
