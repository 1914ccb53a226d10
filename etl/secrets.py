"""Keeping secrets (webhook codes, tokens, passwords) out of logs, reports and exception text.

Every secret that enters through configuration is registered here; `scrub()` replaces each
registered value by `***`, and a logging filter applies it to every log record. URLs are also
masked structurally (`redact_url`) so a webhook is recognisable (`https://portal/rest/1/***/`)
without being usable.
"""
from __future__ import annotations

import logging
import re
import threading
from urllib.parse import urlsplit, urlunsplit

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
    """Remember a secret value (and the secret parts of a URL) so that `scrub` hides it."""
    if not value or len(value) < 4:
        return
    parts = {value}
    for part in _url_secret_parts(value):
        if len(part) >= 4:
            parts.add(part)
    with _lock:
        _secrets.update(parts)


def _url_secret_parts(value: str) -> list[str]:
    try:
        u = urlsplit(value)
    except ValueError:
        return []
    out = []
    if u.password:
        out.append(u.password)
    m = re.search(r"/rest/\d+/([^/]+)", u.path or "")
    if m:
        out.append(m.group(1))
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
    """`https://u:pw@host/rest/1/CODE/` -> `https://u:***@host/rest/1/***/` (structure kept, secrets gone)."""
    try:
        u = urlsplit(url)
    except ValueError:
        return MASK
    netloc = u.netloc
    if u.password:
        netloc = netloc.replace(":" + u.password + "@", ":" + MASK + "@")
    path = re.sub(r"(/rest/\d+/)[^/]+", r"\1" + MASK, u.path or "")
    query = re.sub(r"((?:auth|token|key|password)=)[^&]+", r"\1" + MASK, u.query or "", flags=re.I)
    return urlunsplit((u.scheme, netloc, path, query, ""))


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
