"""A small hand-made sandbox for the bad-input tests: a Bitrix24 portal (limits lifted) and an EGRUL
emulator whose registry holds a few ACTIVE companies, the real CLI, and what the CRM stored, read
back over the portal's HTTP API. No generator: each test writes the few records it is about.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from stdnum.ru import inn as stdnum_inn

from etl.cli import main
from etl.sandbox.bitrix24 import start_bitrix24
from etl.sandbox.egrul import start_egrul
from etl.sandbox.generator.portal import Portal
from tests.test_egrul_emulator import company, write_registry


def valid_inns(n: int, prefix: str = "50") -> list[str]:
    """n distinct checksum-valid 10-digit INNs (not the well-known real ones)."""
    body = [f"{prefix}{i:07d}" for i in range(1, n + 1)]
    return [b + stdnum_inn.calc_company_check_digit(b) for b in body]


ACTIVE = valid_inns(12)            # in the registry, ACTIVE: these companies reach the CRM


class Stage:
    """Both emulators, a state store and a config file under `tmp`; `env` for the CLI."""

    def __init__(self, tmp: Path, *, state: str | None = None, shop_a_dsn: str = "",
                 registry_names: dict[str, str] | None = None,
                 registry_fields: dict[str, dict[str, Any]] | None = None) -> None:
        """`registry_names`: the registry's name for some of the ACTIVE INNs (what becomes the
        CRM card's title), instead of ОБЩЕСТВО <n>; `registry_fields`: fields of their registry
        records replaced (e.g. no KPP)."""
        self.dir = tmp
        names, fields = registry_names or {}, registry_fields or {}
        registry = write_registry(tmp / "registry.jsonl", [
            company(inn, names.get(inn, f"ОБЩЕСТВО {i}")) | fields.get(inn, {}) for i, inn in enumerate(ACTIVE)])
        self.bitrix = start_bitrix24(limits=False)
        self.egrul = start_egrul(registry, latency=0.0, rps=None)
        config = tmp / "crm-etl.toml"
        config.write_text("[bitrix24]\nrate = 1000\nburst = 1000\n[egrul]\nrate = 1000\n", encoding="utf-8")
        self.env = {
            "CRM_ETL_BITRIX24_WEBHOOK": self.bitrix.webhook_url,
            "CRM_ETL_EGRUL_URL": self.egrul.base_url,
            "CRM_ETL_EGRUL_TOKEN": self.egrul.token,
            "CRM_ETL_STATE": state or str(tmp / "state.sqlite"),
            "CRM_ETL_SHOP_A_DSN": shop_a_dsn,
            "CRM_ETL_CONFIG": str(config),
        }

    def cli(self, *args: str) -> Result:
        """The real CLI in-process; an exception escaping it fails the test (a crash is a bug)."""
        return CliRunner().invoke(main, list(args), env=self.env, catch_exceptions=False)

    def full_b(self, *files: Path) -> Result:
        return self.cli("full", "shop-b", "--no-progress", *[a for f in files for a in ("--file", str(f))])

    def full_a(self, since: str = "2000-01-01") -> Result:
        return self.cli("full", "shop-a", "--since", since, "--no-progress")

    def rejects(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(kind, source_id) -> the reject row, as `crm-etl rejects --format json` prints it."""
        r = self.cli("rejects", "--format", "json")
        assert r.exit_code == 0, r.output
        rows = [json.loads(line) for line in r.output.splitlines() if line.strip()]
        return {(row["kind"], row["source_id"]): row for row in rows}

    def crm(self) -> tuple[dict[str, dict], list[dict]]:
        """What the portal holds, over its REST API: ({INN: company row with REQUISITE}, contacts)."""
        with Portal(self.bitrix.webhook_url, rate=1000, burst=1000) as portal:
            companies = {int(c["ID"]): c for c in portal.list_all(
                "crm.company.list", select=["ID", "TITLE", "PHONE", "EMAIL", "ADDRESS"])}
            by_inn: dict[str, dict] = {}
            for rq in portal.list_all("crm.requisite.list", filter={"ENTITY_TYPE_ID": 4},
                                      select=["ID", "ENTITY_ID", "RQ_INN", "RQ_KPP", "RQ_OGRN",
                                              "RQ_COMPANY_NAME", "RQ_COMPANY_FULL_NAME"]):
                row = companies.get(int(rq["ENTITY_ID"]))
                if row is not None:
                    by_inn[rq["RQ_INN"]] = {**row, "REQUISITE": rq}
            assert len(by_inn) == len(companies), "every company the job created has its requisite"
            contacts = list(portal.list_all("crm.contact.list", select=[
                "ID", "NAME", "LAST_NAME", "SECOND_NAME", "POST", "PHONE", "EMAIL", "COMPANY_ID"]))
        return by_inn, contacts

    def stop(self) -> None:
        self.bitrix.stop()
        self.egrul.stop()


def partner(pid: int, inn: Any = None, **over: Any) -> dict[str, Any]:
    """A well-formed shop B export item (active, one contact), with `over` replacing its fields."""
    item: dict[str, Any] = {
        "PARTNER": f"{pid:010d}", "BU_TYPE": "2", "NAME_ORG1": f"Компания {pid}", "NAME_ORG2": "",
        "LEGAL_ENTY": "ООО",
        "TAXNUMS": [{"TAXTYPE": "RU1", "TAXNUM": ACTIVE[pid % len(ACTIVE)] if inn is None else inn}],
        "STATUS": "E0002", "XDELE": "",
        "ADDRESS": {"COUNTRY": "RU", "POST_CODE1": "101000", "CITY1": "Москва"},
        "COMM": {"PHONE": [{"TEL_NUMBER": f"8 495 100-{pid // 100 % 100:02d}-{pid % 100:02d}",
                            "TEL_EXTENS": ""}],
                 "EMAIL": [{"SMTP_ADDR": f"info{pid}@example.ru"}]},
        "CONTACTS": [{"PARTNER": f"{pid + 5000:010d}", "NAME_LAST": "Петров", "NAME_FIRST": "Иван",
                      "NAME_MIDDLE": "Сергеевич", "FUNCTION": "Менеджер", "XDELE": "",
                      "COMM": {"EMAIL": [{"SMTP_ADDR": f"petrov{pid}@example.ru"}]}}],
        "CHANGED_AT": "20250115103000",
    }
    item.update(over)
    return item


def write_export(path: Path, items: list[Any]) -> Path:
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return path
