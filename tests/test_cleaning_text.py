"""decode_legacy / repair_mojibake / clean_text: shop A bytes, the mojibake kinds of the registry
reference (section 7), and correct text that must stay as it is."""
from __future__ import annotations

import pytest

from transformers.cleaning import clean_text, decode_legacy, repair_mojibake, text_of

RUSSIAN = [
    'ООО "Ромашка"',
    "Привет",
    'ООО "Ромашка", г. Москва, ул. Тверская, д. 1',
    "Салон «Люкс»",
    "Иванов Иван Иванович",
    "ПАО СБЕРБАНК",
    "Ёлкин Пётр",
    "ИП Сёмина А.А.",
    "ЗАО «Иволга» — поставки №12",
]


def _utf8_as(text: str, codec: str) -> str:
    return text.encode("utf-8").decode(codec)


def _cp1251_as(text: str, codec: str) -> str:
    return text.encode("cp1251").decode(codec)


@pytest.mark.parametrize("text", RUSSIAN)
def test_cp1251_bytes_are_decoded(text: str) -> None:
    assert decode_legacy(text.encode("cp1251")) == text


@pytest.mark.parametrize("text", RUSSIAN + ["Café Müller GmbH", "plain ascii"])
def test_utf8_bytes_are_decoded(text: str) -> None:
    assert decode_legacy(text.encode("utf-8")) == text


def test_bytes_with_a_real_replacement_character_stay_utf8() -> None:
    assert decode_legacy("a\ufffdб".encode()) == "a\ufffdб"


def test_cp1251_byte_0x98_does_not_raise() -> None:
    assert decode_legacy(b"\xc0\x98\xc1").startswith("А")


@pytest.mark.parametrize("text", RUSSIAN)
@pytest.mark.parametrize("make", [
    pytest.param(lambda t: _utf8_as(t, "sloppy-windows-1251"), id="utf8-read-as-cp1251"),
    pytest.param(lambda t: _utf8_as(t, "latin-1"), id="utf8-read-as-latin1"),
    pytest.param(lambda t: _utf8_as(t, "sloppy-windows-1252"), id="utf8-read-as-cp1252"),
    pytest.param(lambda t: _cp1251_as(t, "latin-1"), id="cp1251-read-as-latin1"),
    pytest.param(lambda t: _cp1251_as(t, "sloppy-windows-1252"), id="cp1251-read-as-cp1252"),
])
def test_mojibake_is_repaired(text: str, make) -> None:
    import ftfy.bad_codecs  # noqa: F401 - the sloppy codecs used to build the mojibake

    broken = make(text)
    assert broken != text
    assert decode_legacy(broken) == text


@pytest.mark.parametrize("broken, right", [
    ('ÎÎÎ "Ðîìàøêà", ã. Ìîñêâà', 'ООО "Ромашка", г. Москва'),
    ("Ñàëîí «Ëþêñ»", "Салон «Люкс»"),
    ("РџСЂРёРІРµС‚", "Привет"),
    ("ÐŸÑ€Ð¸Ð²ÐµÑ‚", "Привет"),
    ("Ð\x9fÑ\x80Ð¸Ð²ÐµÑ\x82", "Привет"),
    ("РћРћРћ", "ООО"),
    ("ÐžÐžÐž", "ООО"),
])
def test_reference_table_examples(broken: str, right: str) -> None:
    assert decode_legacy(broken) == right


def test_utf8_read_as_cp1251_with_replacement_char_is_repaired() -> None:
    # "И" is D0 98 in UTF-8; 0x98 is undefined in cp1251, so a strict-ish decoder left U+FFFD
    broken = "Иванов".encode("utf-8").decode("cp1251", errors="replace")
    assert "\ufffd" in broken
    assert decode_legacy(broken) == "Иванов"


@pytest.mark.parametrize("text", RUSSIAN + [
    "Café Müller GmbH", "Ærøskøbing Æble ApS", "naïve façade", "ООО «ПРОГРЕСС»", "ООО «СЕВЕР»",
    "АО «ТЕСТ»", "Сёмин", "СЁМИН", "Р«Р", "ООО\u00a0Ромашка", "", "12345", "Straße 5, München",
])
def test_correct_text_is_left_unchanged(text: str) -> None:
    assert repair_mojibake(text) == text
    assert decode_legacy(text) == text


def test_decode_legacy_types() -> None:
    assert decode_legacy(None) == ""
    assert decode_legacy(7707083893) == "7707083893"
    assert decode_legacy(12.0) == "12"
    assert decode_legacy(bytearray("Тест".encode("cp1251"))) == "Тест"
    with pytest.raises(TypeError):
        decode_legacy(["a"])  # type: ignore[arg-type]


@pytest.mark.parametrize("raw, clean", [
    ("  ООО   Ромашка  ", "ООО Ромашка"),
    ("ООО\u00a0\u00a0Ромашка", "ООО Ромашка"),
    ("a\tb\nc\r\nd", "a b c d"),
    ("Ром\x00ашка", "Ромашка"),
    ("\x00\x00", ""),
    ("\ufeffООО\u200b Ромашка", "ООО Ромашка"),
    ("x\x1by", "xy"),
    ("a\ud800b", "ab"),  # a lone surrogate (JSON "\ud800") could not be encoded for the CRM
    (None, ""),
    ("", ""),
])
def test_clean_text(raw: str | None, clean: str) -> None:
    assert clean_text(raw) == clean


def test_text_of_decodes_and_cleans() -> None:
    assert text_of(" ООО \n «Ромашка»\x00 ".encode("cp1251")) == "ООО «Ромашка»"
    assert text_of('ÎÎÎ  "Ðîìàøêà"') == 'ООО "Ромашка"'
    assert text_of(None) == ""
    assert text_of(b"  ") == ""
