"""Batch command strings, encoded the way PHP's `http_build_query` does (the portal reads them
back with `parse_url` + `parse_str`, reference §4.1).

    encode_command("crm.company.add", {"fields": {"TITLE": "ACME", "PHONE": [{"VALUE": "+7495"}]}})
    -> "crm.company.add?fields[TITLE]=ACME&fields[PHONE][0][VALUE]=%2B7495"

Rules (PHP semantics unless noted):

* nested mappings -> `a[b][c]=v`; sequences -> `a[0]=x&a[1]=y` (indexes from 0);
* values are percent-encoded with `+` for a space (`urlencode`), so `+` is `%2B`, `&` `%26`,
  `#` `%23`, `%` `%25`, `=` `%3D`, newlines `%0A`, Cyrillic as UTF-8 bytes; without this a `+`
  in a phone number would arrive as a space;
* `None` is omitted, and so are empty mappings/sequences (PHP drops them too: `parse_str`
  has no way to spell an empty array - send such a call with `call()`, whose JSON body can);
* `True`/`False` become `1`/`0` (PHP's rendering; Bitrix24 Y/N fields need "Y"/"N" strings);
* keys are encoded too (`filter[>ID]` -> `filter[%3EID]`), brackets kept readable;
* batch references such as `$result[c1]` or `$result[p1][49][ID]` are left as they are so
  that the batch reads naturally; the portal resolves them after decoding either way. Keep a
  reference the whole value: the portal's regex swallows everything up to the next whitespace.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus

#: A batch reference as the portal's regex sees it (case-insensitive), restricted to the
#: characters that need no encoding.
REFERENCE_RE = re.compile(r"\$(?:result|next|total|time|error)(?:\[[A-Za-z0-9_.:\-]*\])*",
                          re.IGNORECASE)


def encode_value(value: Any) -> str | None:
    """One scalar as PHP would print it, or None to omit it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"cannot encode {value!r} in a batch command")
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise TypeError(f"cannot encode a {type(value).__name__} in a batch command; "
                    f"pass str, int, float, bool, None, date/datetime, mappings or lists")


def _quote_text(text: str) -> str:
    """Percent-encode `text`, leaving batch references readable."""
    out, pos = [], 0
    for m in REFERENCE_RE.finditer(text):
        out.append(quote_plus(text[pos:m.start()], safe=""))
        out.append(m.group(0))
        pos = m.end()
    out.append(quote_plus(text[pos:], safe=""))
    return "".join(out)


def _pairs(prefix: str, value: Any, out: list[str]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _pairs(f"{prefix}[{quote_plus(str(k), safe='')}]", v, out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _pairs(f"{prefix}[{i}]", v, out)
    else:
        text = encode_value(value)
        if text is not None:
            out.append(f"{prefix}={_quote_text(text)}")


def build_query(params: Mapping[str, Any]) -> str:
    """PHP `http_build_query(params)` with readable brackets and literal batch references."""
    out: list[str] = []
    for key, value in params.items():
        name = quote_plus(str(key), safe="")
        if not name:
            raise ValueError("a batch command parameter needs a non-empty name")
        _pairs(name, value, out)
    return "&".join(out)


def encode_command(method: str, params: Mapping[str, Any] | None = None) -> str:
    """`method?query` as a batch `cmd` value."""
    if not method or any(c in method for c in "?&#= /"):
        raise ValueError(f"not a REST method name: {method!r}")
    query = build_query(params or {})
    return f"{method}?{query}" if query else method
