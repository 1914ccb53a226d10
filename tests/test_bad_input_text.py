"""Text that could hurt a downstream system reaches the CRM as harmless text.

Decisions (checked over the portal's HTTP API, i.e. what Bitrix24 stored):
- SQL and HTML are text: stored exactly as written. We never HTML-escape (Bitrix24 escapes on
  output; escaping here would show `&lt;b&gt;` to the managers), and every query of ours is
  parameterised, which the shop A test below shows through MariaDB, both state store backends
  and the CRM.
- Control characters are dropped, line breaks and tabs become one space, bidi overrides and
  zero-width characters are dropped (a name shown reversed is a spoofing trick), emoji are kept.
- `$result[...]`, `$next[...]` and the other batch references would be replaced by the portal with
  another command's result (a batch decodes its parameters and then resolves them): their `$`
  is stored as the full-width `＄`.
Applies to the shops' text and to the registry's (EGRUL names become the card's title).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.bad_input_support import ACTIVE, Stage, partner, write_export
from tests.test_extract_sql import company, contact, mysql_connect, mysql_shop_db

SQL = "x'); DROP TABLE t; --"
SQL_A = "Robert'); DROP TABLE b2b_contact; --"

# text in the source -> what the CRM must hold (None: the same text)
TEXTS: list[tuple[str, str | None]] = [
    (SQL, None),
    ("' OR '1'='1", None),
    ('Robert"; DELETE FROM identities WHERE 1=1; --', None),
    ("<script>alert('x')</script><b>жирный</b> &amp; <img src=x onerror=alert(1)>", None),
    ("a=1&fields[COMPANY_ID]=999#frag+plus %20 %00", None),   # what a query string would misread
    ("Менеджер\nпо закупкам\r\n\tи продажам", "Менеджер по закупкам и продажам"),
    ("Дир\x00ектор\x07\x1b[31m", "Директор[31m"),
    ("🎉 Директор 👍🏽 ЖКХ", None),
    ("Дире\u200bктор \u202eроткерид\u202c", "Директор роткерид"),
    ("$result[c0]", "＄result[c0]"),
    ("Цена $result[c0][ID] руб, $next[x] и $ 5", "Цена ＄result[c0][ID] руб, ＄next[x] и $ 5"),
]


def person(pid: int, position: str, **over: Any) -> dict[str, Any]:
    return {"PARTNER": f"{pid:010d}", "NAME_LAST": "Петров", "NAME_FIRST": "Иван", "FUNCTION": position,
            "COMM": {"EMAIL": [{"SMTP_ADDR": f"p{pid}@example.ru"}]}, **over}


def test_harmful_text_is_stored_as_harmless_text(tmp_path: Path) -> None:
    titles = {ACTIVE[2]: SQL, ACTIVE[3]: "<b>ACME</b>\n$result[c1]\u202e"}
    stage = Stage(tmp_path, registry_names=titles)
    try:
        contacts = [person(100 + i, text) for i, (text, _) in enumerate(TEXTS)]
        contacts.append(person(200, "Инженер", NAME_LAST="О'Брайен-$total[x]", NAME_FIRST="Д'Артаньян\n"))
        items = [partner(1, CONTACTS=contacts), partner(2, CONTACTS=[]), partner(3, CONTACTS=[])]
        r = stage.full_b(write_export(tmp_path / "export.json", items))
        assert r.exit_code == 0, r.output
        companies, stored = stage.crm()
        by_email = {c["EMAIL"][0]["VALUE"]: c for c in stored}
        for i, (text, expected) in enumerate(TEXTS):
            assert by_email[f"p{100 + i}@example.ru"]["POST"] == (expected or text), text
        odd = by_email["p200@example.ru"]
        assert (odd["LAST_NAME"], odd["NAME"]) == ("О'Брайен-＄total[x]", "Д'Артаньян")
        assert companies[ACTIVE[2]]["TITLE"] == f"ПАО {SQL}"
        assert companies[ACTIVE[3]]["TITLE"] == "ПАО <b>ACME</b> ＄result[c1]"
        assert companies[ACTIVE[3]]["REQUISITE"]["RQ_COMPANY_FULL_NAME"].endswith('"<b>ACME</b> ＄result[c1]"')
        # a rerun: our stored hashes and keys read back equal, nothing is written again
        r = stage.full_b(tmp_path / "export.json")
        again = json.loads(stage.cli("report", "--format", "json").output)
        assert r.exit_code == 0 and again["crm"]["write_commands"] == 0, again
    finally:
        stage.stop()


@pytest.mark.mysql
@pytest.mark.parametrize("backend", ["sqlite", "mysql"])
def test_sql_in_shop_a_rows_survives_mariadb_both_state_stores_and_the_crm(
        tmp_path: Path, mysql_db: str, backend: str) -> None:
    """Quotes, semicolons and comments in every text column of shop A's MariaDB; the state store
    on SQLite and on MariaDB (the same database: a DROP TABLE that got through would show)."""
    shop_db = mysql_shop_db(mysql_db)
    shop = next(shop_db)
    shop.insert("b2b_company", [
        company(1, SQL.encode("cp1251"), inn=ACTIVE[1].encode(), legal_form=b"OOO'; --",
                bank_name=SQL.encode(), bik=b"044525225", account=b"40702810938000012345"),
        company(2, SQL_A.encode("utf-8"), inn=b"7707083894"),          # rejected: its raw row kept
    ])
    shop.insert("b2b_contact", [
        contact(1, 1, "Д'Артаньян Шарль Робертович".encode("cp1251"), position=SQL_A.encode("cp1251"),
                email=b"dart@example.ru"),
        contact(2, 1, SQL_A.encode("utf-8"), email=b"bobby@example.ru", phone="'; --".encode()),
    ])
    state = mysql_db if backend == "mysql" else None
    stage = Stage(tmp_path, state=state, shop_a_dsn=mysql_db)
    try:
        r = stage.full_a()
        assert r.exit_code == 0, r.output
        _, stored = stage.crm()
        by_email = {c["EMAIL"][0]["VALUE"]: c for c in stored}
        dart = by_email["dart@example.ru"]
        assert (dart["LAST_NAME"], dart["NAME"], dart["SECOND_NAME"], dart["POST"]) == (
            "Д'Артаньян", "Шарль", "Робертович", SQL_A)
        # a full name is split into its parts; what cannot be part of a name is dropped
        bobby = by_email["bobby@example.ru"]
        assert (bobby["LAST_NAME"], bobby["NAME"], bobby["SECOND_NAME"]) == ("Robert'", "Drop", "Table B2b_contact")
        assert "PHONE" not in bobby
        rejects = stage.rejects()
        assert rejects[("company", "2")]["reason"] == "inn_checksum"
        assert SQL_A in json.dumps(rejects[("company", "2")]["raw"], ensure_ascii=False)
        # the shop's tables and the state store's are all still there, with their rows
        conn = mysql_connect(mysql_db)
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT COUNT(*) FROM b2b_company), (SELECT COUNT(*) FROM b2b_contact)")
            assert cur.fetchone() == (2, 2)
        conn.close()
        r = stage.full_a()  # everything read back from the state store: nothing to write
        assert r.exit_code == 0 and json.loads(stage.cli("report", "--format", "json").output)[
            "crm"]["write_commands"] == 0
    finally:
        stage.stop()
        shop_db.close()
