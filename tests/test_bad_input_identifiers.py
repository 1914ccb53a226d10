"""Identifiers typed by people: what is normalised, what is rejected (RULES.md, registry reference §1).

Decisions:
- INN: spaces (NBSP too), dashes (Unicode ones too), dots, slashes and underscores are separators a
  person types and are removed (`7707 083 893` is 7707083893); anything else left (a letter, a
  comma, a label such as "ИНН", full-width digits, a second number) is `inn_format`, and so are
  wrong lengths and INNs of one repeated digit; a wrong control digit is `inn_checksum`.
- KPP and OGRN are the registry's when it has them; a source value that fails its offline check
  (KPP: 4 digits, 2 digits or capital letters, 3 digits; OGRN/OGRNIP: length, kind, control digit)
  is never written to the CRM. It does not reject the company: EGRUL has verified it by INN.
- A phone that is words, and an e-mail without a domain, are dropped (cleaning rules); a contact
  left with nothing to identify it is `contact_empty`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from etl.cli import main
from tests.bad_input_support import ACTIVE, Stage, partner, write_export

INN = ACTIVE[1]


@pytest.mark.parametrize("typed, outcome", [
    (f"{INN[:4]} {INN[4:7]} {INN[7:]}", INN),
    (f"{INN[:4]}\u00a0{INN[4:]}", INN),
    (f"{INN[:4]}\u2013{INN[4:7]}-{INN[7:]}", INN),
    (f" {INN[:2]}.{INN[2:]}/ ", INN),
    (f"\t{INN[:5]}_{INN[5:]}\n", INN),
    (f"ИНН {INN}", "inn_format"),
    (f"{INN[:4]},{INN[4:]}", "inn_format"),
    (f"{INN}/770701001", "inn_format"),                # INN/KPP in one cell
    (f"+{INN}", "inn_format"),
    ("7.707083893e9", "inn_format"),
    (INN[:9], "inn_format"),
    (INN + "0", "inn_format"),
    (INN + "000", "inn_format"),
    ("1" * 10, "inn_format"),
    ("0" * 12, "inn_format"),
    ("7707O83893", "inn_format"),
    (INN[:9] + str((int(INN[9]) + 1) % 10), "inn_checksum"),
])
def test_check_inn_normalises_separators_and_rejects_the_rest(typed: str, outcome: str) -> None:
    r = CliRunner().invoke(main, ["check-inn", typed])
    _, verdict, value = r.output.rstrip("\n").rsplit("\t", 2)  # the input is echoed first, as typed
    if outcome == INN:
        assert (r.exit_code, verdict, value) == (0, "valid", INN), r.output
    else:
        assert (r.exit_code, verdict) == (1, outcome), r.output


def taxnums(inn: str, kpp: str | None = None, ogrn: str | None = None) -> list[dict[str, str]]:
    nums = [{"TAXTYPE": "RU1", "TAXNUM": inn}]
    nums += [{"TAXTYPE": "RU2", "TAXNUM": kpp}] if kpp is not None else []
    return nums + ([{"TAXTYPE": "RU3", "TAXNUM": ogrn}] if ogrn is not None else [])


def comm(phones: list[str], emails: list[str]) -> dict[str, Any]:
    return {"PHONE": [{"TEL_NUMBER": p} for p in phones], "EMAIL": [{"SMTP_ADDR": e} for e in emails]}


WORD_PHONES = ["нет", "звонить секретарю", "+7 (495) АБВ-ГД-ЕЁ", "-", "доб. 123"]
NO_DOMAIN = ["ivan@", "ivan@localhost", "ivan", "@mail.ru", "ivan@mail", "ivan@@mail.ru", "ivan @ mail.ru"]


def test_identifiers_through_a_load(tmp_path: Path) -> None:
    # the registry has no KPP/OGRN for two companies: the source's own values are all there is
    stage = Stage(tmp_path, registry_fields={ACTIVE[2]: {"kpp": None, "ogrn": None},
                                             ACTIVE[3]: {"kpp": None, "ogrn": None}})
    try:
        items = [
            partner(1, TAXNUMS=taxnums(f" {ACTIVE[1][:4]} {ACTIVE[1][4:7]}-{ACTIVE[1][7:]} ")),
            partner(2, TAXNUMS=taxnums(ACTIVE[2], kpp="77O7-O1-OO1", ogrn="12345")),
            partner(3, TAXNUMS=taxnums(ACTIVE[3], kpp=" 7707 01 001", ogrn="1027700132195")),
            partner(4, TAXNUMS=taxnums(f"ИНН {ACTIVE[4]}")),
            partner(5, TAXNUMS=taxnums("5555555555")),
            partner(6, TAXNUMS=taxnums(ACTIVE[6][:-1])),
            partner(7, COMM=comm(WORD_PHONES + ["8 (495) 123-45-67 доб. 9"], NO_DOMAIN + [" Info@Example.RU "]),
                    CONTACTS=[{"PARTNER": "0000070001", "COMM": comm(WORD_PHONES, NO_DOMAIN)},
                              {"PARTNER": "0000070002", "NAME_LAST": "Кузнецова",
                               "COMM": comm(WORD_PHONES, NO_DOMAIN)}]),
        ]
        r = stage.full_b(write_export(tmp_path / "export.json", items))
        assert r.exit_code == 0, r.output
        rejects = {key: row["reason"] for key, row in stage.rejects().items() if key[0] == "company"}
        assert rejects == {("company", "0000000004"): "inn_format", ("company", "0000000005"): "inn_format",
                           ("company", "0000000006"): "inn_format"}
        assert stage.rejects()[("contact", "0000070001")]["reason"] == "contact_empty"
        companies, contacts = stage.crm()
        assert set(companies) == {ACTIVE[1], ACTIVE[2], ACTIVE[3], ACTIVE[7]}
        requisite = {inn: companies[inn]["REQUISITE"] for inn in companies}
        assert requisite[ACTIVE[1]]["RQ_INN"] == ACTIVE[1]                  # stored without separators
        assert not requisite[ACTIVE[2]].get("RQ_KPP") and not requisite[ACTIVE[2]].get("RQ_OGRN")
        assert (requisite[ACTIVE[3]]["RQ_KPP"], requisite[ACTIVE[3]]["RQ_OGRN"]) == ("770701001", "1027700132195")
        assert requisite[ACTIVE[1]]["RQ_KPP"] == "773601001"               # the registry's
        seventh = companies[ACTIVE[7]]
        assert [p["VALUE"] for p in seventh["PHONE"]] == ["+74951234567"]
        assert [e["VALUE"] for e in seventh["EMAIL"]] == ["info@example.ru"]
        (kuznetsova,) = [c for c in contacts if c.get("LAST_NAME") == "Кузнецова"]
        assert "PHONE" not in kuznetsova and "EMAIL" not in kuznetsova
    finally:
        stage.stop()
