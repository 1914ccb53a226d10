"""Person names: splitting shop A's free-text field, tidying, dedup keys and conflicts."""
from __future__ import annotations

import pytest

from etl.dto import Contact
from transformers.cleaning import (
    FullName,
    full_name_key,
    names_conflict,
    normalize_name,
    split_full_name,
    tidy_name,
    tidy_name_part,
)


@pytest.mark.parametrize("text, last, first, middle", [
    ("Иванов Иван Иванович", "Иванов", "Иван", "Иванович"),
    ("Иванова Мария Петровна", "Иванова", "Мария", "Петровна"),
    ("Иван Иванов", "Иванов", "Иван", ""),
    ("Иванов Иван", "Иванов", "Иван", ""),
    ("Мария Иванова", "Иванова", "Мария", ""),
    ("Иванова Мария", "Иванова", "Мария", ""),
    ("Пётр Фёдоров", "Фёдоров", "Пётр", ""),
    ("Александр Кузнецов", "Кузнецов", "Александр", ""),
    ("Марина Ким", "Ким", "Марина", ""),          # known first name decides
    ("Ким Марина", "Ким", "Марина", ""),
    ("Сергей Залевский", "Залевский", "Сергей", ""),
    ("Зульфия Абдуллаева", "Абдуллаева", "Зульфия", ""),  # unknown first name: surname ending decides
    ("Иван Иванович Иванов", "Иванов", "Иван", "Иванович"),
    ("Иван Иванович", "", "Иван", "Иванович"),
    ("ИВАНОВ И.И.", "Иванов", "И.", "И."),
    ("Иванов И. И.", "Иванов", "И.", "И."),
    ("И.И. Иванов", "Иванов", "И.", "И."),
    ("и. и. иванов", "Иванов", "И.", "И."),
    ("Иванов И.", "Иванов", "И.", ""),
    ("Иванов И И", "Иванов", "И.", "И."),
    ("Иванов Иван И.", "Иванов", "Иван", "И."),
    ("ИВАНОВ ИВАН ИВАНОВИЧ", "Иванов", "Иван", "Иванович"),
    ("иванов иван иванович", "Иванов", "Иван", "Иванович"),
    ("петрова-водкина анна", "Петрова-Водкина", "Анна", ""),
    ("  Иванов,   Иван  ", "Иванов", "Иван", ""),
    ("Мамедов Эльдар Гусейн оглы", "Мамедов", "Эльдар", "Гусейн оглы"),
    ("Иванов", "Иванов", "", ""),
    ("Иван", "", "Иван", ""),
    ("", "", "", ""),
    ("  -  123 ", "", "", ""),
])
def test_split_full_name(text: str, last: str, first: str, middle: str) -> None:
    assert split_full_name(text) == FullName(last, first, middle)


def test_mixed_case_is_kept() -> None:
    assert tidy_name("МакДональд") == "МакДональд"
    assert tidy_name("ИВАНОВ") == "Иванов"
    assert tidy_name("и") == "И."
    assert tidy_name_part("ПЕТРОВА-ВОДКИНА") == "Петрова-Водкина"
    assert tidy_name_part("Иванов") == "Иванов"
    assert tidy_name_part("ИВАНОВ  ИВАН") == "Иванов Иван"


def test_normalize_name() -> None:
    assert normalize_name("  Фёдоров  Пётр ") == "федоров петр"
    assert normalize_name("ЁЛКИН") == "елкин"


def test_full_name_key_needs_all_three_parts() -> None:
    assert full_name_key("Фёдоров", "Пётр", "Ильич") == "федоров петр ильич"
    assert full_name_key("Федоров", "ПЕТР", "ильич") == full_name_key("Фёдоров", "Пётр", "Ильич")
    assert full_name_key("Федоров", "Петр", "") is None
    assert full_name_key("Федоров", "П.", "И.") is None


@pytest.mark.parametrize("a, b, conflict", [
    (("Иванов", "Иван", "Иванович"), ("Иванов", "Иван", "Иванович"), False),
    (("Иванов", "И.", "И."), ("Иванов", "Иван", "Иванович"), False),   # initials are compatible
    (("Иванов", "И.", ""), ("Иванов", "Пётр", ""), True),             # a different initial
    (("Иванов", "Иван", ""), ("Петров", "Иван", ""), True),           # last names differ
    (("Фёдоров", "Семён", ""), ("ФЕДОРОВ", "семен", "Петрович"), False),  # case and ё
    (("", "Иван", ""), ("Иванов", "", ""), False),                    # nothing to compare
    (("Иванов", "Иван", "Иванович"), ("Иванов", "Иван", "Петрович"), True),  # middle names differ
    (("Иванов", "Иван", "И."), ("Иванов", "Иван", "Петрович"), True),
    (("Иванов", "Иван", ""), ("Иванов", "Ивана", ""), True),
    (("", "", ""), ("Петров", "Пётр", "Петрович"), False),
])
def test_names_conflict(a: tuple[str, str, str], b: tuple[str, str, str], conflict: bool) -> None:
    assert names_conflict(a, b) is conflict
    assert names_conflict(b, a) is conflict


def test_names_conflict_accepts_contacts() -> None:
    one = Contact("shop-a", "1", "10", last_name="Иванов", first_name="Иван", middle_name="Иванович")
    two = Contact("shop-b", "2", "20", last_name="ИВАНОВ", first_name="И.", middle_name="И.")
    three = Contact("shop-b", "3", "20", last_name="Петров", first_name="Иван")
    assert not names_conflict(one, two)
    assert names_conflict(one, three)
    assert not names_conflict(split_full_name("Иван Иванов"), one)
