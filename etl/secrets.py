"""Keeping secrets (webhook codes, tokens, passwords) out of logs, reports and exception text.

Every secret that enters through configuration is registered here; `scrub()` replaces each
registered value by `***`, and a logging filter applies it to every log record. URLs are also
masked structurally (`redact_url`) so a webhook is recognisable (`https://portal/rest/1/***/`)
without being usable.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from urllib.parse import quote, quote_plus, unquote

_lock = threading.Lock()
_secrets: set[str] = set()
MASK = "***"


class Secret:
    """A string that never shows itself by accident: str()/repr() give `***`; use `.reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = lambda self: MASK if self._value else ""  # noqa: E731


def register(value: str | None) -> None:
    """Remember a secret value (and the secret parts of a URL) so that `scrub` hides it, in every
    form it may be printed in: as is, percent-encoded or decoded, JSON-escaped."""
    if not value or len(value) < 4:
        return
    parts = {value}
    for part in _url_secret_parts(value):
        parts.update((part, unquote(part)))
    forms = set()
    for part in parts:
        forms.update(_printed_forms(part))
    with _lock:
        _secrets.update(f for f in forms if len(f) >= 4)


def _printed_forms(value: str) -> set[str]:
    return {value, quote(value, safe=""), quote(value), quote_plus(value),
            json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_WEBHOOK_CODE = re.compile(r"(/rest/\d+/)([^/?#\s]+)")
_SECRET_PARAM = re.compile(r"([?&](?:auth|token|key|api_key|access_token|password)=)([^&#\s]+)", re.I)


def split_userinfo(url: str) -> tuple[str, str | None, str]:
    """`(scheme://, user-info, rest)`. The user-info runs to the LAST `@`: a password written
    unencoded may hold `@`, `/`, `?` or `#`, which `urlsplit` would cut into host, path and query
    (and so show). `(scheme://, None, rest)` without user-info; `("", None, url)` without a scheme."""
    m = _SCHEME.match(url)
    if not m:
        return "", None, url
    after = url[m.end():]
    if "@" not in after:
        return m.group(0), None, after
    userinfo, rest = after.rsplit("@", 1)
    return m.group(0), userinfo, rest


def normalise_userinfo(url: str) -> str:
    """The URL with its user and password percent-encoded where they were not, so `urlsplit` finds
    host, port and path where they are (`%XX` already there is kept)."""
    head, userinfo, rest = split_userinfo(url)
    if userinfo is None:
        return url
    user, sep, password = userinfo.partition(":")
    return f"{head}{quote(user, safe='%')}{sep}{quote(password, safe='%')}@{rest}"


def _url_secret_parts(value: str) -> list[str]:
    _, userinfo, rest = split_userinfo(value.strip())
    out = []
    if userinfo is not None and ":" in userinfo:
        out.append(userinfo.split(":", 1)[1])
    out += [m.group(2) for m in _WEBHOOK_CODE.finditer(rest)]
    out += [m.group(2) for m in _SECRET_PARAM.finditer(rest)]
    return out


def scrub(text: str) -> str:
    """Replace every registered secret in `text` by `***` (longest first, so parts do not leak)."""
    if not text:
        return text
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
    for v in values:
        if v in text:
            text = text.replace(v, MASK)
    return text


def redact_url(url: str) -> str:
    """`https://u:pw@host/rest/1/CODE/?auth=T#f` -> `https://u:***@host/rest/1/***/?auth=***`: the
    structure kept, the password, webhook code, secret query values and fragment gone (also when
    the password was not percent-encoded)."""
    head, userinfo, rest = split_userinfo(url)
    rest = rest.split("#", 1)[0]
    rest = _WEBHOOK_CODE.sub(lambda m: m.group(1) + MASK, rest)
    rest = _SECRET_PARAM.sub(lambda m: m.group(1) + MASK, rest)
    if userinfo is None:
        return head + rest
    user, sep, _ = userinfo.partition(":")
    return f"{head}{user}{sep}{MASK if sep else ''}@{rest}"


class ScrubFilter(logging.Filter):
    """Logging filter that scrubs secrets from the formatted message and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return True
