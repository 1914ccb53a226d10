"""Cleaning helpers every shop transformer shares: pure functions, cheap enough for ~1M calls.

* text: `decode_legacy` (cp1251/UTF-8 bytes, mojibake), `clean_text`, `text_of` (both at once)
* phones: `clean_phones` -> E.164 `Phone`s with extensions kept apart
* emails: `clean_emails` -> lower-cased valid addresses
* names: `split_full_name`, `tidy_name_part`, `normalize_name`, `full_name_key`, `names_conflict`
"""
from transformers.cleaning.emails import clean_emails
from transformers.cleaning.names import (
    FullName,
    full_name_key,
    names_conflict,
    normalize_name,
    split_full_name,
    tidy_name,
    tidy_name_part,
)
from transformers.cleaning.phones import clean_phones
from transformers.cleaning.text import clean_text, decode_legacy, repair_mojibake, text_of

__all__ = [
    "FullName", "clean_emails", "clean_phones", "clean_text", "decode_legacy", "full_name_key",
    "names_conflict", "normalize_name", "repair_mojibake", "split_full_name", "text_of", "tidy_name",
    "tidy_name_part",
]
