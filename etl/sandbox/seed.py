"""Put the CRM seed (`crm_seed.json` from `crm-etl generate`) into a Bitrix24 portal through the
ordinary REST API, before the first load: what the CRM already holds.

Companies go in with their INN requisite (`crm.company.add` + `crm.requisite.add` referring to it
by `$result[...]`, 25 pairs per batch), then contacts linked to their company (50 per batch).
The portal's rate limit is respected (see etl.sandbox.generator.portal). Applying a seed twice
creates everything twice: seed an empty portal.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from etl.sandbox.generator.portal import Portal, PortalError, php_query

PRESET_XML_IDS = {"company": "#CRM_REQUISITE_PRESET_DEF_RU_COMPANY#",
                  "individual": "#CRM_REQUISITE_PRESET_DEF_RU_INDIVIDUAL#"}
DEFAULT_PRESETS = {"company": 1, "individual": 2}
COMPANY_ENTITY = 4
MAX_PAIRS = 25  # company + requisite = 2 commands; 50 a batch


class SeedError(Exception):
    """The seed file is unusable or the portal refused a seed item (the message names it)."""


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _presets(portal: Portal) -> dict[str, int]:
    """Preset ids by XML_ID (real portals differ); the usual 1/2 if the portal lists none."""
    try:
        rows = portal.call("crm.requisite.preset.list", {"select": ["ID", "XML_ID"]}).get("result") or []
    except PortalError:
        rows = []
    found = {row.get("XML_ID"): int(row["ID"]) for row in rows if isinstance(row, dict) and row.get("ID")}
    return {kind: found.get(xml_id, DEFAULT_PRESETS[kind]) for kind, xml_id in PRESET_XML_IDS.items()}


def load_seed(seed_path: str | Path) -> dict:
    path = Path(seed_path)
    try:
        seed = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SeedError(f"{path}: not a readable CRM seed ({e}); generate one with `crm-etl generate`") from None
    if not isinstance(seed, dict) or not isinstance(seed.get("companies"), list) \
            or not isinstance(seed.get("contacts"), list):
        raise SeedError(f"{path}: expected {{\"companies\": [...], \"contacts\": [...]}}")
    return seed


def apply_seed(webhook_url: str, seed_path: str | Path, *, rate: float = 2.0, burst: int = 50) -> dict:
    """Create the seed's companies (with requisites) and contacts; return counts and the ids given
    to each seed key: `{"companies": n, "contacts": m, "company_ids": {key: id}, "contact_ids": {...}}`."""
    seed = load_seed(seed_path)
    company_ids: dict[str, int] = {}
    contact_ids: dict[str, int] = {}
    with Portal(webhook_url, rate=rate, burst=burst) as portal:
        presets = _presets(portal)
        for chunk in _chunks(seed["companies"], MAX_PAIRS):
            cmds = {}
            for i, item in enumerate(chunk):
                requisite = dict(item["requisite"])
                preset = presets[requisite.pop("PRESET", "company")]
                cmds[f"c{i}"] = "crm.company.add?" + php_query({"fields": item["fields"]})
                cmds[f"r{i}"] = "crm.requisite.add?" + php_query({"fields": {
                    "ENTITY_TYPE_ID": COMPANY_ENTITY, "ENTITY_ID": f"$result[c{i}]", "PRESET_ID": preset,
                    **requisite}})
            res = portal.batch(cmds, read=False)
            _raise_errors(res, [(f"c{i}", item["key"]) for i, item in enumerate(chunk)]
                          + [(f"r{i}", item["key"]) for i, item in enumerate(chunk)])
            for i, item in enumerate(chunk):
                company_ids[item["key"]] = int(res["result"][f"c{i}"])
        for chunk in _chunks(seed["contacts"], 50):
            cmds = {}
            for i, item in enumerate(chunk):
                fields = dict(item["fields"])
                if item.get("company_key"):
                    if item["company_key"] not in company_ids:
                        raise SeedError(f"seed contact {item['key']}: unknown company {item['company_key']}")
                    fields["COMPANY_ID"] = company_ids[item["company_key"]]
                cmds[f"p{i}"] = "crm.contact.add?" + php_query({"fields": fields})
            res = portal.batch(cmds, read=False)
            _raise_errors(res, [(f"p{i}", item["key"]) for i, item in enumerate(chunk)])
            for i, item in enumerate(chunk):
                contact_ids[item["key"]] = int(res["result"][f"p{i}"])
    return {"companies": len(company_ids), "contacts": len(contact_ids), "company_ids": company_ids,
            "contact_ids": contact_ids}



def _raise_errors(res: dict, keys: list[tuple[str, str]]) -> None:
    errors = res.get("result_error", {})
    results = res.get("result", {})
    for cmd, seed_key in keys:
        if cmd in errors or cmd not in results:
            e = errors.get(cmd, {})
            raise SeedError(f"seed item {seed_key}: the portal refused it "
                            f"({e.get('error', 'no result')} {e.get('error_description', '')})".strip())
