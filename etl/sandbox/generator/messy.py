"""How people type things: phones, e-mails, INNs, names and text written the way shops hold them.

Every function returns the text plus what a careful reader recovers from it (the valid E.164
phones, the valid e-mails, the name parts), so the ground truth follows from the written text
without parsing it back.
"""
from __future__ import annotations

import random

from etl.sandbox.generator import identifiers as ids

PHONE_JUNK = ("нет", "-", "не указан", "см. сайт", "уточнить", "нет телефона")
EMAIL_JUNK = ("нет", "-", "не указан", "нет почты")
CELL_SEPARATORS = (", ", "; ", ",", " ; ", ";")
_FOUR_DIGIT_AREAS = ("4012", "8452")


def _area_len(national: str) -> int:
    return 4 if national.startswith(_FOUR_DIGIT_AREAS) else 3


def _group(sub: str, sep: str) -> str:
    if len(sub) == 7:
        return f"{sub[:3]}{sep}{sub[3:5]}{sep}{sub[5:]}"
    return f"{sub[:2]}{sep}{sub[2:4]}{sep}{sub[4:]}"


def phone_text(e164: str, rng: random.Random, ext: str = "") -> str:
    """One phone written by a person; `e164` is `+7` and ten digits."""
    national = e164[2:]
    n = _area_len(national)
    area, sub = national[:n], national[n:]
    style = rng.randrange(10)
    if style == 0:
        text = f"8 ({area}) {_group(sub, '-')}"
    elif style == 1:
        text = f"+7 {area} {_group(sub, '-')}"
    elif style == 2:
        text = f"+7({area}){sub}"
    elif style == 3:
        text = f"7{national}"
    elif style == 4:
        text = f"8{national}"
    elif style == 5:
        text = f"8-{area}-{_group(sub, '-')}"
    elif style == 6:
        text = f"({area}) {_group(sub, '-')}"
    elif style == 7:
        text = national
    elif style == 8:
        text = f"+7 ({area}) {_group(sub, ' ')}"
    else:
        text = e164
    if ext:
        text += rng.choice((" доб. {}", " (доб. {})", " доб.{}", " ext. {}", " #{}", ", доб. {}")).format(ext)
    return text


def phones_cell(phones: list[tuple[str, str]], rng: random.Random, junk: float = 0.0) -> str | None:
    """Several (e164, ext) in one free-text cell, maybe with junk words; None when empty."""
    parts = [phone_text(p, rng, ext) for p, ext in phones]
    if junk and rng.random() < junk:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(PHONE_JUNK))
    if not parts:
        return None
    return rng.choice(CELL_SEPARATORS).join(parts)


def email_text(email: str, rng: random.Random) -> str:
    """An address as typed: mixed case now and then."""
    style = rng.randrange(8)
    if style == 0:
        return email.upper()
    if style == 1:
        local, domain = email.split("@")
        return f"{local.capitalize()}@{domain.capitalize()}"
    if style == 2:
        local, domain = email.split("@")
        return f"{local}@{domain.upper()}"
    return email


def bad_email(email: str, rng: random.Random) -> str:
    """An address nobody can send to (dropped by cleaning, never a reject)."""
    local, domain = email.split("@")
    return rng.choice((f"{local}@", f"@{domain}", f"{local}.{domain}", f"{local}@@{domain}",
                       rng.choice(EMAIL_JUNK)))


def emails_cell(emails: list[str], rng: random.Random, junk: float = 0.0) -> str | None:
    parts = [email_text(e, rng) for e in emails]
    if junk and rng.random() < junk:
        base = emails[0] if emails else "info@example.ru"
        parts.insert(rng.randrange(len(parts) + 1), bad_email(base, rng))
    if not parts:
        return None
    return rng.choice(CELL_SEPARATORS).join(parts)


def spaced(text: str, rng: random.Random, p: float = 0.15) -> str:
    """Stray whitespace: around the text, doubled inside, sometimes a no-break space."""
    if rng.random() >= p:
        return text
    style = rng.randrange(4)
    if style == 0:
        return f"  {text} "
    if style == 1:
        return text.replace(" ", "  ", 1) + " "
    if style == 2:
        return "\t" + text
    return text.replace(" ", "\u00a0", 1)


# --- INNs ---------------------------------------------------------------------------------------

def inn_valid_text(inn: str, rng: random.Random) -> str:
    """A valid INN as typed: mostly clean, sometimes with separators that compaction removes."""
    roll = rng.random()
    if roll < 0.82:
        return inn
    if len(inn) == 10:
        forms = (f" {inn} ", f"{inn[:4]} {inn[4:7]} {inn[7:]}", f"{inn[:4]}-{inn[4:7]}-{inn[7:]}",
                 f"{inn[:2]}-{inn[2:4]}-{inn[4:]}", f"{inn[:4]}.{inn[4:]}", f"{inn[:4]}/{inn[4:]}", f"{inn} ")
    else:
        forms = (f" {inn} ", f"{inn[:4]} {inn[4:8]} {inn[8:]}", f"{inn[:4]}-{inn[4:10]}-{inn[10:]}",
                 f"{inn[:6]}.{inn[6:]}", f"{inn} ")
    return rng.choice(forms)


def inn_bad_format_text(inn: str, rng: random.Random) -> str:
    """Not 10/12 digits after compaction: letters, wrong length, a word, all one digit."""
    style = rng.randrange(7)
    if style == 0:  # a look-alike letter instead of a digit
        i = rng.randrange(len(inn))
        return inn[:i] + rng.choice("OОlЗбB") + inn[i + 1:]
    if style == 1:
        return inn[:-1]
    if style == 2:
        return inn + str(rng.randrange(10))
    if style == 3:
        return f"ИНН {inn}"
    if style == 4:
        return rng.choice("0123456789") * len(inn)
    if style == 5:
        return rng.choice(("нет", "не знаю", "уточнить", "н/д"))
    return inn[:5] + inn[6:] if len(inn) == 12 else inn + inn[:1]


def inn_bad_checksum_text(inn: str, rng: random.Random) -> str:
    return inn_valid_text(ids.with_bad_checksum(inn, rng.randrange(9)), rng)


def no_inn_value(rng: random.Random) -> str | None:
    return rng.choice((None, "", "   ", " "))


# --- KPP / OGRN ---------------------------------------------------------------------------------

def kpp_text(kpp: str, rng: random.Random) -> str | None:
    roll = rng.random()
    if not kpp:
        return rng.choice((None, "", "-")) if roll < 0.9 else "0"
    if roll < 0.85:
        return kpp
    return rng.choice((None, "", "нет", kpp[:-1], kpp + "0", f"{kpp[:4]} {kpp[4:6]} {kpp[6:]}"))


def ogrn_text(ogrn: str, rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.85:
        return ogrn
    return rng.choice((None, "", ogrn[:-1], f"ОГРН {ogrn}", ogrn[:-1] + str((int(ogrn[-1]) + 3) % 10)))


# --- names --------------------------------------------------------------------------------------

NAME_FULL = "full"
NAME_FIRST_LAST = "first_last"      # `Иван Иванов`: guessing needed
NAME_LAST_FIRST = "last_first"      # `Иванов Иван`: guessing needed
NAME_INITIALS = "initials"          # `ИВАНОВ И.И.`
NAME_NO_MIDDLE = "no_middle"        # shop B: NAME_MIDDLE empty
PARTIAL_FORMS_A = (NAME_FIRST_LAST, NAME_LAST_FIRST, NAME_INITIALS)
PARTIAL_FORMS_B = (NAME_NO_MIDDLE, NAME_INITIALS)


def _case(word: str, rng: random.Random, p: float) -> str:
    if rng.random() < p:
        return word.upper()
    return word


def _yo(word: str, rng: random.Random) -> str:
    """Write `ё` as `е` sometimes (the canonical value follows what was written)."""
    if "ё" in word and rng.random() < 0.4:
        return word.replace("ё", "е")
    return word


def full_name_text(last: str, first: str, middle: str, form: str,
                   rng: random.Random) -> tuple[str, tuple[str, str, str]]:
    """Shop A's single full-name cell and the (last, first, middle) it stands for."""
    last, first, middle = _yo(last, rng), _yo(first, rng), _yo(middle, rng)
    if form == NAME_FULL:
        up = rng.random() < 0.1
        text = f"{last} {first} {middle}"
        return spaced(text.upper() if up else text, rng), (last, first, middle)
    if form == NAME_FIRST_LAST:
        return spaced(f"{first} {last}", rng), (last, first, "")
    if form == NAME_LAST_FIRST:
        return spaced(f"{last} {first}", rng), (last, first, "")
    # initials
    style = rng.randrange(3)
    if style == 0:
        text = f"{last.upper()} {first[0]}.{middle[0]}."
    elif style == 1:
        text = f"{last} {first[0]}. {middle[0]}."
    else:
        text = f"{last} {first[0]}.{middle[0]}."
    return text, (last, first[0] + ".", middle[0] + ".")


def name_fields(last: str, first: str, middle: str, form: str,
                rng: random.Random) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """Shop B's NAME_LAST/NAME_FIRST/NAME_MIDDLE and the canonical parts they stand for."""
    last, first, middle = _yo(last, rng), _yo(first, rng), _yo(middle, rng)
    if form == NAME_NO_MIDDLE:
        return (_case(last, rng, 0.1), first, ""), (last, first, "")
    if form == NAME_INITIALS:
        return (last, first[0] + ".", middle[0] + "."), (last, first[0] + ".", middle[0] + ".")
    written = (spaced(_case(last, rng, 0.1), rng, 0.05), first, middle)
    return written, (last, first, middle)
