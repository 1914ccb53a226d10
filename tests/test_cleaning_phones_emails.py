"""clean_phones (registry reference, section 6) and clean_emails."""
from __future__ import annotations

import random

import phonenumbers
import pytest

from etl.dto import Phone
from transformers.cleaning import clean_emails, clean_phones

MOSCOW = "+74951234567"


def e164s(text: object, kind: str = "WORK") -> list[str]:
    return [p.e164 for p in clean_phones(text, kind)]


@pytest.mark.parametrize("text", [
    "8 (495) 123-45-67", "+7 495 123-45-67", "+7(495)1234567", "74951234567", "84951234567",
    "4951234567", "7 (495) 123 45 67", "++7 495 1234567", "тел. 8(495)1234567", "+7 495 123.45.67",
    "8\u00a0495\u00a0123\u00a045\u00a067", " 8 (495) 123-45-67 ",
])
def test_reference_formats_to_e164(text: str) -> None:
    assert clean_phones(text) == (Phone(MOSCOW, "", "WORK"),)


@pytest.mark.parametrize("text, ext", [
    ("8 (495) 123-45-67 доб. 123", "123"),
    ("8 (495) 123-45-67 доб 123", "123"),
    ("8 (495) 123-45-67 (доб. 123)", "123"),
    ("8 (495) 123-45-67, доб.123", "123"),
    ("+7 495 1234567 ext. 123", "123"),
    ("+7 495 1234567 #123", "123"),
    ("+7 495 1234567 x123", "123"),
    ("84951234567доб123", "123"),
    ("tel:+74951234567;ext=12", "12"),
])
def test_extensions_are_kept_apart(text: str, ext: str) -> None:
    assert clean_phones(text) == (Phone(MOSCOW, ext, "WORK"),)


def test_mobile_and_toll_free() -> None:
    assert e164s("8-916-123-45-67") == ["+79161234567"]
    assert e164s("9161234567") == ["+79161234567"]
    assert e164s("8 800 555-35-35") == ["+78005553535"]


def test_several_numbers_per_cell() -> None:
    assert e164s("8 (495) 123-45-67, 8 (916) 123-45-67") == [MOSCOW, "+79161234567"]
    assert e164s("8 (495) 123-45-67; +7 916 1234567 / 4951234568") == [MOSCOW, "+79161234567", "+74951234568"]
    assert e164s("8 (495) 123-45-67\n8 (916) 123-45-67") == [MOSCOW, "+79161234567"]
    assert e164s("8 495 1234567 8 916 1234567") == [MOSCOW, "+79161234567"]
    assert e164s("8 495 1234567 или 8 916 1234567") == [MOSCOW, "+79161234567"]


def test_extension_attaches_to_its_own_number() -> None:
    phones = clean_phones("8 (495) 123-45-67 доб. 12, 8 (916) 123-45-67")
    assert phones == (Phone(MOSCOW, "12", "WORK"), Phone("+79161234567", "", "WORK"))


def test_repeats_are_dropped_but_other_extensions_kept() -> None:
    assert clean_phones("84951234567, +7 495 123-45-67") == (Phone(MOSCOW),)
    assert len(clean_phones("84951234567 доб. 1, 84951234567 доб. 2")) == 2


@pytest.mark.parametrize("junk", [
    "", None, "нет", "-", "не указан", "123-45-67", "0", "00000", "0000000000", "1234567890123456",
    "+", "доб. 123", "٨٤٩٥١٢٣٤٥٦٧", "x" * 100_000, "8" * 5000, True, {"TEL_NUMBER": "8 495 1234567"},
])
def test_junk_is_dropped(junk: object) -> None:
    assert clean_phones(junk) == ()


def test_foreign_numbers_and_old_international_prefix() -> None:
    assert e164s("+49 30 1234567") == ["+49301234567"]
    assert e164s("8 10 49 30 1234567") == ["+49301234567"]
    assert e164s("+7 (7172) 12-34-56") == ["+77172123456"]  # Kazakhstan shares +7


def test_kind_default_and_words() -> None:
    assert clean_phones("84951234567", "MOBILE")[0].kind == "MOBILE"
    assert clean_phones("тел. 84951234567; факс 84951234568")[1].kind == "FAX"
    assert clean_phones("моб. 89161234567")[0].kind == "MOBILE"


def test_numbers_and_lists_are_read_best_effort() -> None:
    assert e164s(89161234567) == ["+79161234567"]
    assert e164s(89161234567.0) == ["+79161234567"]
    assert e164s(["8 495 1234567", None, 89161234567]) == [MOSCOW, "+79161234567"]
    assert e164s("8 (495) 123-45-67".encode("cp1251")) == [MOSCOW]


def test_fast_path_agrees_with_phonenumbers() -> None:
    """The regex fast path must give what parse + is_valid + E164 gives, across all prefixes."""
    rnd = random.Random(7)
    formats = ["8 ({a}) {b}-{c}-{d}", "+7 {a} {b}{c}{d}", "{a}{b}{c}{d}", "7{a}{b}{c}{d}", "8-{a}-{b}-{c}-{d}"]
    checked = 0
    for prefix in range(300, 1000):
        text = rnd.choice(formats).format(a=prefix, b=rnd.randint(100, 999), c=rnd.randint(10, 99),
                                          d=rnd.randint(10, 99))
        try:
            number = phonenumbers.parse(text, "RU")
            valid = phonenumbers.is_valid_number(number)
        except phonenumbers.NumberParseException:
            valid = False
        expected = [phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)] if valid else []
        assert e164s(text) == expected, text
        checked += valid
    assert checked > 150  # the sample really exercised valid numbers (~220 of 700 prefixes)


@pytest.mark.parametrize("text, expected", [
    ("Info@Romashka.ru", ("info@romashka.ru",)),
    ("  info@romashka.ru  ", ("info@romashka.ru",)),
    ("a@b.ru, c@d.ru; Info@Romashka.ru", ("a@b.ru", "c@d.ru", "info@romashka.ru")),
    ("a@b.ru c@d.ru\nE@F.RU", ("a@b.ru", "c@d.ru", "e@f.ru")),
    ("Иван Петров <I.Petrov@Romashka.ru>", ("i.petrov@romashka.ru",)),
    ("mailto:x@y.com.", ("x@y.com",)),
    ("x@y.com, X@Y.COM", ("x@y.com",)),
    ("info@ромашка.рф", ("info@ромашка.рф",)),
    ("first.last+tag@sub.example.co.uk", ("first.last+tag@sub.example.co.uk",)),
    ("good@x.ru, bad@, @x.ru, a..b@x.ru, .a@x.ru, a@x, a@-x.ru, a b@x.ru", ("good@x.ru", "b@x.ru")),
    ("нет", ()),
    ("info(at)romashka.ru", ()),
    ("", ()),
    (None, ()),
    (12345, ()),
    (b"A@B.RU", ("a@b.ru",)),
    (["A@B.RU", None, "c@d.ru"], ("a@b.ru", "c@d.ru")),
    ("a" * 65 + "@x.ru", ()),
    ("x" * 100_000 + "@", ()),
])
def test_clean_emails(text: object, expected: tuple[str, ...]) -> None:
    assert clean_emails(text) == expected
