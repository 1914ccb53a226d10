"""`batch`: up to 50 commands in one HTTP request (reference §4), CRestProvider::methodsBatch.

* `cmd` (any case, like `halt`) maps a key to a string `method?querystring`; non-strings are
  skipped. The string is split like PHP `parse_url` (a `#` ends the query) and the query is
  read with `parse_str`, so `+` means a space there.
* Commands after the 50th are not run; each gets ERROR_BATCH_LENGTH_EXCEEDED. A nested
  `batch` gets ERROR_BATCH_METHOD_NOT_ALLOWED. `halt` stops after the first failed command.
* References `$result[key][field]...` (and `$next`, `$total`, `$time`, `$error`) are resolved in
  every parameter value: a value that is exactly one reference takes the referenced value as is
  (arrays too); inside a longer text only scalars are substituted. The reference swallows text
  up to the next whitespace, and a missing path segment stops the walk where it is.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from etl.sandbox.bitrix24.errors import BATCH_LENGTH_EXCEEDED, BATCH_METHOD_NOT_ALLOWED, RestError
from etl.sandbox.bitrix24.params import php_bool, php_from_json, php_key, php_string, parse_str
from etl.sandbox.bitrix24.methods.base import Reply

BATCH_MAX_LENGTH = 50
NOT_ALLOWED_IN_BATCH = frozenset({"batch", "download", "upload"})
_REFERENCE = re.compile(r"\$(result|next|total|time|error)([^\s]*)", re.IGNORECASE)
_SEGMENT = re.compile(r"\[([^\]]+)\]")


class Outcome:
    """What one call produced: a result (with optional total/next and its time block) or an error."""

    __slots__ = ("result", "total", "next", "time", "error")

    def __init__(self, result: Any = None, total: int | None = None, next_: int | None = None,
                 time: dict[str, Any] | None = None, error: RestError | None = None) -> None:
        self.result, self.total, self.next, self.time, self.error = result, total, next_, time, error


Execute = Callable[[str, dict], Outcome]


def split_command(command: str) -> tuple[str, str]:
    """`crm.company.add?fields[TITLE]=A#x` -> ("crm.company.add", "fields[TITLE]=A")."""
    path, _, query = command.partition("?")
    if "#" in path:
        path = path.split("#", 1)[0]
        query = ""
    return path.lower(), query.split("#", 1)[0]


def _step(data: Any, segment: str) -> tuple[Any, bool]:
    key = php_key(segment)
    if isinstance(data, dict) and key in data:
        return data[key], True
    if isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
        return data[key], True
    return data, False


def resolve_references(text: str, collected: dict[str, dict]) -> Any:
    """CRestUtil::processBatchElement for one parameter value."""
    value: Any = text
    for match in list(_REFERENCE.finditer(text)):
        whole = match.group(0)
        segments = _SEGMENT.findall(match.group(2))
        if not segments:
            continue
        data: Any = collected[match.group(1).lower()]
        for segment in segments:
            data, found = _step(data, segment)
            if not found:
                break
        if isinstance(value, str) and whole == value:
            value = php_from_json(data) if isinstance(data, (dict, list)) else data
        elif isinstance(value, str):
            if isinstance(data, (int, float)) and not isinstance(data, bool):
                data = php_string(data)
            if isinstance(data, str):
                value = value.replace(whole, data)
    return value


def substitute(params: Any, collected: dict[str, dict]) -> Any:
    if isinstance(params, dict):
        return {k: substitute(v, collected) for k, v in params.items()}
    if isinstance(params, str) and "$" in params:
        return resolve_references(params, collected)
    return params


def run_batch(params: dict, execute: Execute) -> tuple[Reply, int]:
    """Run the commands; returns the batch reply and how many commands were executed."""
    query = {(k.lower() if isinstance(k, str) else k): v for k, v in params.items()}
    halt = php_bool(query.get("halt", False))
    commands = query.get("cmd")
    collected: dict[str, dict] = {"result": {}, "next": {}, "total": {}, "time": {}, "error": {}}
    executed = 0
    if isinstance(commands, dict):
        for index, (key, command) in enumerate(commands.items()):
            if index >= BATCH_MAX_LENGTH:
                collected["error"][key] = BATCH_LENGTH_EXCEEDED.payload()
                if halt:
                    break
                continue
            if not isinstance(command, str):
                continue
            method, query_string = split_command(command)
            if method in NOT_ALLOWED_IN_BATCH:
                outcome = Outcome(error=BATCH_METHOD_NOT_ALLOWED)
            else:
                outcome = execute(method, substitute(parse_str(query_string), collected))
                executed += 1
            if outcome.error is not None:
                collected["error"][key] = outcome.error.payload()
                if halt:
                    break
                continue
            collected["result"][key] = outcome.result
            if outcome.time is not None:
                collected["time"][key] = outcome.time
            if outcome.next is not None:
                collected["next"][key] = outcome.next
            if outcome.total is not None:
                collected["total"][key] = outcome.total
    return Reply({"result": collected["result"], "result_error": collected["error"],
                  "result_total": collected["total"], "result_next": collected["next"],
                  "result_time": collected["time"]}), executed
