"""Phones typed by people -> E.164 with the extension kept apart (registry reference, section 6).

A cell may hold several numbers (`8 495 123-45-67, 8 916 123-45-67`), words (`тел.`, `моб.`),
extensions in many spellings (`доб. 123`, `(доб. 123)`, `, доб.123`, `ext. 123`, `#123`, `x123`)
or junk (`нет`, `-`, `123-45-67` without an area code). Junk is dropped, not an error.

Speed: the common Russian shapes (10 digits, or 11 starting with 7/8) take a regex fast path
(~2 µs). Whether a 10-digit national number is valid is decided by phonenumbers' metadata once per
3-digit prefix (and cached), so the fast path never accepts what phonenumbers would refuse;
prefixes whose validity depends on more digits, and every other shape (foreign numbers,
`8 10 49 ...`, `tel:` URIs), go through `phonenumbers.parse` (~35 µs).
"""
from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from etl.dto import Phone
from transformers.cleaning.text import decode_legacy

_EXT_MARK = r"(?:доб(?:авочный)?|доп|вн(?:утр(?:енний)?)?|ext(?:ension)?|x|#)"
# An extension inside a piece: a marker (not the tail of a word such as "fax") and its digits.
# Applied to the lower-cased piece (re.I over Cyrillic alternatives is ~4x slower).
_EXT = re.compile(r"(?<![a-zа-яё])" + _EXT_MARK + r"\.?\s*[:.=]?\s*(\d{1,8})")
# A piece that is only an extension: the `, доб. 123` after a number.
_EXT_ONLY = re.compile(r"[\s(]*" + _EXT_MARK + r"\.?\s*[:.=]?\s*(\d{1,8})[\s).]*")
# Between numbers: punctuation, line breaks ("8 495 1234567 или 8 916 1234567" reaches the
# digit-group split in the slow path).
_SPLIT = re.compile(r"[,;|/\\\n\r]+")
_HAS_DIGIT = re.compile(r"\d")
_NON_DIGIT = re.compile(r"[^0-9]+")
_DIGIT_GROUP = re.compile(r"\d+")
_KIND_WORD = re.compile(r"(факс|fax)|моб|сот|mob|cell")  # group 1: a fax, else a mobile
_MIN_DIGITS = 7  # fewer digits than this before a marker means the marker is not an extension
_MIN_NATIONAL = 10  # a Russian number written without "+" has an area code: 10 digits at least
_MIN_INTERNATIONAL = 8  # "+" and country code: the shortest numbers in use have 8 digits


def clean_phones(text: object, default_kind: str = "WORK", extension: str = "") -> tuple[Phone, ...]:
    """Every valid phone in `text` as Phone(e164, ext, kind), in order, without repeats.

    `text` is normally a str; bytes are decoded, a number is read as its digits, a list or tuple is
    read item by item, anything else holds no phone. `extension` (SAP's TEL_EXTENS) goes to the
    first number unless the text gave it one.
    """
    phones: list[Phone] = []
    for piece in _pieces(text):
        digits = _strip_number_punctuation(piece)
        if digits.isdigit() and digits.isascii():  # only a number's own characters: the usual case
            found = _parse_digits(digits, "+" in piece, "", piece)
            kind = default_kind
        else:
            if not _HAS_DIGIT.search(piece):
                continue
            piece = piece.lower()
            only_ext = _EXT_ONLY.fullmatch(piece)
            if only_ext:
                if phones and not phones[-1].ext:
                    last = phones[-1]
                    phones[-1] = Phone(last.e164, only_ext.group(1), last.kind)
                continue
            found = _parse_words(piece)
            word = _KIND_WORD.search(piece)
            kind = default_kind if word is None else "FAX" if word.group(1) else "MOBILE"
        for e164, ext in found:
            if extension and not phones and not ext:
                ext = extension
            if not phones or not any(p.e164 == e164 and p.ext == ext for p in phones):
                phones.append(Phone(e164, ext, kind))
    return tuple(phones)


def _strip_number_punctuation(piece: str) -> str:
    """What is left of `8 (495) 123-45.67` without the characters numbers are written with (a
    chain of str.replace is ~3x faster than translate or a regex on such short strings)."""
    return (piece.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
            .replace("+", "").replace(".", "").replace("\t", "").replace("\u00a0", ""))


def _pieces(value: object) -> list[str]:
    if not value:
        return []
    if type(value) is str:
        return _SPLIT.split(value) if _SPLIT.search(value) else [value]
    if isinstance(value, (list, tuple)):
        return [p for item in value for p in _pieces(item)]
    if isinstance(value, bool):
        return []
    try:
        return _SPLIT.split(decode_legacy(value))  # bytes, int, float
    except TypeError:
        return []


def _parse_words(piece: str) -> list[tuple[str, str]]:
    """A piece with words around the number: find the extension, then read the digits."""
    main, ext = piece, ""
    for m in _EXT.finditer(piece):
        if sum(map(str.isdigit, piece[:m.start()])) >= _MIN_DIGITS:
            main, ext = piece[:m.start()], m.group(1)
            break
    return _parse_digits(_NON_DIGIT.sub("", main), "+" in main, ext, piece)


def _parse_digits(digits: str, plus: bool, ext: str, piece: str) -> list[tuple[str, str]]:
    """The fast path on the digits of a piece; phonenumbers for what it cannot decide."""
    n = len(digits)
    if n == 11 and (digits[0] == "7" or (digits[0] == "8" and not plus)):
        if _fast_prefix(digits[1:4]):
            return [("+7" + digits[1:], ext)]
    elif n == 10 and not plus:
        if _fast_prefix(digits[:3]):
            return [("+7" + digits, ext)]
    if n < (_MIN_INTERNATIONAL if plus else _MIN_NATIONAL) or not digits.isdigit():
        return []  # too short to be a number anywhere (`123-45-67` has no area code): junk
    return _parse_slow(piece)


@lru_cache(maxsize=1024)
def _fast_prefix(prefix: str) -> bool:
    """True when phonenumbers accepts every sampled Russian number with this 3-digit prefix."""
    if prefix[0] not in "3489":
        return False
    for d in "0123456789":
        number = phonenumbers.PhoneNumber(country_code=7, national_number=int(prefix + d + "234567"))
        if not phonenumbers.is_valid_number(number):
            return False
    return True


def _parse_slow(piece: str) -> list[tuple[str, str]]:
    """phonenumbers on the whole piece (it also understands `tel:` URIs and extensions), then its
    matcher for several numbers in one piece."""
    try:
        number = phonenumbers.parse(piece, "RU")
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_valid_number(number):
        return [(_e164(number), number.extension or "")]
    found = [(_e164(m.number), m.number.extension or "")
             for m in phonenumbers.PhoneNumberMatcher(piece, "RU", leniency=phonenumbers.Leniency.VALID)]
    return found or _split_digit_groups(piece)


def _split_digit_groups(piece: str) -> list[tuple[str, str]]:
    """Several Russian numbers separated only by spaces (`8 495 1234567 8 916 1234567`): gather
    digit groups until they make one number (11 digits from 7/8, or 10 from 3/4/9), then start
    the next. All or nothing: a leftover means the piece was not such a list."""
    found: list[tuple[str, str]] = []
    acc = ""
    for group in _DIGIT_GROUP.findall(piece):
        acc += group
        if len(acc) == 11 and acc[0] in "78":
            nsn = acc[1:]
        elif len(acc) == 10 and acc[0] in "349":
            nsn = acc
        elif len(acc) < 11:
            continue
        else:
            return []
        if not _fast_prefix(nsn[:3]):
            return []
        found.append(("+7" + nsn, ""))
        acc = ""
    return found if not acc else []


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
