"""E-mail addresses typed by people: several per cell, mixed case, junk around them.

Validation is a sane RFC 5322 subset (dot-atom local part, dotted domain with a letter TLD or
an IDN `xn--` label, Cyrillic domains such as `.рф` allowed), not a DNS check.
"""
from __future__ import annotations

import re

from transformers.cleaning.text import decode_legacy

# What people put between addresses (and around them: `Name <a@b.ru>`).
_SEPARATORS = re.compile(r"[\s,;<>()\[\]\"'«»]+")
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9а-яё](?:[a-z0-9а-яё-]{0,61}[a-z0-9а-яё])?"
_VALID = re.compile(
    rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?:{_LABEL}\.)+(?:[a-zа-яё]{{2,63}}|xn--[a-z0-9-]{{1,59}})"
)
_TRIM = ".:-_"
_MAX_LEN = 254
_MAX_LOCAL = 64


def clean_emails(text: object) -> tuple[str, ...]:
    """Every valid address in `text`, trimmed and lower-cased, in order, without repeats.

    `text` is normally a str; bytes are decoded, a list or tuple is read item by item, anything
    else holds no address.
    """
    if not text:
        return ()
    if isinstance(text, (list, tuple)):
        found: list[str] = []
        for item in text:
            found.extend(e for e in clean_emails(item) if e not in found)
        return tuple(found)
    if not isinstance(text, str):
        if not isinstance(text, (bytes, bytearray)):
            return ()
        text = decode_legacy(text)
    if "@" not in text:
        return ()
    single = text.strip().lower()
    if len(single) <= _MAX_LEN and _VALID.fullmatch(single) and single.index("@") <= _MAX_LOCAL:
        return (single,)  # the usual cell: one clean address
    out: list[str] = []
    for candidate in _SEPARATORS.split(text.lower()):
        if "@" not in candidate or len(candidate) > _MAX_LEN + 8:
            continue
        if candidate.startswith("mailto:"):
            candidate = candidate[7:]
        candidate = candidate.rstrip(_TRIM)
        m = _VALID.fullmatch(candidate)
        if m and len(candidate) <= _MAX_LEN and len(m.group("local")) <= _MAX_LOCAL and candidate not in out:
            out.append(candidate)
    return tuple(out)
