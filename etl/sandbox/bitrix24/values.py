"""Turning written field values into stored ones and stored ones into what the portal returns.

Stored (JSON in SQLite): integers for id-like fields, floats for doubles, ISO-8601 strings with
the portal's offset for dates, strings for the rest. Returned: every scalar as a string, or null
(legacy CRM style: `"ID": "2909"`, `"ASSIGNED_BY_ID": "1"`).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from etl.sandbox.bitrix24.params import array_values, floatval, intval, php_string
from etl.sandbox.bitrix24.schema import DATE_TYPES, INT_TYPES, FieldDef

PORTAL_TZ = timezone(timedelta(hours=3))  # a Moscow portal: `2024-03-11T16:36:46+03:00`
_DATE_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def iso(ts: float | datetime) -> str:
    """`2024-03-11T16:36:46+03:00` for a unix time or an aware datetime."""
    if isinstance(ts, datetime):
        return ts.astimezone(PORTAL_TZ).isoformat(timespec="seconds")
    return _iso_second(int(ts // 1))


@lru_cache(maxsize=256)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, PORTAL_TZ).isoformat(timespec="seconds")


def parse_datetime(value: Any) -> str | None:
    """A written date/time in any common portal format -> ISO with the portal offset, else None."""
    text = php_string(value).strip()
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        dt = None
        for fmt in _DATE_FORMATS:
            try:
                dt = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if dt is None:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=PORTAL_TZ)
    return iso(dt)


def store_value(fd: FieldDef, value: Any) -> Any:
    """The stored form of a written scalar; None means "empty" (the field is cleared)."""
    if value is None or isinstance(value, dict):
        return None
    if fd.type in INT_TYPES:
        if isinstance(value, str) and not value.strip():
            return None
        return intval(value)
    if fd.type == "double":
        if isinstance(value, str) and not value.strip():
            return None
        return floatval(value)
    if fd.type == "char":
        if isinstance(value, bool):
            return "Y" if value else "N"
        return php_string(value)
    if fd.type in DATE_TYPES:
        parsed = parse_datetime(value)
        if parsed and fd.type == "date":
            return parsed[:10]
        return parsed
    return php_string(value)


def store_user_field(value: Any) -> Any:
    """UF_CRM_* values: strings, or a list of strings for a multiple field."""
    if isinstance(value, dict):
        return [php_string(v) for v in array_values(value) if not isinstance(v, dict)]
    return None if value is None else php_string(value)


def output_value(value: Any) -> Any:
    """How the portal returns a stored value: strings (or null, or a list of strings)."""
    if value is None:
        return None
    if isinstance(value, list):
        return [output_value(v) for v in value]
    if isinstance(value, float):
        return php_string(value)
    return str(value)


def filter_value(fd: FieldDef | None, value: Any) -> Any:
    """A filter operand in the stored form of its field, so SQL compares like with like."""
    if fd is None:
        return php_string(value)
    if fd.type in INT_TYPES:
        return intval(value)
    if fd.type == "double":
        return floatval(value)
    if fd.type in DATE_TYPES:
        parsed = parse_datetime(value)
        if parsed is None:
            return php_string(value)
        return parsed[:10] if fd.type == "date" else parsed
    if isinstance(value, bool) and fd.type == "char":
        return "Y" if value else "N"
    return php_string(value)
