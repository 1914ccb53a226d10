"""Registry identifiers made from counters: unique without remembering what was issued.

Each number is a bijection of a counter (a tax-office code chosen by `counter % len(codes)`, a
serial scrambled by multiplying with a unit modulo the serial space) plus its real check digits,
so a run of any size never repeats an INN/OGRN and never needs a "seen" set.
"""
from __future__ import annotations

from stdnum.ru import inn as stdnum_inn

# Tax-office codes (first four INN digits). No code has all-equal digits, so no generated INN can
# be "all one digit".
TAX_OFFICES = (
    "7701", "7702", "7703", "7704", "7705", "7706", "7707", "7708", "7709", "7710", "7712", "7713",
    "7714", "7715", "7716", "7717", "7718", "7719", "7720", "7721", "7722", "7723", "7724", "7725",
    "7726", "7727", "7728", "7729", "7730", "7731", "7733", "7734", "7735", "7736", "7743", "7751",
    "5001", "5003", "5007", "5012", "5018", "5024", "5027", "5029", "5032", "5038", "5040", "5047",
    "7801", "7802", "7804", "7805", "7806", "7810", "7811", "7813", "7814", "7816", "7819", "7820",
    "6658", "6670", "5406", "5410", "1655", "1660", "6315", "6164", "2308", "2310", "5260", "5902",
    "7204", "3664", "7447", "2465", "0274", "0276", "6901", "4027",
)
REGIONS = ("77", "50", "78", "66", "54", "16", "63", "61", "23", "52", "59", "72", "36", "74", "24",
           "02", "69", "40")

_SERIAL5, _MUL5 = 100_000, 37_171            # 10-digit INN: 4-digit code + 5-digit serial
_SERIAL6, _MUL6 = 1_000_000, 731_563         # 12-digit INN: 4-digit code + 6-digit serial
_SERIAL7, _MUL7 = 10_000_000, 7_654_321      # OGRN serial
_SERIAL9, _MUL9 = 1_000_000_000, 123_456_791  # OGRNIP serial


_OFFSET = 7919  # so the first numbers do not look like 0000001


def scramble(n: int, space: int, mul: int) -> int:
    """A bijection of [0, space): shift, then multiply by a unit modulo `space`."""
    if n >= space:
        raise ValueError(f"identifier counter {n} exceeds the generator's space of {space}")
    return (n + _OFFSET) % space * mul % space


def legal_inn(counter: int) -> str:
    """The `counter`-th 10-digit INN (legal entity)."""
    code = TAX_OFFICES[counter % len(TAX_OFFICES)]
    serial = scramble(counter // len(TAX_OFFICES), _SERIAL5, _MUL5)
    first9 = f"{code}{serial:05d}"
    return first9 + stdnum_inn.calc_company_check_digit(first9)


def personal_inn(counter: int) -> str:
    """The `counter`-th 12-digit INN (sole proprietor)."""
    code = TAX_OFFICES[counter % len(TAX_OFFICES)]
    serial = scramble(counter // len(TAX_OFFICES), _SERIAL6, _MUL6)
    first10 = f"{code}{serial:06d}"
    return first10 + stdnum_inn.calc_personal_check_digits(first10)


def ogrn(counter: int, year: int, region: str) -> str:
    """13-digit OGRN: 1, year, region, serial, check digit int(first12) % 11 % 10."""
    first12 = f"1{year % 100:02d}{region}{scramble(counter, _SERIAL7, _MUL7):07d}"
    return first12 + str(int(first12) % 11 % 10)


def ogrnip(counter: int, year: int, region: str) -> str:
    """15-digit OGRNIP: 3, year, region, serial, check digit int(first14) % 13 % 10."""
    first14 = f"3{year % 100:02d}{region}{scramble(counter, _SERIAL9, _MUL9):09d}"
    return first14 + str(int(first14) % 13 % 10)


def kpp_for(inn: str, branch: int = 0) -> str:
    """KPP of a legal entity's head office (branch 0) or of its n-th branch."""
    return f"{inn[:4]}{'01' if branch == 0 else '43'}{branch + 1:03d}"


def partner_number(counter: int) -> str:
    """SAP business-partner number of an organisation: 10 digits with leading zeros."""
    return f"{1_000_000 + counter:010d}"


def contact_partner_number(counter: int) -> str:
    """SAP business-partner number of a contact person."""
    return f"{2_000_000 + counter:010d}"


def with_bad_checksum(inn: str, shift: int) -> str:
    """`inn` with its last check digit changed (shift 1..9): always fails the checksum."""
    last = (int(inn[-1]) + 1 + shift % 9) % 10
    return inn[:-1] + str(last)
