"""EGRUL registry lines for the sandbox's DaData-compatible service (sources/README.md): one DaData
`findById/party` `data` object per line, head office (MAIN) first, then branches with the same INN.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone

from etl.sandbox.generator import identifiers as ids
from etl.sandbox.generator.world import RealCompany

# Registry state codes (hflabs/party-state) per status, for `state.code`.
STATE_CODES = {"ACTIVE": None, "LIQUIDATING": "101", "LIQUIDATED": "201", "BANKRUPT": "117",
               "REORGANIZING": "124"}


def _ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() * 1000)


def short_with_opf(c: RealCompany) -> str:
    if c.sole_proprietor:
        return f"ИП {c.owner.full_name}"
    return f'{c.opf[2]} "{c.core.upper()}"'


def full_with_opf(c: RealCompany) -> str:
    if c.sole_proprietor:
        return f"Индивидуальный предприниматель {c.owner.full_name}"
    return f'{c.opf[1].upper()} "{c.core.upper()}"'


def registry_lines(c: RealCompany, now: date) -> list[dict]:
    """The company's registry lines (none if EGRUL does not know it)."""
    if c.status == "NOT_FOUND":
        return []
    status = c.status
    state = {"status": status, "code": STATE_CODES.get(status),
             "actuality_date": _ms(c.status_changed if status != "ACTIVE" else now),
             "registration_date": _ms(c.registered),
             "liquidation_date": _ms(c.status_changed) if status == "LIQUIDATED" else None}
    hid = hashlib.sha256(c.inn.encode()).hexdigest()
    code, full, short = c.opf
    owner = c.owner
    if c.sole_proprietor:
        main = {
            "inn": c.inn, "kpp": None, "ogrn": c.ogrn, "ogrn_date": _ms(c.registered), "hid": hid,
            "type": "INDIVIDUAL", "branch_type": "MAIN", "branch_count": 0,
            "name": {"full_with_opf": full_with_opf(c), "short_with_opf": short_with_opf(c),
                     "full": owner.full_name, "short": owner.full_name, "latin": None},
            "fio": {"surname": owner.last, "name": owner.first, "patronymic": owner.middle},
            "opf": {"code": code, "full": full, "short": short, "type": "2014"},
            "management": None,
            "address": {"value": f"г {c.city}", "unrestricted_value": f"г {c.city}", "data": None},
            "state": state,
        }
        return [main]
    main = {
        "inn": c.inn, "kpp": c.kpp, "ogrn": c.ogrn, "ogrn_date": _ms(c.registered), "hid": hid,
        "type": "LEGAL", "branch_type": "MAIN", "branch_count": c.branches,
        "name": {"full_with_opf": full_with_opf(c), "short_with_opf": short_with_opf(c),
                 "full": c.core.upper(), "short": c.core.upper(), "latin": None},
        "opf": {"code": code, "full": full, "short": short, "type": "2014"},
        "management": {"name": owner.full_name, "post": "ГЕНЕРАЛЬНЫЙ ДИРЕКТОР", "disqualified": None},
        "address": {"value": c.address, "unrestricted_value": c.address, "data": None},
        "state": state,
    }
    lines = [main]
    for n in range(1, c.branches + 1):
        branch = dict(main, kpp=ids.kpp_for(c.inn, n), branch_type="BRANCH", branch_count=0,
                      hid=hashlib.sha256(f"{c.inn}/{n}".encode()).hexdigest(),
                      name=dict(main["name"], full_with_opf=f"ФИЛИАЛ {main['name']['full_with_opf']}",
                                short_with_opf=f"ФИЛИАЛ {main['name']['short_with_opf']}"),
                      management=None)
        lines.append(branch)
    return lines
