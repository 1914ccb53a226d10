"""`etl.dto.evolve` (the loader's fast `dataclasses.replace`) makes the very same records."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

from etl.dto import BankAccount, Company, Contact, Phone, Reject, evolve

AT = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
RECORDS = [
    Phone("+74951234567", "12", "FAX"),
    BankAccount("044525225", "40702810400000000001"),
    Company("shop-b", "0001", "7707083893", "Ромашка", kpp="770701001", phones=(Phone("+74951234567"),),
            bank_accounts=(BankAccount("044525225", "40702810400000000001"),), updated_at=AT),
    Contact("shop-b", "0002", "0001", "7707083893", "Иван", "Иванов", emails=("i@b.ru",), updated_at=AT),
    Reject("shop-b", "0003", "company", "no_inn", "no INN", {"raw": 1}),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_evolve_is_dataclasses_replace(record):
    names = [f.name for f in dataclasses.fields(record)]
    for i, name in enumerate(names):
        changes = {n: f"changed {n}" for n in names[i:i + 3]}
        ours, theirs = evolve(record, **changes), dataclasses.replace(record, **changes)
        assert type(ours) is type(theirs) and repr(ours) == repr(theirs) and ours == theirs
    assert evolve(record) == record and evolve(record) is not record
    with pytest.raises(TypeError, match="no field 'nope'"):
        evolve(record, nope=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolve(record).__setattr__(names[0], "x")
