"""The fault tests' sandbox: the e2e `Sandbox` (generated data, both emulators over HTTP, the real
CLI) plus what a fault test needs: client settings in the config file, faults and settings set
through the emulators' admin API, runs that may fail, and the final check against the truth.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from click.testing import CliRunner

from etl.cli import main
from etl.sandbox.generator.portal import Portal
from etl.state import open_state
from tests.test_full_load_e2e import Sandbox


def _toml(sections: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in values.items()]
    return "\n".join(lines) + "\n"


class FaultBox(Sandbox):
    """A Sandbox whose CRM limits are lifted unless a test sets them (`rate`, `burst`)."""

    def __init__(self, tmp: Path, mysql_dsn: str, *, seed: int = 5, scale: float = 0.002,
                 rate: float = 1000, burst: int = 1000, bitrix24: dict | None = None,
                 egrul: dict | None = None) -> None:
        super().__init__(tmp, mysql_dsn, seed=seed, scale=scale, rate=rate, burst=burst)
        self.configure(bitrix24=bitrix24, egrul=egrul)

    def configure(self, *, bitrix24: dict | None = None, egrul: dict | None = None) -> None:
        """Rewrite the config file: the client's Bitrix24 and EGRUL settings."""
        Path(self.env["CRM_ETL_CONFIG"]).write_text(_toml({
            "bitrix24": {"rate": float(self.rate), "burst": self.burst, **(bitrix24 or {})},
            "egrul": {"rate": 1000.0, **(egrul or {})}}), encoding="utf-8")

    # --- the emulators' admin API -------------------------------------------------------------
    def crm_faults(self, **spec: Any) -> dict:
        return _post(self.bitrix.url + "/_sandbox/faults", spec)

    def crm_config(self, **changes: Any) -> dict:
        return _post(self.bitrix.url + "/_sandbox/config", changes)

    def egrul_faults(self, **spec: Any) -> dict:
        return _post(self.egrul.url + "/_sandbox/faults", spec)

    def egrul_config(self, **changes: Any) -> dict:
        return _post(self.egrul.url + "/_sandbox/config", changes)

    def egrul_stats(self) -> dict:
        return requests.get(self.egrul.url + "/_sandbox/stats", timeout=5).json()

    # --- runs -----------------------------------------------------------------------------------
    def invoke(self, shop: str, env: dict[str, str] | None = None):
        """Run `crm-etl full SHOP` in this process; returns click's Result (exit code, output)."""
        return CliRunner().invoke(main, self.args(shop), env={**self.env, **(env or {})},
                                  catch_exceptions=False)

    def spawn(self, shop: str, env: dict[str, str] | None = None,
              stderr: int | None = subprocess.PIPE) -> subprocess.Popen:
        """`crm-etl full SHOP` as a process of its own (to kill it, or to race it)."""
        return subprocess.Popen([sys.executable, "-m", "etl", *self.args(shop)],
                                env={**os.environ, **self.env, **(env or {})},
                                stdout=subprocess.DEVNULL, stderr=stderr, text=True)

    def last_run(self) -> dict:
        with open_state(self.env["CRM_ETL_STATE"]) as state:
            run = state.list_runs(limit=1)[0]
        return {"status": run.status, **run.counts}

    def pending(self) -> list:
        with open_state(self.env["CRM_ETL_STATE"]) as state:
            return list(state.iter_pending())

    def wait_for(self, condition, what: str, timeout: float = 60.0) -> None:
        """Poll `condition()` until true (generous deadline: the machine may be loaded)."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)

    def companies_without_requisite(self) -> list[int]:
        """CRM companies that have no requisite: a company + requisite write cut half-way."""
        with Portal(self.bitrix.webhook_url, rate=1000, burst=1000) as portal:
            companies = {int(r["ID"]) for r in portal.list_all("crm.company.list", select=["ID"])}
            owners = {int(r["ENTITY_ID"]) for r in portal.list_all(
                "crm.requisite.list", select=["ID", "ENTITY_ID"], filter={"ENTITY_TYPE_ID": 4})}
        return sorted(companies - owners)

    def check_exact(self) -> None:
        """Faults off, then: the CRM is the truth, every reject is the truth's, nothing parked."""
        self.crm_faults()
        self.egrul_faults()
        self.check_truth()
        parked = [(p.source, p.kind, p.source_id, p.detail) for p in self.pending()]
        assert parked == [], f"{len(parked)} records still parked: {parked[:5]}"
        with open_state(self.env["CRM_ETL_STATE"]) as state:
            assert state.integrity_check() == []


def _post(url: str, body: dict) -> dict:
    r = requests.post(url, json=body, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()
