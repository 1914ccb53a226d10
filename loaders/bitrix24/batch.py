"""Batch commands and answers: key checks, the result object, and the PHP JSON quirks.

The portal answers a batch with five maps keyed by command key (`result`, `result_error`,
`result_total`, `result_next`, `result_time`). PHP's `json_encode` turns an empty map into
`[]` and a map whose keys are exactly 0..n-1 into a JSON list, so every map is normalised
back to `{key: value}` here (reference §4.3).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loaders.bitrix24.errors import BATCH_FATAL_CODES, BitrixError, classify

MAX_COMMANDS = 50
_KEY_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
_FULL_REF_RE = re.compile(r"^\$(result|next|total|time|error)((?:\[[^\]]*\])*)$", re.IGNORECASE)
_EMBEDDED_REF_RE = re.compile(r"\$(result|next|total|time|error)((?:\[[^\]\s]*\])*)", re.IGNORECASE)

Command = tuple[str, Mapping[str, Any]]


@dataclass
class BatchResult:
    """What one batch did. Keys are the caller's keys (as given, e.g. int or str).

    * `results[key]`  - the command's `result` (present only for commands that succeeded);
    * `errors[key]`   - a `BitrixError` with the portal's code and text for commands that failed;
    * `totals[key]`, `nexts[key]` - paging data of list commands;
    * `times[key]`    - the command's `time` block;
    * `not_run`       - keys the portal did not execute (after an error with `halt=True`).
    """

    results: dict[Any, Any] = field(default_factory=dict)
    errors: dict[Any, BitrixError] = field(default_factory=dict)
    totals: dict[Any, int] = field(default_factory=dict)
    nexts: dict[Any, int] = field(default_factory=dict)
    times: dict[Any, dict[str, Any]] = field(default_factory=dict)
    not_run: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.not_run

    def merge(self, other: "BatchResult") -> None:
        """Fold a re-run of some commands into this result (the later outcome wins)."""
        for key in list(other.results) + list(other.errors):
            self.errors.pop(key, None)
            self.results.pop(key, None)
        self.results.update(other.results)
        self.errors.update(other.errors)
        self.totals.update(other.totals)
        self.nexts.update(other.nexts)
        self.times.update(other.times)
        done = set(self.results) | set(self.errors)
        self.not_run = [k for k in dict.fromkeys(self.not_run + other.not_run) if k not in done]


def normalise_commands(commands: Mapping[Any, Command] | Sequence[Command]) -> dict[str, tuple[Any, Command]]:
    """`{wire key: (caller key, (method, params))}`, checked.

    A sequence gets keys `c0`, `c1`, ... (never bare 0..n-1, which PHP would turn into a list).
    """
    if isinstance(commands, Mapping):
        items: Iterable[tuple[Any, Any]] = commands.items()
    else:
        items = ((f"c{i}", cmd) for i, cmd in enumerate(commands))
    out: dict[str, tuple[Any, Command]] = {}
    for key, cmd in items:
        wire = str(key)
        if not _KEY_RE.match(wire):
            raise ValueError(f"batch command key {key!r} must be 1-100 characters of "
                             f"A-Z a-z 0-9 _ . : - (it is used inside $result[...] references)")
        if wire in out:
            raise ValueError(f"batch command key {key!r} is used twice")
        if not (isinstance(cmd, tuple) and len(cmd) == 2 and isinstance(cmd[0], str)
                and (cmd[1] is None or isinstance(cmd[1], Mapping))):
            raise ValueError(f"batch command {key!r} must be (method, params mapping), got {cmd!r:.80}")
        out[wire] = (key, (cmd[0], cmd[1] or {}))
    if len(out) > MAX_COMMANDS:
        raise ValueError(f"a batch holds at most {MAX_COMMANDS} commands, got {len(out)}; "
                         f"use batch_many() to split them")
    return out


def as_map(value: Any) -> dict[str, Any]:
    """A PHP map as JSON gave it: `{}`, `[]` (empty), or a list (keys 0..n-1)."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


def parse_batch(body: Mapping[str, Any], sent: Mapping[str, tuple[Any, Command]]) -> BatchResult:
    """Turn the `result` of a batch answer into a `BatchResult` (keys mapped back to the
    caller's)."""
    inner = body.get("result")
    inner = inner if isinstance(inner, Mapping) else {}
    back = {wire: caller for wire, (caller, _) in sent.items()}

    def key_of(wire: str) -> Any:
        return back.get(wire, wire)

    out = BatchResult()
    for wire, value in as_map(inner.get("result")).items():
        out.results[key_of(wire)] = value
    for wire, err in as_map(inner.get("result_error")).items():
        method = sent[wire][1][0] if wire in sent else None
        if isinstance(err, Mapping):
            raw = err.get("error")
            code = "" if raw in (None, 0, "0", False) else str(raw)
            extra = {k: v for k, v in err.items() if k not in ("error", "error_description")}
            error = classify(code, str(err.get("error_description") or ""), None,
                             method=method, key=wire, extra=extra, fatal=BATCH_FATAL_CODES)
        else:
            error = classify("", str(err), None, method=method, key=wire, fatal=BATCH_FATAL_CODES)
        out.errors[key_of(wire)] = error
        out.results.pop(key_of(wire), None)
    for wire, value in as_map(inner.get("result_total")).items():
        if (n := _int(value)) is not None:
            out.totals[key_of(wire)] = n
    for wire, value in as_map(inner.get("result_next")).items():
        if (n := _int(value)) is not None:
            out.nexts[key_of(wire)] = n
    for wire, value in as_map(inner.get("result_time")).items():
        if isinstance(value, Mapping):
            out.times[key_of(wire)] = dict(value)
    done = set(out.results) | set(out.errors)
    out.not_run = [caller for caller, _ in sent.values() if caller not in done]
    return out


def resolve_references(value: Any, answered: BatchResult, wire_keys: Mapping[str, Any]) -> Any:
    """Replace `$result[key]...` references to commands already answered by their values, the
    way the portal would (whole value -> raw value, embedded -> scalars only). Used when some
    commands of a batch are sent again on their own. References to other keys stay."""
    if isinstance(value, Mapping):
        return {k: resolve_references(v, answered, wire_keys) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve_references(v, answered, wire_keys) for v in value]
    if not isinstance(value, str) or "$" not in value:
        return value
    found, resolved = _lookup(_FULL_REF_RE.match(value), answered, wire_keys)
    if found:
        return resolved

    def embed(m: re.Match[str]) -> str:
        ok, v = _lookup(m, answered, wire_keys)
        if ok and isinstance(v, (str, int, float)) and not isinstance(v, bool):
            return str(v)
        return m.group(0)

    return _EMBEDDED_REF_RE.sub(embed, value)


def _lookup(m: re.Match[str] | None, answered: BatchResult,
            wire_keys: Mapping[str, Any]) -> tuple[bool, Any]:
    if m is None:
        return False, None
    kind = m.group(1).lower()
    path = re.findall(r"\[([^\]]*)\]", m.group(2))
    if not path or path[0] not in wire_keys:
        return False, None
    source = {"result": answered.results, "next": answered.nexts, "total": answered.totals,
              "time": answered.times, "error": answered.errors}[kind]
    caller = wire_keys[path[0]]
    if caller not in source:
        return False, None
    value: Any = source[caller]
    for part in path[1:]:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            break  # the portal stops at a missing segment and uses what it has
    return True, value


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
