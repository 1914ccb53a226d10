"""Both transformers on the sandbox generator's data, checked against its ground truth: every
reject the transformers own, the INN each record carries, and each loaded contact's phones,
e-mails and name parts (scale 0.01: ~1,300 shop A rows, ~7,000 shop B records)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from etl import rejects
from etl.dto import Company, Contact, Reject
from transformers import shop_a
from transformers.cleaning import names_conflict
from transformers.shop_a import ShopATransformer
from transformers.shop_b import ShopBTransformer

# Reasons decided by the transformers; the others (inn_format, inn_checksum, egrul_not_found,
# inactive:*) come later from the validators.
OWNED = {rejects.BAD_RECORD, rejects.SOURCE_DELETED, rejects.SOURCE_INACTIVE, rejects.NO_INN,
         rejects.COMPANY_MISSING}


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from etl.sandbox.generator import generate

    out = tmp_path_factory.mktemp("generated")
    generate(out, seed=5, scale=0.01)
    return out


@pytest.fixture(scope="module")
def outputs(generated: Path) -> list[Company | Contact | Reject]:
    from extractors.sql import open_sql_source

    since = datetime.fromisoformat(json.loads((generated / "manifest.json").read_text())["since"])

    def rows_a() -> Iterator[dict[str, Any]]:
        with open_sql_source(f"sqlite:///{generated}/shop_a.sqlite") as source:
            for table, sql in shop_a.SQL_FULL:
                yield from source.iter_rows(sql, {"since": since}, table=table)

    def items_b() -> Iterator[Any]:
        for path in sorted((generated / "shop_b").glob("export_*.json")):
            yield from json.loads(path.read_text(encoding="utf-8-sig"))

    return [*ShopATransformer("shop-a").transform(rows_a()), *ShopBTransformer("shop-b").transform(items_b())]


def _key(o: Company | Contact | Reject) -> tuple[str, str, str]:
    kind = "company" if isinstance(o, Company) else "contact" if isinstance(o, Contact) else o.kind
    return o.source, kind, o.source_id


def test_rejects_agree_with_the_truth(generated: Path, outputs: list[Company | Contact | Reject]) -> None:
    truth = {(r["source"], r["kind"], r["source_id"]): (r["reason"], r["detail"])
             for r in _jsonl(generated / "truth" / "rejects.jsonl")}
    produced = {_key(o): o for o in outputs}
    assert len(produced) == len(outputs)  # one output per source record
    wrong = []
    for key, o in produced.items():
        expected = truth.get(key)
        if isinstance(o, Reject):
            if expected is None or (o.reason, o.detail if o.reason == rejects.COMPANY_REJECTED else "") != \
                    (expected[0], expected[1] if expected[0] == rejects.COMPANY_REJECTED else ""):
                wrong.append((key, o.reason, o.detail, expected))
        elif expected is not None and (expected[0] in OWNED or
                                       (expected[0] == rejects.COMPANY_REJECTED and expected[1] in OWNED)):
            wrong.append((key, "handed on", expected))
    for key, (reason, detail) in truth.items():
        if key[0] in ("shop-a", "shop-b") and key not in produced:
            wrong.append((key, "never produced", reason))
    assert not wrong, wrong[:10]
    assert sum(isinstance(o, Reject) for o in outputs) > 100  # the data really holds rejects


def test_handed_on_records_agree_with_the_truth(generated: Path,
                                                outputs: list[Company | Contact | Reject]) -> None:
    companies = {s: c for c in _jsonl(generated / "truth" / "companies.jsonl") for s in c["sources"]}
    persons = {s: p for p in _jsonl(generated / "truth" / "contacts.jsonl") for s in p["sources"]}
    wrong = []
    checked = 0
    for o in outputs:
        ref = f"{o.source}:{_key(o)[1]}:{o.source_id}"
        if isinstance(o, Company) and ref in companies:
            checked += 1
            if o.inn != companies[ref]["inn"]:
                wrong.append((ref, o.inn, companies[ref]["inn"]))
        elif isinstance(o, Contact) and ref in persons:
            checked += 1
            p = persons[ref]
            if o.company_inn != p["company_inn"]:
                wrong.append((ref, "company_inn", o.company_inn, p["company_inn"]))
            if not {ph.e164 for ph in o.phones} <= set(p["phones"]):
                wrong.append((ref, "phones", o.phones, p["phones"]))
            if not set(o.emails) <= set(p["emails"]):
                wrong.append((ref, "emails", o.emails, p["emails"]))
            if names_conflict(o, (p["last_name"], p["first_name"], p["middle_name"])):
                wrong.append((ref, "name", o.full_name, p["last_name"], p["first_name"], p["middle_name"]))
    assert not wrong, wrong[:10]
    assert checked > 3000
