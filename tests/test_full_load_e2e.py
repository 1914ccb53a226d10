"""Full loads end to end: generated data (shop A in the real MariaDB, shop B as JSON exports), the
Bitrix24 and EGRUL emulators over HTTP, the real CLI — compared with the generator's ground truth.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from etl.cli import main
from etl.sandbox.bitrix24 import start_bitrix24
from etl.sandbox.egrul import start_egrul
from etl.sandbox.generator import generate
from etl.sandbox.seed import apply_seed
from etl.sandbox.truth import compare_crm_with_truth, compare_rejects
from etl.state import open_state

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

WRITE_METHODS = ("crm.company.add", "crm.company.update", "crm.contact.add", "crm.contact.update",
                 "crm.requisite.add", "crm.requisite.update", "crm.requisite.bankdetail.add",
                 "crm.address.add", "crm.contact.company.add")


class Sandbox:
    def __init__(self, tmp: Path, mysql_dsn: str, *, seed: int, scale: float, rate: float, burst: int) -> None:
        self.dir = tmp
        self.manifest = generate(tmp / "data", seed=seed, scale=scale, mysql_dsn=mysql_dsn)
        self.bitrix = start_bitrix24(db=tmp / "crm.sqlite", rate=rate, burst=burst)
        self.egrul = start_egrul(tmp / "data" / "egrul_registry.jsonl", latency=0.01, rps=None)
        apply_seed(self.bitrix.webhook_url, tmp / "data" / "crm_seed.json", rate=rate, burst=burst)
        self.rate, self.burst = rate, burst
        self.env = {
            "CRM_ETL_BITRIX24_WEBHOOK": self.bitrix.webhook_url,
            "CRM_ETL_EGRUL_URL": self.egrul.base_url,
            "CRM_ETL_EGRUL_TOKEN": self.egrul.token,
            "CRM_ETL_SHOP_A_DSN": mysql_dsn,
            "CRM_ETL_STATE": str(tmp / "state.sqlite"),
        }
        config = tmp / "crm-etl.toml"
        # EGRUL at the emulator's speed, not DaData's 20 lookups/s: tests about the provider's limits
        # set their own
        config.write_text(f"[bitrix24]\nrate = {rate}\nburst = {burst}\n[egrul]\nrate = 1000\n",
                          encoding="utf-8")
        self.env["CRM_ETL_CONFIG"] = str(config)
        self.exports = sorted(str(p) for p in (tmp / "data" / "shop_b").glob("export_*.json"))

    def args(self, shop: str) -> list[str]:
        if shop == "shop-a":
            return ["full", "shop-a", "--since", self.manifest.since, "--no-progress"]
        return ["full", "shop-b", "--no-progress"] + [a for f in self.exports for a in ("--file", f)]

    def run(self, shop: str) -> None:
        result = CliRunner().invoke(main, self.args(shop), env=self.env, catch_exceptions=False)
        assert result.exit_code == 0, result.output

    def popen(self, shop: str) -> subprocess.Popen:
        env = {**os.environ, **self.env}
        return subprocess.Popen([sys.executable, "-m", "etl", *self.args(shop)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stats(self) -> dict:
        return requests.get(self.bitrix.url + "/_sandbox/stats", timeout=5).json()

    def writes(self) -> int:
        methods = self.stats()["methods"]
        return sum(methods.get(m, 0) for m in WRITE_METHODS)

    def check_truth(self) -> None:
        crm = compare_crm_with_truth(self.bitrix.webhook_url, self.dir / "data", rate=1000, burst=1000)
        assert crm.ok, crm.summary()
        with open_state(self.env["CRM_ETL_STATE"]) as state:
            rej = compare_rejects(((r.source, r.kind, r.source_id, r.reason) for r in state.iter_rejects()),
                                  self.dir / "data")
        assert rej.ok, rej.summary()

    def stop(self) -> None:
        self.bitrix.stop()
        self.egrul.stop()


@pytest.fixture
def sandbox(tmp_path, mysql_db):
    box = Sandbox(tmp_path, mysql_db, seed=7, scale=0.002, rate=200, burst=200)
    yield box
    box.stop()


def test_both_full_loads_match_the_truth_and_a_rerun_writes_nothing(sandbox):
    sandbox.run("shop-a")
    sandbox.run("shop-b")
    sandbox.check_truth()
    with open_state(sandbox.env["CRM_ETL_STATE"]) as state:
        runs = state.list_runs()
    counts = {r.source: r.counts for r in runs}
    # full batches: many writes per HTTP request
    b = counts["shop-b"]
    assert b["crm_write_commands"] / b["crm_write_requests"] >= 40
    # one registry lookup per distinct INN, never more
    assert counts["shop-a"]["egrul_lookups"] == counts["shop-a"]["egrul_distinct_inns"] > 0
    # shop B shares INNs with shop A, already cached: one lookup per INN the cache did not have
    b_inns = counts["shop-b"]
    assert b_inns["egrul_lookups"] == b_inns["egrul_uncached_inns"] < b_inns["egrul_distinct_inns"]

    before = sandbox.writes()
    sandbox.run("shop-a")
    sandbox.run("shop-b")
    assert sandbox.writes() == before, "a rerun on unchanged data must not write to the CRM"
    with open_state(sandbox.env["CRM_ETL_STATE"]) as state:
        rerun = state.list_runs(limit=2)
    for run in rerun:
        assert run.counts["egrul_lookups"] == 0          # everything from the cache
        assert run.counts.get("companies_created", 0) == run.counts.get("contacts_created", 0) == 0
    sandbox.check_truth()


def test_report_rejects_and_status_commands(sandbox):
    sandbox.run("shop-a")
    r = CliRunner().invoke(main, ["report", "--format", "json"], env=sandbox.env)
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["source"] == "shop-a" and report["companies"]["created"] > 0
    truth = [json.loads(line) for line in (sandbox.dir / "data" / "truth" / "rejects.jsonl").read_text().splitlines()]
    company_reasons = Counter(t["reason"] for t in truth if t["source"] == "shop-a" and t["kind"] == "company")
    reason, expected = company_reasons.most_common(1)[0]
    r = CliRunner().invoke(main, ["rejects", "--reason", reason, "--kind", "company", "--format", "json"],
                           env=sandbox.env)
    assert r.exit_code == 0
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert len(rows) == expected > 0 and all(row["reason"] == reason and row["raw"] for row in rows)
    r = CliRunner().invoke(main, ["rejects", "--format", "csv", "--no-raw"], env=sandbox.env)
    assert r.output.splitlines()[0] == "source,kind,source_id,reason,detail,run_id,rejected_at"
    r = CliRunner().invoke(main, ["status"], env=sandbox.env)
    assert r.exit_code == 0 and "full" in r.output and "shop-a" in r.output


def test_a_run_whose_process_died_is_shown_as_interrupted(tmp_path):
    """A run killed before it could record its end stays `running` in the store; report and status
    show it as interrupted once its process is gone, and a live run as running."""
    state = tmp_path / "state.sqlite"
    code = ("import sys; from etl.state import open_state\n"
            "with open_state(sys.argv[1]) as s: print(s.start_run('full', 'shop-a', 'crm-etl full shop-a'))")
    dead = subprocess.run([sys.executable, "-c", code, str(state)], capture_output=True, text=True, check=True)
    with open_state(str(state)) as s:
        live = s.start_run("full", "shop-b", "crm-etl full shop-b")   # this process: alive
    env = {"CRM_ETL_STATE": str(state)}
    r = CliRunner().invoke(main, ["status", "--format", "json"], env=env)
    assert r.exit_code == 0, r.output
    shown = {run["run"]: run["status"] for run in json.loads(r.output)["runs"]}
    assert shown == {int(dead.stdout): "interrupted", live: "running"}
    r = CliRunner().invoke(main, ["report", "--run", dead.stdout.strip(), "--format", "json"], env=env)
    assert r.exit_code == 0 and json.loads(r.output)["status"] == "interrupted", r.output
