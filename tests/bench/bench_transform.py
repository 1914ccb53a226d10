"""Transform cost: µs per source record for shop A and shop B, cleaning helpers, petl vs plain.

Two data sets: the sandbox generator's (etl.sandbox.generator, scale 0.02: ~2.5k shop A rows,
~14k shop B records; what the shops really send) and a synthetic worst-case mix built here (70 %
cp1251 text, mojibake, every legacy phone format incl. extensions and junk, the three name forms).
Goal: the whole extract+transform+validate+dedup chain at >= 1/6 of ijson's raw parse rate, which
leaves the transform roughly 20-40 µs per source record. Times are best-of-5 CPU time.
"""
from __future__ import annotations

import io
import json
import random
import tempfile
import time
from pathlib import Path
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import ijson

from transformers.cleaning import clean_emails, clean_phones, decode_legacy, split_full_name
from transformers import shop_a
from transformers.shop_a import ShopATransformer
from transformers.shop_b import ShopBTransformer

N_COMPANIES_A = 3000
N_CONTACTS_A = 4200      # ~75k / 53k per company, as in the reference case
N_PARTNERS_B = 2000      # with ~4.8 contacts each (600k / 125k)
REPEAT = 5

LAST = ["Иванов", "Петров", "Сидоров", "Кузнецов", "Смирнов", "Попов", "Васильев", "Соколов", "Фёдоров"]
FIRST = ["Иван", "Пётр", "Сергей", "Алексей", "Дмитрий", "Андрей", "Михаил", "Николай"]
MIDDLE = ["Иванович", "Петрович", "Сергеевич", "Алексеевич", "Дмитриевич", "Андреевич"]
WORDS = ["Ромашка", "Вектор", "Альфа", "Стройинвест", "ТехноСервис", "Гарант", "Прогресс", "Север"]
PHONES = ["8 (495) {a}-{b}-{c}", "+7 495 {a}-{b}-{c}", "+7(495){a}{b}{c}", "7495{a}{b}{c}",
          "8495{a}{b}{c}", "495{a}{b}{c}", "8-916-{a}-{b}-{c}", "8 (495) {a}-{b}-{c} доб. 123",
          "+7 495 {a}{b}{c} ext. 12", "8 (495) {a}-{b}-{c}, 8 (916) {a}-{b}-{c}", "нет", "{a}-{b}-{c}"]


def _phone(rnd: random.Random) -> str:
    return rnd.choice(PHONES).format(a=rnd.randint(100, 999), b=rnd.randint(10, 99), c=rnd.randint(10, 99))


def _legacy(text: str, rnd: random.Random) -> bytes:
    return text.encode("cp1251" if rnd.random() < 0.7 else "utf-8")


def _mojibake(text: str, rnd: random.Random) -> str:
    r = rnd.random()
    if r < 0.03:
        return text.encode("cp1251").decode("latin-1")
    if r < 0.06:
        return text.encode("utf-8").decode("sloppy-windows-1251")
    return text


def shop_a_rows(seed: int = 1) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    base = datetime(2024, 1, 1)
    rows: list[dict[str, Any]] = []
    for i in range(1, N_COMPANIES_A + 1):
        name = f'ООО "{rnd.choice(WORDS)} {i}"'
        rows.append({
            "_table": "b2b_company", "id": i, "name": _legacy(name, rnd), "legal_form": _legacy("ООО", rnd),
            "inn": rnd.choice([b"7707083893", b"7707 083 893", b"500100732259", None]),
            "kpp": b"770701001", "ogrn": b"1027700132195", "phone": _phone(rnd).encode("cp1251"),
            "email": rnd.choice([b"Info@Romashka.ru", b"sales@x.ru; buh@x.ru", b"", None]),
            "legal_address": _legacy(f"г. Москва, ул. Тверская, д. {i}", rnd),
            "bank_name": _legacy("ПАО СБЕРБАНК", rnd), "bik": b"044525225", "account": b"40702810938000012345",
            "corr_account": b"30101810400000000225", "is_active": 1 if rnd.random() < 0.9 else 0,
            "created_at": base, "updated_at": base + timedelta(minutes=i),
        })
    for i in range(1, N_CONTACTS_A + 1):
        last, first, middle = rnd.choice(LAST), rnd.choice(FIRST), rnd.choice(MIDDLE)
        full = rnd.choice([f"{last} {first} {middle}", f"{first} {last}",
                           f"{last.upper()} {first[0]}.{middle[0]}."])
        rows.append({
            "_table": "b2b_contact", "id": i, "company_id": rnd.randint(1, N_COMPANIES_A),
            "full_name": _legacy(full, rnd), "position": _legacy("Менеджер", rnd),
            "phone": _phone(rnd).encode(), "mobile": rnd.choice([b"89161234567", b"", None]),
            "email": f"{first.lower()}{i}@example.ru".encode(), "is_deleted": 1 if rnd.random() < 0.05 else 0,
            "created_at": base, "updated_at": base + timedelta(minutes=i),
        })
    return rows


def shop_b_items(seed: int = 2) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    items = []
    for i in range(N_PARTNERS_B):
        contacts = []
        for j in range(rnd.choice([3, 4, 5, 5, 6, 6])):
            contacts.append({
                "PARTNER": f"{2000000 + i * 10 + j:010d}", "NAME_LAST": _mojibake(rnd.choice(LAST), rnd),
                "NAME_FIRST": rnd.choice(FIRST), "NAME_MIDDLE": rnd.choice(MIDDLE + [""]),
                "FUNCTION": "Менеджер по закупкам", "XDELE": "X" if rnd.random() < 0.03 else "",
                "COMM": {"PHONE": [{"TEL_NUMBER": _phone(rnd), "TEL_EXTENS": rnd.choice(["", "201"])}],
                         "MOBILE": [{"TEL_NUMBER": "8916" + str(rnd.randint(1000000, 9999999))}],
                         "EMAIL": [{"SMTP_ADDR": f"User{i}.{j}@Example.RU"}]},
            })
        items.append({
            "PARTNER": f"{1000000 + i:010d}", "BU_TYPE": "2",
            "NAME_ORG1": _mojibake(f"{rnd.choice(WORDS)} {i}", rnd), "NAME_ORG2": "", "LEGAL_ENTY": "ООО",
            "TAXNUMS": [{"TAXTYPE": "RU1", "TAXNUM": "7707083893"}, {"TAXTYPE": "RU2", "TAXNUM": "770701001"},
                        {"TAXTYPE": "RU3", "TAXNUM": "1027700132195"}],
            "STATUS": "E0002" if rnd.random() < 0.85 else "E0003", "XDELE": "",
            "ADDRESS": {"COUNTRY": "RU", "POST_CODE1": "101000", "CITY1": "Москва",
                        "STREET": "ул. Тверская", "HOUSE_NUM1": str(i)},
            "COMM": {"PHONE": [{"TEL_NUMBER": _phone(rnd), "TEL_EXTENS": "123"}],
                     "EMAIL": [{"SMTP_ADDR": "Info@Romashka.ru"}]},
            "BANKS": [{"BANKL": "044525225", "BANKN": "40702810938000012345", "BANKA": "ПАО СБЕРБАНК",
                       "KOINV": "30101810400000000225"}],
            "CONTACTS": contacts, "CHANGED_AT": "20240115103000",
        })
    return items


def _best(fn: Callable[[], Any]) -> float:
    """Best-of CPU seconds (process time: the figure is about our CPU cost, not the machine's load)."""
    times = []
    for _ in range(REPEAT):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def _drain(outputs: Iterable[Any]) -> int:
    return sum(1 for _ in outputs)


def _columns_of(row: dict[str, Any]) -> dict[str, Any]:
    return shop_a.COMPANY_COLUMNS if row["_table"] == shop_a.COMPANY_TABLE else shop_a.CONTACT_COLUMNS


def _table_step_petl(rows: list[dict[str, Any]]) -> int:
    """Shop A's table step as shipped: a petl fromdicts -> convert view per table, as tuples."""
    n = 0
    for table in (shop_a.COMPANY_TABLE, shop_a.CONTACT_TABLE):
        part = [r for r in rows if r["_table"] == table]
        n += sum(1 for _ in shop_a.table_step(iter(part), _columns_of(part[0]))) - 1
    return n


def _table_step_plain(rows: list[dict[str, Any]]) -> int:
    """The same column mapping in a plain loop (exceptions kept inline too), for comparison."""
    n = 0
    for table in (shop_a.COMPANY_TABLE, shop_a.CONTACT_TABLE):
        part = [r for r in rows if r["_table"] == table]
        columns = list(_columns_of(part[0]).items())
        for row in part:
            values = []
            for column, convert in columns:
                try:
                    values.append(convert(row.get(column)))
                except Exception as e:  # noqa: BLE001 - mirrors failonerror="inline"
                    values.append(e)
            tuple(values)
            n += 1
    return n


def generated_records(scale: float = 0.02) -> tuple[list[dict[str, Any]], list[Any]]:
    """Shop A rows (through SQL_FULL on the generator's SQLite file) and shop B export items."""
    from etl.sandbox.generator import generate
    from extractors.sql import open_sql_source

    with tempfile.TemporaryDirectory() as tmp:
        manifest = generate(tmp, seed=7, scale=scale)
        since = datetime.fromisoformat(manifest.since)
        with open_sql_source(f"sqlite:///{tmp}/shop_a.sqlite") as source:
            rows = [row for table, sql in shop_a.SQL_FULL
                    for row in source.iter_rows(sql, {"since": since}, table=table)]
        items = [item for path in sorted(Path(tmp, "shop_b").glob("export_*.json"))
                 for item in json.loads(path.read_text(encoding="utf-8-sig"))]
    return rows, items


def _per(seconds: float, n: int) -> float:
    return seconds / n * 1e6


def _transforms(report: Callable[..., None], label: str, rows: list[dict[str, Any]], items: list[Any]) -> None:
    t = _best(lambda: _drain(ShopATransformer().transform(rows)))
    report(f"{label}: shop A transform, per row", _per(t, len(rows)), "µs", "<= 20-40 µs")
    n_records = len(items) + sum(len(i.get("CONTACTS") or ()) for i in items)
    t = _best(lambda: _drain(ShopBTransformer().transform(items)))
    report(f"{label}: shop B transform, per record", _per(t, n_records), "µs", "<= 20-40 µs")
    blob = json.dumps(items, ensure_ascii=False).encode()
    t_parse = _best(lambda: _drain(ijson.items(io.BytesIO(blob), "item")))
    report(f"{label}: shop B transform / ijson parse of the items", t / t_parse, "x", "<= ~5x")


def main(report: Callable[..., None]) -> None:
    _transforms(report, "generated", *generated_records())
    rows, items = shop_a_rows(), shop_b_items()
    _transforms(report, "worst-case mix", rows, items)

    t_plain = _best(lambda: _table_step_plain(rows))
    t_petl = _best(lambda: _table_step_petl(rows))
    report("shop A table step (column mapping), plain loop", _per(t_plain, len(rows)), "µs/row")
    report("shop A table step (column mapping), petl view", _per(t_petl, len(rows)), "µs/row")

    texts = [r["name"] for r in rows if r["_table"] == "b2b_company"]
    clean = [decode_legacy(b) for b in texts]
    latin = [s.encode("cp1251").decode("latin-1") for s in clean]
    cp1251 = [s.encode("utf-8").decode("sloppy-windows-1251") for s in clean]
    for name, values, goal in (("bytes (cp1251/UTF-8)", texts, ""), ("clean str", clean, "~1 µs"),
                               ("ÎÎÎ mojibake", latin, ""), ("РћРћРћ mojibake", cp1251, "")):
        t = _best(lambda: [decode_legacy(v) for v in values])
        report(f"decode_legacy on {name}, per value", _per(t, len(values)), "µs", goal)
    rnd = random.Random(3)
    phones = [_phone(rnd) for _ in range(5000)]
    report("clean_phones, per cell (legacy formats mix)", _per(_best(lambda: [clean_phones(p) for p in phones]),
                                                              len(phones)), "µs")
    emails = ["Info@Romashka.ru", "a@b.ru, c@d.ru", "нет", "Иван <ivan@x.ru>"] * 1000
    report("clean_emails, per cell", _per(_best(lambda: [clean_emails(e) for e in emails]), len(emails)), "µs")
    names = ["Иванов Иван Иванович", "Иван Иванов", "ИВАНОВ И.И."] * 1000
    report("split_full_name, per name", _per(_best(lambda: [split_full_name(s) for s in names]), len(names)), "µs")
