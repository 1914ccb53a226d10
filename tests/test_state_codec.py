"""The state store's codec writes the same text with orjson as with the standard library alone, and
reads it back to the same values (stored data must not depend on whether orjson is there)."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from etl.state import codec

pytest.importorskip("orjson")


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    label: str


class Fraction(float):
    pass


def _floats(rng: random.Random, n: int) -> list[float]:
    return [rng.uniform(1, 10) * 10.0 ** rng.randint(-12, 20) * rng.choice((1, -1)) for _ in range(n)]


def _values() -> list[object]:
    rng = random.Random(5)
    text = "".join(chr(i) for i in range(0x80)) + "\u2028\u2029йё😀"
    return [
        {"inn": "7707083893", "name": "ООО «Ромашка»", "phones": ["+74951234567"], "n": None},
        {"text": text, "control": "a\x00b\x1fc\x7f", "flag": True, "zero": 0, "big": 2 ** 63 - 1},
        {"floats": _floats(rng, 300), "tiny": [1e-5, 2.5e-7, 1e-9, 1e-4, 0.0001, 5e-324]},
        {"huge": [1e16, 1.5e300, 1e22, 12345678.9], "neg": -0.0},
        {"nan": math.nan, "inf": [math.inf, -math.inf], "null": None},
        [{"deep": [[{"nan": math.nan}]]}],
        {"at": datetime(2024, 5, 1, 12, 0, 1, 5, tzinfo=timezone.utc), "day": date(2024, 1, 2)},
        {"bytes": b"\x00\xff", "dec": Decimal("1.50"), "set": {"b", "a"}, "point": Point(0.5, "p")},
        {"sub": Fraction(0.25), "bigger": 2 ** 70, 3: "int key", None: "null key"},
        {"surrogate": "caf\udce9", "text null": "null 0.00001 e-5"},
        ("tuple", 1, None),
        "plain", 42, None, math.nan,
    ]


@pytest.mark.parametrize("value", _values(), ids=lambda v: type(v).__name__)
def test_orjson_and_the_standard_library_write_the_same_text(value, monkeypatch):
    fast = codec.to_json(value)
    monkeypatch.setattr(codec, "orjson", None)
    assert fast == codec.to_json(value)
    assert repr(codec.from_json(fast)) == repr(codec.from_json(fast.encode()))


@pytest.mark.parametrize("text", [
    '{"a":[1,2.5,null,"x"],"b":{"$bytes":"AP8="}}', '{"n":NaN}', '"caf\\udce9"', "not json", "",
    '{"big":123456789012345678901234567890}', '[1e-05,1e+16]'])
def test_reading_back_is_the_same_with_and_without_orjson(text, monkeypatch):
    fast = codec.from_json(text)
    monkeypatch.setattr(codec, "orjson", None)
    assert repr(fast) == repr(codec.from_json(text))
