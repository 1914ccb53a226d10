"""How a Bitrix24 portal reads request parameters (reference §1.2), in PHP array terms.

Values are modelled the way PHP sees them after `parse_str`/`json_decode(..., true)`: every
array is a `dict` whose keys are `int` for canonical decimal strings and `str` otherwise, in
insertion order. JSON lists become dicts with keys 0..n-1, exactly as in PHP. Scalars stay str
(query/form) or the JSON scalar type.

* `parse_str(qs)`: PHP's `parse_str` (`a[b][c]=v`, `a[]=v`, `+` -> space, `.`/space in the top
  name -> `_`, text after a closing `]` ignored, unterminated `[` handling).
* `request_params(...)`: query string first; a POST body overrides it key by key
  (`array_replace`): JSON only with `Content-Type: application/json` (invalid JSON -> `{}`),
  multipart form fields, anything else through `parse_str`.
* `resolve_param(...)`: the case-insensitive top-level lookup of CRM handlers.
"""
from __future__ import annotations

import json
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import unquote_plus

PhpArray = dict  # keys: int | str, insertion-ordered, like a PHP array

_INT_KEY = re.compile(r"(?:0|-?[1-9][0-9]{0,18})\Z")
_INT64 = 2**63


def php_key(key: str) -> int | str:
    """PHP turns a canonical decimal string key into an integer key (`"7"` -> 7, `"07"` stays)."""
    if _INT_KEY.match(key):
        n = int(key)
        if -_INT64 <= n < _INT64:
            return n
    return key


def _next_index(arr: PhpArray) -> int:
    ints = [k for k in arr if isinstance(k, int)]
    return max(max(ints) + 1, 0) if ints else 0


_SEGMENT = re.compile(r"\[([^\]]*)\]")


def register_variable(target: PhpArray, name: str, value: Any) -> None:
    """Store `value` under a PHP variable name such as `fields[PHONE][0][VALUE]` (php_register_variable_ex)."""
    name = name.lstrip(" ")
    bracket = name.find("[")
    head = name if bracket == -1 else name[:bracket]
    if " " in head or "." in head:
        head = head.replace(" ", "_").replace(".", "_")  # only before the first `[`
    if not head:
        return  # PHP drops a variable without a name
    rest = ""
    if bracket == -1:
        base = head
    elif name.find("]", bracket + 1) == -1:
        base = head + "_" + name[bracket + 1:]  # not an index: PHP un-terminates the name
    else:
        base, rest = head, name[bracket:]
    keys: list[str | None] = [base]
    pos = 0
    while True:  # `[a][b]...`; text after a `]` that does not open another `[` is ignored
        m = _SEGMENT.match(rest, pos)
        if m is None:
            break  # also an unterminated `[`: the value lands on the path parsed so far
        keys.append(m.group(1) or None)
        pos = m.end()
    cur = target
    for key in keys[:-1]:
        k = _next_index(cur) if key is None else php_key(key)
        nxt = cur.get(k)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[k] = nxt
        cur = nxt
    last = keys[-1]
    cur[_next_index(cur) if last is None else php_key(last)] = value


def _decode(text: str) -> str:
    return unquote_plus(text) if ("%" in text or "+" in text) else text


def parse_str(query: str) -> PhpArray:
    """PHP `parse_str`: `a[b][]=1&c=x+y` -> {"a": {"b": {0: "1"}}, "c": "x y"}."""
    out: PhpArray = {}
    if not query:
        return out
    for pair in query.split("&"):
        if not pair:
            continue
        name, sep, value = pair.partition("=")
        register_variable(out, _decode(name), _decode(value) if sep else "")
    return out


def php_from_json(value: Any) -> Any:
    """`json_decode($s, true)`: lists and objects become PHP arrays with normalised keys."""
    if isinstance(value, dict):
        return {php_key(k): php_from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return {i: php_from_json(v) for i, v in enumerate(value)}
    return value


def parse_json_body(body: bytes) -> PhpArray:
    try:
        decoded = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return {}  # the portal treats broken JSON as no parameters at all
    decoded = php_from_json(decoded)
    return decoded if isinstance(decoded, dict) else {}


def parse_multipart(body: bytes, content_type: str) -> PhpArray:
    """Form fields of a multipart/form-data body (files are not parameters)."""
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1")
                                              + b"\r\n\r\n" + body)
    out: PhpArray = {}
    if not msg.is_multipart():
        return out
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name or part.get_filename():
            continue
        payload = part.get_payload(decode=True) or b""
        register_variable(out, str(name), payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return out


def request_params(query: str, body: bytes, content_type: str, is_post: bool) -> PhpArray:
    """The parameters a portal hands to a method (CRestUtil::getRequestData)."""
    params = parse_str(query)
    if not is_post:
        return params
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "multipart/form-data":
        post = parse_multipart(body, content_type)
    elif mime == "application/json":
        post = parse_json_body(body)
    else:
        post = parse_str(body.decode("utf-8", "replace"))
    params.update(post)  # array_replace: body wins, top level only
    return params


# --- what handlers use ------------------------------------------------------------------------

def resolve_param(params: PhpArray, name: str) -> Any:
    """CCrmRestHelper::resolveParam: exact, UPPER, lower, Capitalized, arCapitalized."""
    cap = name[:1].upper() + name[1:].lower()
    for candidate in (name, name.upper(), name.lower(), cap, "ar" + cap):
        if candidate in params:
            return params[candidate]
    return None


def intval(value: Any) -> int:
    """PHP `intval`: leading integer of a string, 0 for anything else."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value and abs(value) < 2**63 else 0
    if isinstance(value, str):
        m = re.match(r"\s*([+-]?\d+)", value)
        return int(m.group(1)) if m else 0
    return 0


def floatval(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        m = re.match(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", value)
        return float(m.group(1)) if m else 0.0
    return float(bool(value))


def php_string(value: Any) -> str:
    """PHP string cast of a scalar: true -> "1", false/null -> ""."""
    if value is True:
        return "1"
    if value is False or value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def array_values(value: Any) -> list[Any]:
    """The values of a PHP array; a scalar counts as a one-element list, null as none."""
    if isinstance(value, dict):
        return list(value.values())
    if value is None:
        return []
    return [value]


def php_bool(value: Any) -> bool:
    """How the portal reads flags such as `halt`: 1/"1"/true/"true"/"Y"."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "y", "yes")
    return bool(value)
