"""Shop A transformer: rows of b2b_company / b2b_contact (text as stored bytes) -> DTOs / Rejects,
and its declared SQL run against a real MariaDB with shop A's DDL."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from etl import rejects
from etl.dto import BankAccount, Company, Contact, Phone, Reject
from transformers import shop_a
from transformers.shop_a import ShopATransformer

DDL = Path("/work/shared/sources/shop_a.sql")
T0 = datetime(2024, 1, 15, 13, 30)  # Moscow wall time = 10:30 UTC


def company(id: int = 1, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "_table": "b2b_company", "id": id, "name": 'ООО "Ромашка"'.encode("cp1251"),
        "legal_form": "ООО".encode(), "inn": b"7707083893", "kpp": b"770701001", "ogrn": b"1027700132195",
        "phone": b"8 (495) 123-45-67", "email": b"Info@Romashka.ru", "legal_address": None,
        "bank_name": None, "bik": None, "account": None, "corr_account": None, "is_active": 1,
        "created_at": datetime(2020, 1, 1), "updated_at": T0,
    }
    row.update(over)
    return row


def contact(id: int = 100, company_id: int = 1, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "_table": "b2b_contact", "id": id, "company_id": company_id,
        "full_name": "Петров Иван Сергеевич".encode("cp1251"), "position": None, "phone": None,
        "mobile": None, "email": b"i.petrov@romashka.ru", "is_deleted": 0,
        "created_at": datetime(2020, 1, 1), "updated_at": T0,
    }
    row.update(over)
    return row


def run(*rows: Any) -> list[Company | Contact | Reject]:
    out = list(ShopATransformer("shop-a").transform(rows))
    assert len(out) == len(rows)  # exactly one output per row: nothing dropped, nothing doubled
    return out


def test_company_fields_are_mapped_and_cleaned() -> None:
    row = company(
        name=b'  \xce\xce\xce  "\xd0\xee\xec\xe0\xf8\xea\xe0"\x00 ',           # cp1251, spaces, NUL
        legal_address="г. Москва,\n ул. Тверская,\u00a0д. 1".encode(),     # UTF-8
        inn=b"7707-083 893", kpp=b" 770701001 ", phone=b"8 (495) 123-45-67 \xe4\xee\xe1. 12, 89161234567",
        email=b"Info@Romashka.ru; wrong@; SALES@romashka.ru", bank_name="ПАО СБЕРБАНК".encode("cp1251"),
        bik=b"044525225", account=b"40702810938000012345", corr_account=b"30101810400000000225",
    )
    [c] = run(row)
    assert c == Company(
        source="shop-a", source_id="1", inn="7707083893", name='ООО "Ромашка"', kpp="770701001",
        ogrn="1027700132195", legal_form="ООО", is_sole_proprietor=False,
        phones=(Phone("+74951234567", "12", "WORK"), Phone("+79161234567", "", "WORK")),
        emails=("info@romashka.ru", "sales@romashka.ru"), address="г. Москва, ул. Тверская, д. 1",
        bank_accounts=(BankAccount("044525225", "40702810938000012345", "30101810400000000225", "ПАО СБЕРБАНК"),),
        updated_at=datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
    )


def test_sole_proprietor_by_12_digit_inn() -> None:
    [c] = run(company(inn=b"500100732259"))
    assert isinstance(c, Company) and c.is_sole_proprietor and c.inn == "500100732259"


def test_bad_inn_shape_is_passed_on_for_the_validators() -> None:
    [c] = run(company(inn=b"77070838"))
    assert isinstance(c, Company) and c.inn == "77070838"


def test_moscow_time_to_utc_across_the_2011_2014_offsets() -> None:
    [summer_2010, winter_2012, no_date] = run(company(1, updated_at=datetime(2010, 7, 1, 12)),
                                              company(2, updated_at=datetime(2012, 1, 1, 12)),
                                              company(3, updated_at=None))
    assert summer_2010.updated_at == datetime(2010, 7, 1, 8, tzinfo=UTC)   # MSD, UTC+4
    assert winter_2012.updated_at == datetime(2012, 1, 1, 8, tzinfo=UTC)   # MSK, UTC+4 (2011-2014)
    assert no_date.updated_at is None


def test_mojibake_stored_as_utf8_is_repaired() -> None:
    stored = 'ООО "Ромашка"'.encode("cp1251").decode("latin-1").encode("utf-8")  # double-encoded
    [c] = run(company(name=stored))
    assert c.name == 'ООО "Ромашка"'


@pytest.mark.parametrize("over, reason", [
    ({"is_active": 0}, rejects.SOURCE_INACTIVE),
    ({"is_active": 0, "inn": None}, rejects.SOURCE_INACTIVE),   # status before INN
    ({"inn": None}, rejects.NO_INN),
    ({"inn": b""}, rejects.NO_INN),
    ({"inn": b" \t\xa0 "}, rejects.NO_INN),
    ({"inn": b"\x00"}, rejects.NO_INN),
    ({"inn": b"-"}, rejects.INN_FORMAT),                         # not blank: only separators
    ({"id": None}, rejects.BAD_RECORD),
    ({"id": "abc"}, rejects.BAD_RECORD),
    ({"is_active": "yes"}, rejects.BAD_RECORD),
    ({"is_active": None, "inn": None}, rejects.BAD_RECORD),      # bad_record comes first
    ({"name": ["a"]}, rejects.BAD_RECORD),
    ({"phone": {"n": 1}}, rejects.BAD_RECORD),
    ({"legal_address": b"x" * 100_000}, rejects.BAD_RECORD),
    ({"updated_at": "yesterday"}, rejects.BAD_RECORD),
])
def test_company_rejects(over: dict[str, Any], reason: str) -> None:
    [r] = run(company(**over))
    assert isinstance(r, Reject)
    assert (r.kind, r.reason) == ("company", reason)


def test_bad_record_detail_names_the_field() -> None:
    [r] = run(company(legal_address=b"x" * 100_000))
    assert r.detail.startswith("legal_address:")
    [r] = run(company(is_active="yes"))
    assert r.detail.startswith("is_active:")


def test_rows_that_are_not_rows() -> None:
    out = run("junk", None, 42, {"id": 5}, {"_table": "b2b_order", "id": 7})
    assert all(isinstance(r, Reject) and r.reason == rejects.BAD_RECORD for r in out)
    assert [r.source_id for r in out] == ["#0", "#1", "#2", "5", "7"]
    assert "_table" in out[3].detail


def test_contact_is_linked_to_its_company_inn() -> None:
    out = run(company(1, inn=b"7707 083 893"),
              contact(100, 1, full_name="ИВАНОВ И.И.".encode("cp1251"), position="Бухгалтер".encode(),
                      phone=b"8 (495) 123-45-67", mobile=b"8 916 123 45 67, 8 (495) 123-45-67",
                      email=b"  I.Ivanov@Romashka.RU ", updated_at=datetime(2024, 3, 1, 3, 0)))
    assert out[1] == Contact(
        source="shop-a", source_id="100", company_source_id="1", company_inn="7707083893",
        last_name="Иванов", first_name="И.", middle_name="И.", position="Бухгалтер",
        phones=(Phone("+74951234567", "", "WORK"), Phone("+79161234567", "", "MOBILE")),
        emails=("i.ivanov@romashka.ru",), updated_at=datetime(2024, 3, 1, 0, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize("full_name, parts", [
    ("Иванов Иван Иванович", ("Иванов", "Иван", "Иванович")),
    ("Иван Иванов", ("Иванов", "Иван", "")),
    ("ИВАНОВ И.И.", ("Иванов", "И.", "И.")),
])
def test_contact_name_forms(full_name: str, parts: tuple[str, str, str]) -> None:
    _, c = run(company(), contact(full_name=full_name.encode("utf-8")))
    assert (c.last_name, c.first_name, c.middle_name) == parts


def test_contact_rejects_in_rule_order() -> None:
    out = run(
        company(1),
        company(2, is_active=0),
        company(3, inn=None),
        company(4, name=[1]),
        contact(100, 1, is_deleted=1),
        contact(101, 2, is_deleted=1),                                        # deleted before company
        contact(102, 999),                                                    # no such company
        contact(103, 2),
        contact(104, 3),
        contact(105, 4),
        contact(106, 1, full_name=None, phone=b"123-45-67", mobile=b"", email=b"not-an-email"),
        contact(107, 2, full_name=None, email=None),                          # company first
        contact(108, "x"),
        contact(109, 1, email=["a@b.ru"]),
        contact(110, 1, full_name=None, email=None, phone=b"+7 495 123 45 67"),  # a phone is enough
    )
    got = {r.source_id: (r.reason, r.detail) for r in out[4:] if isinstance(r, Reject)}
    assert got == {
        "100": (rejects.SOURCE_DELETED, "is_deleted = 1"),
        "101": (rejects.SOURCE_DELETED, "is_deleted = 1"),
        "102": (rejects.COMPANY_MISSING, "company_id 999 is not among the extracted companies"),
        "103": (rejects.COMPANY_REJECTED, rejects.SOURCE_INACTIVE),
        "104": (rejects.COMPANY_REJECTED, rejects.NO_INN),
        "105": (rejects.COMPANY_REJECTED, rejects.BAD_RECORD),
        "107": (rejects.COMPANY_REJECTED, rejects.SOURCE_INACTIVE),
        "108": (rejects.BAD_RECORD, "company_id: expected an integer, got a string 'x'"),
        "109": (rejects.BAD_RECORD, "email: expected text, got a list"),
    }
    assert isinstance(out[-1], Contact) and out[-1].phones[0].e164 == "+74951234567"
    # an empty contact is handed on: the pipeline rejects it contact_empty once its company loads
    empty = next(o for o in out if o.source_id == "106")
    assert isinstance(empty, Contact) and not (empty.full_name or empty.phones or empty.emails)
    assert all(r.kind == "contact" for r in out[4:] if isinstance(r, Reject))


WEIRD = [None, 0, -1, 1.5, True, [], {}, ["x"], {"a": 1}, b"\x00" * 10, b"\xff\xfe\xfa", "x" * 50_000,
         b"y" * 50_000, "\ud800", object(), datetime(2024, 1, 1), "Ðî\x00ìàøêà"]


@pytest.mark.parametrize("value", WEIRD, ids=lambda v: type(v).__name__)
def test_weird_values_in_any_column_never_raise(value: Any) -> None:
    rows = []
    for key in company():
        if key != "_table":
            rows.append(company(len(rows) + 1) | {key: value})
    for key in contact():
        if key != "_table":
            rows.append(contact(1000 + len(rows), 1) | {key: value})
    out = run(*rows)
    for r in out:
        assert isinstance(r, (Company, Contact, Reject))
        if isinstance(r, Reject):
            assert r.reason in {rejects.BAD_RECORD, rejects.SOURCE_INACTIVE, rejects.NO_INN, rejects.INN_FORMAT,
                                rejects.SOURCE_DELETED, rejects.COMPANY_MISSING, rejects.COMPANY_REJECTED,
                                rejects.CONTACT_EMPTY}
            assert r.detail


def test_rejects_carry_their_own_raw_row() -> None:
    rows = [company(1, is_active=0), "junk", contact(5, 1), company(2, inn=None), contact(6, 9), company(3)]
    out = run(*rows)
    assert [o.raw is row for o, row in zip(out, rows) if isinstance(o, Reject)] == [True] * 5


def test_contacts_remembered_across_calls_on_one_instance() -> None:
    t = ShopATransformer("shop-a")
    list(t.transform([company(7)]))
    [c] = list(t.transform([contact(1, 7)]))
    assert isinstance(c, Contact) and c.company_inn == "7707083893"


# --- the declared SQL, on a real MariaDB with shop A's DDL --------------------------------------

def _connect(dsn: str):
    import pymysql
    from urllib.parse import urlsplit

    u = urlsplit(dsn)
    return pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", database=u.path.lstrip("/"), charset="latin1",
                           use_unicode=False, autocommit=True, cursorclass=pymysql.cursors.DictCursor)


def _load_fixture(cur) -> None:
    for statement in DDL.read_text().split(";"):
        if "CREATE TABLE" in statement:
            cur.execute(statement)
    companies = [  # id, inn, is_active, updated_at
        (1, "7707083893", 1, "2024-02-01 10:00:00"),
        (2, "7707083893", 1, "2022-12-31 23:59:59"),   # out of scope
        (3, None, 1, "2024-03-01 10:00:00"),
        (4, "500100732259", 0, "2024-03-01 10:00:00"),
    ]
    for cid, inn, active, ts in companies:
        cur.execute("INSERT INTO b2b_company (id, name, inn, is_active, created_at, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s)", (cid, "ООО Тест".encode("cp1251"), inn, active, ts, ts))
    contacts = [  # id, company_id, is_deleted, updated_at
        (10, 1, 0, "2020-01-01 00:00:00"),   # old contact of an in-scope company: extracted
        (11, 2, 0, "2024-05-01 00:00:00"),   # contact of an out-of-scope company: not extracted
        (12, 3, 0, "2024-01-01 00:00:00"),
        (13, 4, 1, "2024-01-01 00:00:00"),
        (14, 77, 0, "2024-01-01 00:00:00"),  # no such company: extracted, becomes company_missing
    ]
    for kid, cid, deleted, ts in contacts:
        cur.execute("INSERT INTO b2b_contact (id, company_id, full_name, is_deleted, created_at, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (kid, cid, "Иванов Иван Иванович".encode(), deleted, ts, ts))


def _extract(cur, queries: list[tuple[str, str]], params: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for table, sql in queries:
        cur.execute(sql, params)
        for row in cur.fetchall():
            row = {(k.decode() if isinstance(k, bytes) else k): v for k, v in row.items()}
            rows.append(row | {"_table": table})
    return rows


@pytest.mark.mysql
def test_full_sql_scope_and_transform(mysql_db: str) -> None:
    conn = _connect(mysql_db)
    with conn.cursor() as cur:
        _load_fixture(cur)
        rows = _extract(cur, shop_a.SQL_FULL, {"since": datetime(2023, 1, 1)})
    conn.close()
    assert [(r["_table"], r["id"]) for r in rows] == [
        ("b2b_company", 1), ("b2b_company", 3), ("b2b_company", 4),
        ("b2b_contact", 10), ("b2b_contact", 12), ("b2b_contact", 13), ("b2b_contact", 14),
    ]
    assert isinstance(rows[0]["name"], bytes)
    out = {(type(o).__name__, o.source_id): o for o in ShopATransformer("shop-a").transform(rows)}
    assert out[("Company", "1")].name == "ООО Тест"
    assert out[("Reject", "3")].reason == rejects.NO_INN
    assert out[("Reject", "4")].reason == rejects.SOURCE_INACTIVE
    assert out[("Contact", "10")].company_inn == "7707083893"
    assert out[("Reject", "12")].reason == rejects.COMPANY_REJECTED
    assert out[("Reject", "13")].reason == rejects.SOURCE_DELETED
    assert out[("Reject", "14")].reason == rejects.COMPANY_MISSING


@pytest.mark.mysql
def test_delta_sql_picks_changes_past_the_cursor(mysql_db: str) -> None:
    conn = _connect(mysql_db)
    with conn.cursor() as cur:
        _load_fixture(cur)
        # cursor = company 3 at 2024-03-01 10:00:00: company 4 (same second, higher id) is past it
        cur.execute("UPDATE b2b_contact SET updated_at = '2024-06-01 00:00:00' WHERE id = 10")
        rows = _extract(cur, shop_a.SQL_DELTA, {"ts": datetime(2024, 3, 1, 10), "id": 3})
    conn.close()
    companies = [r["id"] for r in rows if r["_table"] == "b2b_company"]
    contacts = [r["id"] for r in rows if r["_table"] == "b2b_contact"]
    # 4: past the cursor (same second as the cursor, higher id); 1 and 2: a contact changed since ts
    # (3 sits exactly at the cursor: already loaded); in id order, the key a lost connection resumes on
    assert companies == [1, 2, 4]
    assert contacts == [10, 11, 13]  # 10, 11: changed since ts; 13: its company changed
