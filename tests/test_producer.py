"""The extraction process (etl.producer): order, failures, stopping, relayed callbacks."""
from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from etl.dto import BankAccount, Company, Contact, Phone, Reject
from etl.producer import ExtractionDied, ExtractionProcess, can_fork, relay
from extractors.jsonfile import SourceFileError

pytestmark = pytest.mark.skipif(not can_fork(), reason="the extraction process needs fork()")


def contacts(n: int) -> Iterator[Contact]:
    for i in range(n):
        yield Contact("shop-b", f"{i:010d}", "0000000001", "7707083893", last_name="Иванов",
                      phones=(Phone("+74951234567", "12"),), emails=(f"a{i}@example.ru",))


def collect(ex: ExtractionProcess) -> list:
    out = []
    try:
        for chunk in ex.chunks():
            out.append(chunk)
    finally:
        ex.close()
    return out


def test_records_arrive_in_order_in_chunks_and_prepared():
    ex = ExtractionProcess(contacts(25), prepare=lambda c: (c.source_id, c), chunk_size=10)
    ex.start()
    chunks = collect(ex)
    assert [len(c) for c in chunks] == [10, 10, 5]
    got = [item for c in chunks for item in c]
    assert [sid for sid, _ in got] == [f"{i:010d}" for i in range(25)]
    assert got[3][1] == next(c for i, c in enumerate(contacts(25)) if i == 3)  # DTOs intact


def test_every_kind_of_record_arrives_whole_and_still_frozen():
    at = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    records = [
        Company("shop-b", "0001", "7707083893", "Ромашка", kpp="770701001", is_sole_proprietor=False,
                phones=(Phone("+74951234567", "12", "FAX"),), emails=("a@b.ru",), address="Москва",
                bank_accounts=(BankAccount("044525225", "40702810400000000001", "30101810400000000225", "Банк"),),
                updated_at=at),
        Contact("shop-b", "0002", "0001", "7707083893", "Иван", "Иванов", "Иванович", "директор",
                (Phone("+74951234567"),), ("i@b.ru",), at),
        Reject("shop-b", "0003", "company", "no_inn", "no INN", {"raw": b"\xff", "n": None}),
    ]
    ex = ExtractionProcess(iter(records), prepare=lambda r: r, chunk_size=10)
    ex.start()
    (got,) = collect(ex)
    assert [repr(r) for r in got] == [repr(r) for r in records]
    assert got == records and [hash(r) for r in got[:2]] == [hash(r) for r in records[:2]]
    for r in got:
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.source = "other"  # type: ignore[misc]


def test_limit_stops_reading():
    ex = ExtractionProcess(contacts(1000), prepare=lambda c: c, chunk_size=7, limit=15)
    ex.start()
    assert sum(len(c) for c in collect(ex)) == 15


def test_a_source_failure_arrives_after_the_records_before_it_with_its_type_and_fields():
    def damaged() -> Iterator[Reject]:
        yield Reject("shop-b", "1", "record", "bad_record", "x", raw={"PARTNER": "1", "N": [1, 2.5, None]})
        yield Reject("shop-b", "2", "record", "bad_record", "y")
        raise SourceFileError("/data/export.json", 1234, "the file ends in the middle of the JSON", "get it again")

    ex = ExtractionProcess(damaged(), prepare=lambda r: r, chunk_size=10)
    ex.start()
    got = []
    with pytest.raises(SourceFileError) as info:
        for chunk in ex.chunks():
            got.extend(chunk)
    ex.close()
    assert [r.source_id for r in got] == ["1", "2"]
    assert got[0].raw == {"PARTNER": "1", "N": [1, 2.5, None]}
    assert info.value.path == "/data/export.json" and info.value.offset == 1234
    assert "the file ends in the middle of the JSON" in str(info.value)


def test_stop_ends_the_extraction_at_the_next_record():
    def endless() -> Iterator[int]:
        i = 0
        while True:
            i += 1
            yield i

    ex = ExtractionProcess(endless(), prepare=lambda i: i, chunk_size=100)
    ex.start()
    seen = 0
    for chunk in ex.chunks():
        seen += len(chunk)
        ex.stop()
    ex.close()
    assert seen >= 100 and not ex.signalled


def test_a_signal_to_the_extraction_process_stops_it_and_says_so():
    def slow() -> Iterator[int]:
        for i in range(10_000):
            time.sleep(0.001)
            yield i

    ex = ExtractionProcess(slow(), prepare=lambda i: i, chunk_size=50)
    ex.start()
    seen = 0
    for chunk in ex.chunks():
        if seen == 0:
            os.kill(ex.pid, signal.SIGTERM)
        seen += len(chunk)
    ex.close()
    assert ex.signalled
    assert 50 <= seen < 10_000


def test_an_extraction_process_that_dies_is_an_error_not_an_end():
    def dies() -> Iterator[int]:
        yield 1
        os._exit(9)

    ex = ExtractionProcess(dies(), prepare=lambda i: i, chunk_size=1)
    ex.start()
    with pytest.raises(ExtractionDied, match="exit code 9"):
        for _ in ex.chunks():
            pass
    ex.close()


def test_relayed_callbacks_run_in_this_process():
    calls: list[tuple[int, int]] = []
    progress = relay(lambda done, total: calls.append((done, total)))

    def reporting() -> Iterator[int]:
        for i in range(5):
            progress(i, 5)
            yield i

    ex = ExtractionProcess(reporting(), prepare=lambda i: i, chunk_size=2)
    ex.start()
    assert [x for c in collect(ex) for x in c] == [0, 1, 2, 3, 4]
    assert calls == [(i, 5) for i in range(5)]
    progress(9, 9)  # called here, it runs directly
    assert calls[-1] == (9, 9)
