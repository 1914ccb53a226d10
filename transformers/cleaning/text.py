"""Text repair and whitespace cleaning.

Shop A stores two encodings side by side in latin1 columns (cp1251 bytes from the old PHP site,
UTF-8 bytes from the 2021+ admin panel); shop B and others may hand us strings that were already
decoded with the wrong codec (mojibake). `decode_legacy` turns both into proper text:

* bytes: strict UTF-8 first, else cp1251 (a cp1251 Russian text is practically never valid UTF-8:
  its lower-case letters are UTF-8 lead bytes that need continuation bytes);
* str: three kinds of mojibake are repaired, each by re-encoding with the codec that was wrongly
  used and decoding with the right one (registry reference, section 7):

  =====================================  ==================  ==========================================
  what happened                          looks like          repair
  =====================================  ==================  ==========================================
  UTF-8 bytes read as latin-1 / cp1252   ``ÐžÐžÐž``          encode latin-1 / cp1252, decode UTF-8
  cp1251 bytes read as latin-1 / cp1252  ``ÎÎÎ "Ðîìàøêà"``  encode latin-1 / cp1252, decode cp1251
  UTF-8 bytes read as cp1251             ``РћРћРћ``          encode cp1251, decode UTF-8
  =====================================  ==================  ==========================================

  A repair is accepted only when the strict decode succeeds (UTF-8 routes) or the result is mostly
  Cyrillic (the cp1251 route), so correct text (Cyrillic, ``Café Müller GmbH``) stays unchanged.
  ftfy's "sloppy" codecs supply the byte tables that also cover the bytes the standard codecs leave
  undefined. A string that is not suspicious (pure ASCII, or no character a mojibake is made of)
  is returned after one regex search: about a microsecond.
"""
from __future__ import annotations

import codecs
import re

import ftfy.bad_codecs  # noqa: F401 - registers the sloppy-windows-125x codecs

_CP1251_HIGH = bytes(range(0x80, 0xC0)).decode("sloppy-windows-1251")
# Latin-1 letters À..ÿ: a cp1251 Cyrillic letter (0xC0-0xFF) or a UTF-8 lead byte (Ð, Ñ) read as
# latin-1/cp1252. Or: Р/С (UTF-8 lead bytes 0xD0/0xD1 read as cp1251) followed by a character
# from cp1251's 0x80-0xBF half (a UTF-8 continuation byte read as cp1251).
_SUSPECT = re.compile("[\u00c0-\u00ff]|[РС][" + re.escape(_CP1251_HIGH) + "\ufffd]")
# Control characters (not the whitespace ones, which become spaces), zero-width and format
# characters, bidi embeddings, overrides and isolates (a name shown reversed), lone surrogates
# (unencodable), BOM and non-characters.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e"
                      "\u2060-\u2069\ud800-\udfff\ufeff\ufffe\uffff]+")
_CYRILLIC_SHARE = 0.6
_decode_cp1251 = codecs.getdecoder("sloppy-windows-1251")  # bound once: the by-name lookup costs


def _decode_bytes(raw: bytes) -> tuple[str, bool]:
    """(text, was UTF-8): strict UTF-8, else cp1251. Decoding with "replace" and looking for
    U+FFFD avoids the cost of an exception on every cp1251 value."""
    text = raw.decode("utf-8", "replace")
    if "\ufffd" not in text:
        return text, True
    if text[-1] == "\ufffd" and "\ufffd" not in text[:-1]:
        # UTF-8 cut in the middle of a character (the admin panel's UTF-8 bytes through a latin1
        # connection: VARCHAR(255) keeps 255 bytes): the text without the stub, not cp1251
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.end == len(raw) and e.reason == "unexpected end of data":
                return raw[:e.start].decode("utf-8"), True
    if b"\xef\xbf\xbd" in raw:  # a real U+FFFD in the data: only a strict decode can tell
        try:
            return raw.decode("utf-8"), True
        except UnicodeDecodeError:
            pass
    return _decode_cp1251(raw)[0], False


def _cyrillic_share(text: str) -> float:
    letters = cyrillic = 0
    for ch in text:
        if ch.isalpha():
            letters += 1
            if "\u0400" <= ch <= "\u04ff":
                cyrillic += 1
    return cyrillic / letters if letters else 0.0


def _latin_bytes(text: str) -> bytes | None:
    """The bytes `text` was decoded from, if it was decoded as latin-1 or cp1252."""
    for codec in ("latin-1", "sloppy-windows-1252"):
        try:
            return text.encode(codec)
        except UnicodeEncodeError:
            continue
    return None


def repair_mojibake(text: str) -> str:
    """Undo a wrong decode (see the module docstring); correct text comes back unchanged."""
    if text.isascii() or not _SUSPECT.search(text):
        return text
    raw = _latin_bytes(text)
    if raw is not None:
        try:
            return raw.decode("utf-8")               # UTF-8 read as latin-1/cp1252
        except UnicodeDecodeError:
            fixed = raw.decode("sloppy-windows-1251")  # cp1251 read as latin-1/cp1252
            return fixed if _cyrillic_share(fixed) > _CYRILLIC_SHARE else text
    try:
        # UTF-8 read as cp1251; U+FFFD can only stand for 0x98, the one byte cp1251 leaves undefined
        raw = text.replace("\ufffd", "\x98").encode("sloppy-windows-1251")
        fixed = raw.decode("utf-8")
    except UnicodeError:
        return text
    return fixed if _cyrillic_share(fixed) > _CYRILLIC_SHARE else text


def decode_legacy(value: bytes | bytearray | memoryview | str | None) -> str:
    """Proper text from shop bytes (strict UTF-8, else cp1251) or from a possibly mis-decoded str.

    Numbers become their decimal text (a sandbox database may hand an INN back as an int). Any
    other type raises TypeError: the caller turns it into a `bad_record` naming the field.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return repair_mojibake(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        text, utf8 = _decode_bytes(bytes(value))
        return repair_mojibake(text) if utf8 else text
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise TypeError(f"expected text, got {type(value).__name__}")


def clean_text(text: str | None) -> str:
    """Drop control characters (NUL included), collapse every run of whitespace (NBSP, tabs,
    newlines, ...) to one space, trim."""
    if not text:
        return ""
    if not text.isprintable():
        text = _CONTROL.sub("", text)
    return " ".join(text.split())


def text_of(value: bytes | str | None) -> str:
    """`clean_text(decode_legacy(value))`, the one call a transformer makes per text field, with
    the common cases (ASCII, clean UTF-8, cp1251 bytes, clean str) inlined: ~1 µs."""
    if value is None:
        return ""
    kind = type(value)
    if kind is str:
        text = value
        if not text.isascii() and _SUSPECT.search(text):
            text = repair_mojibake(text)
    elif kind is bytes:
        if value.isascii():
            text = value.decode("ascii")
        else:
            text, utf8 = _decode_bytes(value)
            if utf8 and _SUSPECT.search(text):
                text = repair_mojibake(text)
    else:
        text = decode_legacy(value)
    if not text.isprintable():
        text = _CONTROL.sub("", text)
    return " ".join(text.split())
