"""Bad shop A rows in the real MariaDB (latin1 tables, the shop's DDL, the old site's lax sql_mode)
through `crm-etl full shop-a`, the emulators and the CRM's HTTP API.

Decisions:
- NULL in any nullable column means blank; a company without INN is `no_inn`, a contact with
  nothing to identify a person by is `contact_empty`.
- A zero date (0000-00-00) is "unknown": a company with a zero `updated_at` is in a full load's
  scope (it used to be left out silently as older than any --since) and loads with no change time.
- Text is cp1251 or UTF-8 bytes in latin1 columns, or mojibake stored as UTF-8: all repaired. UTF-8
  cut by a VARCHAR(255) in the middle of a character loses that character, not its encoding.
- Column limits: the largest INT UNSIGNED ids work; a value longer than a person types (a 64 KB
  TEXT address) is a `bad_record` naming the column; a 32-character INN cell is `inn_format`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_input_support import ACTIVE, Stage
from tests.test_extract_sql import company, contact, mysql_shop_db

pytestmark = [pytest.mark.mysql]

MAX_ID = 2 ** 32 - 1                       # INT UNSIGNED
NULLS = dict.fromkeys(("legal_form", "kpp", "ogrn", "phone", "email", "legal_address", "bank_name",
                       "bik", "account", "corr_account"))
ZERO = "0000-00-00 00:00:00"
POSITION = "Менеджер по закупкам и логистике " * 10        # 660 bytes of UTF-8 for a VARCHAR(255)
MOJIBAKE = "Петров Пётр Петрович".encode("utf-8").decode("cp1252", "replace").encode("utf-8")


def test_nulls_zero_dates_legacy_encodings_and_column_limits(tmp_path: Path, mysql_db: str) -> None:
    shop_db = mysql_shop_db(mysql_db)
    shop = next(shop_db)
    shop.insert("b2b_company", [
        company(1, b"", inn=None, **NULLS),                                       # no_inn
        company(2, b"", inn=ACTIVE[1].encode(), **NULLS),                         # loads, blank fields
        company(4, 'ООО "Ромашка"'.encode("cp1251"), inn=ACTIVE[3].encode(),
                legal_address="г. Москва, ул. Тверская, д. 1".encode("cp1251")),
        company(MAX_ID, "ЗАО «Лютик»".encode("utf-8"), inn=ACTIVE[4].encode()),
        company(6, b"x", inn=b"7707083893, 7707083893, 7707083893!"),   # cut at VARCHAR(32)
        company(7, b"x", inn=ACTIVE[5].encode(), legal_address=b"A" * 65535),   # TEXT at its limit
    ])
    # zero dates: written as the old site did, in a lax sql_mode (the helper cannot pass them)
    shop.execute("INSERT INTO b2b_company (id, name, inn, is_active, created_at, updated_at) "
                 "VALUES (3, 'x', %s, 1, %s, %s)", (ACTIVE[2].encode(), ZERO, ZERO))
    shop.insert("b2b_contact", [
        contact(1, 2, None),                                                       # contact_empty
        contact(2, 4, "Иванов Иван Иванович".encode("cp1251"), position="Директор".encode("cp1251"),
                email=b"ivanov@romashka.ru"),
        contact(3, 4, MOJIBAKE, email=b"petrov@romashka.ru"),
        contact(MAX_ID, MAX_ID, "Сидорова Анна".encode("utf-8"), position=POSITION.encode("utf-8"),
                email=b"sidorova@lutik.ru"),
        contact(5, 999, b"x", email=b"x@example.ru"),                              # company_missing
    ])
    shop.execute("INSERT INTO b2b_contact (id, company_id, full_name, email, created_at, updated_at) "
                 "VALUES (6, 3, 'Smith John', 'smith@example.ru', %s, %s)", (ZERO, ZERO))
    stage = Stage(tmp_path, shop_a_dsn=mysql_db)
    try:
        r = stage.full_a(since="2000-01-01")  # a zero date is older than any --since
        assert r.exit_code == 0, r.output
        rejects = {key: (row["reason"], row["detail"]) for key, row in stage.rejects().items()}
        assert rejects.pop(("contact", "1"))[0] == "contact_empty"
        assert rejects == {
            ("company", "1"): ("no_inn", "inn is empty"),
            ("company", "6"): ("inn_format", "INN '7707083893,7707083893,77070838'"),
            ("company", "7"): ("bad_record", "legal_address: 65535 characters long (at most 8192 expected)"),
            ("contact", "5"): ("company_missing", "company_id 999 is not among the extracted companies"),
        }
        companies, contacts = stage.crm()
        assert set(companies) == {ACTIVE[1], ACTIVE[2], ACTIVE[3], ACTIVE[4]}   # 3: the zero date
        assert "PHONE" not in companies[ACTIVE[1]] and "EMAIL" not in companies[ACTIVE[1]]
        by_email = {c["EMAIL"][0]["VALUE"]: c for c in contacts}
        names = {e: (c.get("LAST_NAME"), c.get("NAME"), c.get("SECOND_NAME"), c.get("POST"))
                 for e, c in by_email.items()}
        cut = POSITION.encode("utf-8")[:255].decode("utf-8", "ignore").strip()   # 127 letters and spaces
        assert names == {
            "ivanov@romashka.ru": ("Иванов", "Иван", "Иванович", "Директор"),
            "petrov@romashka.ru": ("Петров", "Пётр", "Петрович", None),
            "sidorova@lutik.ru": ("Сидорова", "Анна", None, " ".join(cut.split())),
            "smith@example.ru": ("Smith", "John", None, None),
        }
        company_of = {c["EMAIL"][0]["VALUE"]: c["COMPANY_ID"] for c in contacts}
        assert company_of["sidorova@lutik.ru"] == companies[ACTIVE[4]]["ID"]   # linked by the max id
        assert company_of["smith@example.ru"] == companies[ACTIVE[2]]["ID"]
    finally:
        stage.stop()
        shop_db.close()
