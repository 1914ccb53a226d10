"""Turning Python values into what every state backend can store, and back.

Backend-neutral: timestamps, JSON documents (raw source records, run counts, EGRUL payloads)
and key columns are encoded here once, so SQLite and MySQL hold byte-identical data.

- Timestamps are stored as UTC text `YYYY-MM-DD HH:MM:SS.ffffff` (sorts correctly, readable in
  any SQL shell, accepted as-is by a MySQL DATETIME(6) column); the API speaks aware datetimes.
- `to_json` never fails: values JSON cannot hold become something it can (datetimes as ISO text,
  Decimal as text, bytes as `{"$bytes": base64}` which `from_json` turns back into bytes, other
  objects as their repr). `raw_to_json` also caps the text at `RAW_LIMIT` characters.
- Encoding and decoding go through orjson when it is installed (several times faster: every
  reject and registry answer of a load is encoded once), falling back to the standard library
  wherever the two could differ, so the stored text is the same either way.
- Key columns are at most `KEY_LIMIT` characters (an indexable VARCHAR(255) on MySQL); longer
  keys are folded into a prefix plus a digest, deterministically, so lookups still find them.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime, time, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the standard library does it all
    orjson = None  # type: ignore[assignment]

RAW_LIMIT = 64 * 1024      # characters of JSON kept per raw record; more is cut with a marker
DETAIL_LIMIT = 8 * 1024    # characters kept of a human detail text
KEY_LIMIT = 255            # characters in a key column (identity, source id, contact key value)
_MAX_DEPTH = 64            # nesting kept when a value has to be rebuilt for JSON
_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def ts_to_db(value: datetime) -> str:
    """An aware datetime (naive ones are taken as UTC) as sortable UTC text."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime(_TS_FORMAT)


def ts_from_db(value: str | datetime | None) -> datetime | None:
    """Stored text (or a driver's naive datetime) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def clean_text(value: object, limit: int | None = None) -> str:
    """Any value as storable text: str(), lone surrogates made visible (`\\udcxx`), cut at `limit`."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    if not text.isascii():  # ASCII (most keys and codes) holds no surrogate: no need to look
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"...[cut: {len(text)} chars]"
    return text


def fold_key(value: object) -> str:
    """A key column value of at most KEY_LIMIT characters (long values: prefix + '~' + sha1)."""
    if type(value) is str and len(value) <= KEY_LIMIT and value.isascii():  # the common case, at once
        return value
    text = clean_text(value)
    if len(text) <= KEY_LIMIT:
        return text
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
    return text[: KEY_LIMIT - 41] + "~" + digest


def digest(*parts: str) -> str:
    h = hashlib.sha1()
    for part in parts:
        h.update(part.encode("utf-8", "backslashreplace"))
        h.update(b"\0")
    return h.hexdigest()


def _default(obj: Any) -> Any:
    """json.dumps fallback for the values source records and DTOs actually carry."""
    if isinstance(obj, (datetime, date, time)):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return dict(obj)
    return _safe_repr(obj)


def _safe_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not stop us storing the record
        return f"<unrepresentable {type(obj).__name__}>"


def _rebuild(obj: Any, depth: int, seen: set[int]) -> Any:
    """A JSON-safe copy of `obj` for what json.dumps refused: NaN, odd keys, cycles, deep nesting."""
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if depth >= _MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(obj, (dict, list, tuple)) or dataclasses.is_dataclass(obj) or isinstance(obj, Mapping):
        if id(obj) in seen:
            return "<circular>"
        seen.add(id(obj))
        try:
            if isinstance(obj, (list, tuple)):
                return [_rebuild(v, depth + 1, seen) for v in obj]
            items = obj.items() if isinstance(obj, Mapping) else _default(obj).items()
            return {(k if isinstance(k, str) else _safe_repr(k)): _rebuild(v, depth + 1, seen) for k, v in items}
        finally:
            seen.discard(id(obj))
    converted = _default(obj)
    return converted if isinstance(converted, str) else _rebuild(converted, depth + 1, seen)


# orjson writes what json.dumps would, except: NaN and infinities as null (json.dumps refuses them,
# and to_json stores their repr), floats below 1e-4 without json's exponent form (1e-05 as
# 0.00001, 1e-07 as 1e-7). Output that may hold such a float is encoded again by json.dumps (a
# false alarm, such as the text "0.00001" in a string, only costs that second encoding).
_ORJSON_FLOAT_FORM = re.compile(rb"0\.0000|e-\d(?!\d)")
_PLAIN = frozenset((str, int, bool, type(None)))
# what orjson.loads reads otherwise than json.loads with `_object_hook`: bytes markers, and
# integers beyond 64 bits (read as floats); 19 digits in a row may be one (or part of a string)
_ORJSON_READS_DIFFERENTLY = re.compile(r"\$bytes|\d{19}")
_ORJSON_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS) if orjson else 0


def _orjson_default(obj: Any) -> Any:
    """`_default` for orjson; a float subclass (json.dumps writes it as a number) is refused, so
    json.dumps encodes that value."""
    if isinstance(obj, float):
        raise TypeError("float subclass")
    return _default(obj)


def _orjson_dumps(obj: Any) -> str | None:
    """`obj` as to_json would encode it, or None where orjson might encode it differently."""
    try:
        data = orjson.dumps(obj, default=_orjson_default, option=_ORJSON_OPTIONS)
    except (TypeError, ValueError, RecursionError):  # orjson.JSONEncodeError is a TypeError
        return None
    if ((b"0.0000" in data or b"e-" in data) and _ORJSON_FLOAT_FORM.search(data)) or (
            b"null" in data and _may_hold_nonfinite(obj)):
        return None
    return data.decode("utf-8")


def _may_hold_nonfinite(obj: Any) -> bool:
    """Whether a NaN or infinity may be inside `obj` (which orjson encoded: no cycles). Values
    other than plain JSON ones count as maybe: `_default` may turn them into anything."""
    stack = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            stack += [v for v in value.values() if type(v) not in _PLAIN]
        elif kind is list or kind is tuple:
            stack += [v for v in value if type(v) not in _PLAIN]
        elif kind is float:
            if not math.isfinite(value):
                return True
        elif kind not in _PLAIN:
            return True
    return False


def to_json(obj: Any) -> str:
    """`obj` as JSON text; never raises (see the module docstring for what becomes what)."""
    if orjson is not None:
        text = _orjson_dumps(obj)
        if text is not None:
            return text
    try:
        text = json.dumps(obj, ensure_ascii=False, default=_default, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        try:
            text = json.dumps(_rebuild(obj, 0, set()), ensure_ascii=False, default=_safe_repr,
                              allow_nan=False, separators=(",", ":"))
        except Exception:  # noqa: BLE001 - last resort: the repr, which still says what it was
            text = json.dumps(clean_text(_safe_repr(obj)))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (e.g. from surrogateescape): escape them as \udcxx
        text = json.dumps(json.loads(text), ensure_ascii=True, separators=(",", ":"))
    return text


def raw_to_json(raw: Any, limit: int = RAW_LIMIT) -> str | None:
    """A raw source record as JSON text, or None for None; longer than `limit` -> a marker object."""
    if raw is None:
        return None
    text = to_json(raw)
    if len(text) > limit:
        text = json.dumps({"$truncated": {"chars": len(text), "head": text[:limit]}},
                          ensure_ascii=False, separators=(",", ":"))
    return text


def _object_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$bytes" in obj and isinstance(obj["$bytes"], str):
        try:
            return base64.b64decode(obj["$bytes"], validate=True)
        except ValueError:
            return obj
    return obj


def from_json(text: str | bytes | None) -> Any:
    """Stored JSON back as Python (bytes restored); text that is not JSON comes back unchanged."""
    if text is None:
        return None
    if orjson is not None and not _ORJSON_READS_DIFFERENTLY.search(text if isinstance(text, str) else
                                                                 text.decode("utf-8", "replace")):
        try:
            return orjson.loads(text)  # the same values; what it refuses goes the long way
        except ValueError:
            pass
    try:
        return json.loads(text, object_hook=_object_hook)
    except ValueError:
        return text
