"""Offline identifier checks: INN shape and control digits (python-stdnum), KPP shape, OGRN/OGRNIP.

These run before anything asks EGRUL, so they must be cheap: `check_inn` costs a few microseconds.
Each check returns (normalised value, None) or (None, reason code from etl.rejects).
"""
from __future__ import annotations

import re
from typing import Any

from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidLength, ValidationError
from stdnum.ru import inn as stdnum_inn
from stdnum.ru import ogrn as stdnum_ogrn

from etl import rejects

# Separators people type inside identifiers; anything else non-digit is a format error.
_SEPARATORS = re.compile(r"[\s\-./_\u00a0\u2010-\u2015]+")
_KPP = re.compile(r"^\d{4}[\dA-Z]{2}\d{3}$")

INN_REASONS = {
    rejects.NO_INN: "no INN",
    rejects.INN_FORMAT: "INN must be 10 digits (legal entity) or 12 digits (sole proprietor)",
    rejects.INN_CHECKSUM: "INN control digit(s) do not match",
}


def compact(value: Any) -> str:
    """The identifier as a string of what the person meant: separators and spaces removed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)  # SAP/JSON sometimes sends numbers; leading zeros are already lost
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if not isinstance(value, str):
        return repr(value)
    return _SEPARATORS.sub("", value)


def check_inn(value: Any) -> tuple[str | None, str | None]:
    """Return (inn, None) for a valid INN, else (None, reason) with reason in
    `no_inn`, `inn_format`, `inn_checksum`."""
    inn = compact(value)
    if not inn:
        return None, rejects.NO_INN
    if len(inn) not in (10, 12) or not inn.isdigit() or not inn.isascii():
        return None, rejects.INN_FORMAT
    if inn.count(inn[0]) == len(inn):  # 0000000000 even passes the checksum; no one is registered so
        return None, rejects.INN_FORMAT
    try:
        stdnum_inn.validate(inn)
    except InvalidChecksum:
        return None, rejects.INN_CHECKSUM
    except ValidationError:
        return None, rejects.INN_FORMAT
    return inn, None


def is_sole_proprietor_inn(inn: str) -> bool:
    return len(inn) == 12


def check_kpp(value: Any) -> tuple[str | None, str | None]:
    """KPP: 4 digits, 2 digits or capital Latin letters, 3 digits; no checksum exists."""
    kpp = compact(value).upper()
    if not kpp:
        return None, "no_kpp"
    if not _KPP.match(kpp):
        return None, "kpp_format"
    return kpp, None


def check_ogrn(value: Any) -> tuple[str | None, str | None]:
    """OGRN (13 digits) or OGRNIP (15 digits).

    python-stdnum 2.2 computes the OGRNIP check digit as `% 13` without the final `% 10`, so it
    rejects the ~23 % of real OGRNIPs whose remainder is 10..12 (registry reference, 1.3); for 15
    digits we apply the published rule ourselves.
    """
    ogrn = compact(value)
    if not ogrn:
        return None, "no_ogrn"
    if not ogrn.isdigit() or not ogrn.isascii() or len(ogrn) not in (13, 15):
        return None, "ogrn_format"
    if len(ogrn) == 15:
        if ogrn[0] not in "34":
            return None, "ogrn_format"
        if int(ogrn[:14]) % 13 % 10 != int(ogrn[14]):
            return None, "ogrn_checksum"
        return ogrn, None
    try:
        stdnum_ogrn.validate(ogrn)
    except InvalidChecksum:
        return None, "ogrn_checksum"
    except (InvalidComponent, InvalidLength, ValidationError):
        return None, "ogrn_format"
    return ogrn, None
