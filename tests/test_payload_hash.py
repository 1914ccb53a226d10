"""The payload hash is SHA-1 of the standard library's canonical JSON, whichever encoder writes it:
a rerun must find the hashes earlier runs stored (or it would look at every entity again)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from etl.dto import BankAccount, Company, Contact, Phone
from etl.sandbox.generator import generate
from extractors.jsonfile import JsonFileSource
from loaders import payloads as P
from transformers.shop_b import ShopBTransformer


def reference(*parts) -> str:
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


def payloads(c: Company | Contact) -> tuple:
    if isinstance(c, Contact):
        return (P.contact_fields(c, "contact:0123456789abcdef01234567", 42),)
    return (P.company_fields(c, P.company_identity(c.inn)), P.requisite_fields(c, 0, 0, "Иванов Иван Иванович"),
            [P.bankdetail_fields(b, 0) for b in c.bank_accounts], c.address)


AWKWARD = ['кавычки "ёлки"', "back\\slash", "line\nbreak\ttab\r", "\x00\x01\x1f\x7f", "\u2028\u2029",
           "emoji 😀", "Café Müller", "", " ", "/slash/", "<html>&amp;"]


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_text_hashes_as_the_standard_encoder_writes_it(text):
    company = Company("shop-b", "1", "7707083893", text, kpp=text, full_name=text, address=text,
                      phones=(Phone("+74951234567", text, "WORK"),), emails=(text,),
                      bank_accounts=(BankAccount("044525225", "40702810900000000001", text, text),))
    contact = Contact("shop-b", "2", "1", "7707083893", first_name=text, last_name=text, middle_name=text,
                      position=text, phones=company.phones, emails=company.emails)
    for dto in (company, contact, replace(contact, first_name="", last_name="")):
        assert P.payload_hash(*payloads(dto)) == reference(*payloads(dto))


def test_other_values_hash_as_the_standard_encoder_writes_them():
    odd = {"int": 2 ** 70, "neg": -1, "bool": True, "none": None, "nested": [[1, [2, {"b": 1, "a": 2}]]],
           "when": datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "tuple": (1, "x")}
    assert P.payload_hash(odd, "tail") == reference(odd, "tail")


def test_every_generated_record_hashes_as_the_standard_encoder_writes_it(tmp_path):
    generate(tmp_path, seed=3, scale=0.005)
    files = sorted(str(p) for p in (tmp_path / "shop_b").glob("export_*.json"))
    n = 0
    for item in ShopBTransformer().transform(JsonFileSource(files).records()):
        if isinstance(item, (Company, Contact)):
            assert P.payload_hash(*payloads(item)) == reference(*payloads(item)), item
            n += 1
    assert n > 100
