"""Reading one field of a raw record: type checks that name the field, shared by the shop modules.

A raw value of the wrong type (a list where text belongs, a 1 MB string, a dict for an id) raises
`BadField`; the shop transformer turns it into a `bad_record` Reject whose detail names the field.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from transformers.cleaning.text import clean_text, decode_legacy, text_of

MAX_TEXT = 8192  # characters (or bytes) in one raw text value; more is not something a person typed
MOSCOW = ZoneInfo("Europe/Moscow")


_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null"}


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for reject reasons ("is a number, not an object")."""
    return _JSON_TYPES.get(type(value), f"a {type(value).__name__}")


class BadField(Exception):
    """A raw field cannot be mapped; `str(e)` is the detail of the `bad_record` Reject."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why

    def inside(self, prefix: str) -> BadField:
        """The same problem, named from an outer level: `PHONE[0]` + `TEL_NUMBER`."""
        return BadField(f"{prefix}.{self.field}", self.why)


def text(record: Mapping[str, Any], key: str, where: str = "") -> str:
    """The field as clean text ("" for None/missing): decoded, repaired, whitespace collapsed.
    `where` prefixes the field name in the error (`CONTACTS[2]` -> `CONTACTS[2].NAME_LAST`)."""
    return text_value(record.get(key), key, where)


def text_value(value: Any, key: str, where: str = "") -> str:
    """`text` for a value already taken out of its record; `key` names it in errors."""
    kind = type(value)
    if (kind is str or kind is bytes) and len(value) <= MAX_TEXT:
        return text_of(value) if value else ""
    if value is None:
        return ""
    return clean_text(raw_text(value, key, where))


def raw_text(value: Any, key: str, where: str = "") -> str:
    """The value decoded and repaired but not yet whitespace-cleaned (phones and e-mails split on
    line breaks themselves)."""
    if value is None:
        return ""
    kind = type(value)
    if kind is bytes and len(value) <= MAX_TEXT and value.isascii():
        return value.decode("ascii")
    if kind is str and len(value) <= MAX_TEXT:
        return decode_legacy(value)
    if isinstance(value, (str, bytes, bytearray)) and len(value) > MAX_TEXT:
        raise BadField(_label(key, where), f"{len(value)} characters long (at most {MAX_TEXT} expected)")
    try:
        return decode_legacy(value)
    except TypeError:
        raise BadField(_label(key, where), f"expected text, got {json_type(value)}") from None


def _label(key: str, where: str) -> str:
    return f"{where}.{key}" if where else key


def integer(record: Mapping[str, Any], key: str) -> int:
    """A required integer (an id, a flag); digits in text are accepted, anything else is bad."""
    return integer_value(record.get(key), key)


def integer_value(value: Any, key: str) -> int:
    """`integer` for a value already taken out of its record; `key` names it in errors."""
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (str, bytes)) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    what = "missing" if value is None else f"expected an integer, got {json_type(value)} {_short(value)}"
    raise BadField(key, what)


def local_time_to_utc(value: Any, label: str, zone: ZoneInfo = MOSCOW) -> datetime | None:
    """A naive shop-local DATETIME (or ISO text) as an aware UTC datetime; None stays None."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise BadField(label, f"not a date-time: {_short(value)}") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:  # wall time in `zone` (fold=0 for the repeated autumn hour)
            return (value - zone.utcoffset(value)).replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), zone).astimezone(UTC)
    raise BadField(label, f"expected a date-time, got {json_type(value)}")


def _short(value: Any, limit: int = 40) -> str:
    r = repr(value)
    return r if len(r) <= limit else r[:limit] + "..."
