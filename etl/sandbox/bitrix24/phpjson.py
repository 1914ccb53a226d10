"""PHP `json_encode` shapes, which Bitrix24 clients have to live with (reference §4.3).

An empty PHP array is `[]` even where a map is meant (`"result_error": []`), and a map whose
keys are exactly 0..n-1 in order is a JSON list. Applying this to every response reproduces
both quirks wherever the real portal shows them.
"""
from __future__ import annotations

from typing import Any


def php_shape(value: Any) -> Any:
    if isinstance(value, dict):
        if not value:
            return []
        i = 0
        for k in value:
            if k != i or type(k) is not int:
                return {str(k): php_shape(v) for k, v in value.items()}
            i += 1
        return [php_shape(v) for v in value.values()]
    if isinstance(value, (list, tuple)):
        return [php_shape(v) for v in value]
    return value
