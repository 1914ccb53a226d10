"""List methods: `filter`/`order`/`select`/`start` -> SQL and back (reference §5).

Filter keys carry an operator prefix: `=` (default), `!`/`!=`, `>`, `>=`, `<`, `<=`, `@` (IN),
`!@` (NOT IN), `%` (substring, case-insensitive), `=%`/`%=` (LIKE with explicit `%`), and their
negations `!%`, `!=%`, `!%=`. Multifields (PHONE, EMAIL, ...) match exactly. Unknown keys are
ignored, as the portal does. Operands are cast to the field's stored type first.

Paging: 50 rows a page. Legacy CRM lists (companies, contacts) floor `start` to a page; ORM
lists (requisites, bank details, presets, addresses) use it as an offset. `start=-1` skips the
count: no `next`, `total` 0.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from etl.sandbox.bitrix24.params import array_values, intval, php_string
from etl.sandbox.bitrix24.schema import MULTIFIELD_TYPES, EntityKind, FieldDef
from etl.sandbox.bitrix24.store import Store
from etl.sandbox.bitrix24.values import filter_value, output_value

PAGE = 50
_PREFIXES = ("!=%", "!%=", "!@", "!=", "!%", ">=", "<=", "=%", "%=", "@", "!", ">", "<", "=", "%")
_NAME = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_COMPARE = {">": ">", ">=": ">=", "<": "<", "<=": "<="}


def is_user_field(kind: EntityKind, name: str) -> bool:
    return kind.user_fields and name.startswith("UF_") and _NAME.match(name) is not None


def column(kind: EntityKind, name: str) -> tuple[str, FieldDef | None] | None:
    """SQL expression for a scalar field (the exact text the expression indexes use)."""
    if name == "ID" and kind.has_id:
        return "id", kind.fields["ID"]
    fd = kind.fields.get(name)
    if fd is not None and fd.is_scalar:
        return f"json_extract(doc,'$.{name}')", fd
    if fd is None and is_user_field(kind, name):
        return f"json_extract(doc,'$.{name}')", None
    return None


def _split_key(key: Any) -> tuple[str, str]:
    key = php_string(key).strip()
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return prefix, key[len(prefix):].strip().upper()
    return "", key.upper()


def _is_empty(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, str) and value == "")


def build_where(kind: EntityKind, filter_: dict, store_entity: str | None = None) -> tuple[str, list[Any]]:
    """SQL condition and parameters for a `filter` array; `store_entity` enables multifield keys."""
    parts: list[str] = ["1=1"]
    args: list[Any] = []
    for raw_key, value in filter_.items():
        op, name = _split_key(raw_key)
        if store_entity and name in MULTIFIELD_TYPES and kind.fields.get(name):
            values = [php_string(v).strip() for v in array_values(value) if not isinstance(v, dict)]
            if not values:
                continue
            marks = ",".join("?" * len(values))
            sub = (f"id IN (SELECT entity_id FROM multifield WHERE entity = ? AND type_id = ? "
                   f"AND value IN ({marks}))")
            parts.append(("NOT " if op.startswith("!") else "") + sub)
            args.extend([store_entity, name, *values])
            continue
        col = column(kind, name)
        if col is None:
            continue
        expr, fd = col
        cond = _condition(op, expr, fd, value, args)
        if cond:
            parts.append(cond)
    return " AND ".join(parts), args


def _condition(op: str, expr: str, fd: FieldDef | None, value: Any, args: list[Any]) -> str | None:
    is_list = isinstance(value, dict)
    if op in ("", "=", "@", "!", "!=", "!@"):
        negate = op.startswith("!")
        if is_list or op in ("@", "!@"):
            values = [filter_value(fd, v) for v in array_values(value) if not isinstance(v, dict)]
            if not values:
                return "1=0" if not negate else None
            marks = ",".join("?" * len(values))
            args.extend(values)
            return f"({expr} IS NULL OR {expr} NOT IN ({marks}))" if negate else f"{expr} IN ({marks})"
        if _is_empty(value):
            return f"({expr} IS NOT NULL AND {expr} <> '')" if negate else f"({expr} IS NULL OR {expr} = '')"
        args.append(filter_value(fd, value))
        return f"({expr} IS NULL OR {expr} <> ?)" if negate else f"{expr} = ?"
    if op in _COMPARE:
        if is_list:
            value = next(iter(array_values(value)), None)
        if value is None:
            return None
        args.append(filter_value(fd, value))
        return f"{expr} {_COMPARE[op]} ?"
    # LIKE family: case-insensitive, over every value of an array operand (OR)
    negate = op.startswith("!")
    explicit = "=" in op
    needles = [php_string(v).casefold() for v in array_values(value) if not isinstance(v, dict)]
    if not needles:
        return None
    ors = []
    for needle in needles:
        args.append(needle)
        ors.append(f"casefold({expr}) LIKE ?" if explicit else f"instr(casefold({expr}), ?) > 0")
    cond = "(" + " OR ".join(ors) + ")"
    return f"({expr} IS NULL OR NOT {cond})" if negate else cond


def build_order(kind: EntityKind, order: dict) -> str:
    terms = []
    has_id = False
    for raw_key, direction in order.items():
        col = column(kind, php_string(raw_key).strip().upper())
        if col is None:
            continue
        has_id = has_id or col[0] == "id"
        desc = php_string(direction).strip().upper() == "DESC"
        terms.append(f"{col[0]} {'DESC' if desc else 'ASC'}")
    if kind.has_id and not has_id:
        terms.append("id ASC")
    if not terms:
        terms.append("id ASC")
    return ", ".join(terms)


@dataclass(frozen=True)
class Selection:
    scalars: tuple[str, ...]
    user_fields: tuple[str, ...]
    multifields: tuple[str, ...]


def build_select(kind: EntityKind, select: list[Any], known_user_fields: list[str],
                 default: tuple[str, ...] = ("*",)) -> Selection:
    names = [php_string(v).strip().upper() for v in select if not isinstance(v, dict)] or list(default)
    wanted = set(names)
    star = "*" in wanted
    scalars = tuple(n for n, fd in kind.fields.items()
                    if fd.is_scalar and (star or n in wanted or (n == "ID" and kind.has_id)))
    ufs: list[str] = []
    if kind.user_fields:
        ufs = [n for n in known_user_fields if "UF_*" in wanted or n in wanted]
        ufs += [n for n in names if is_user_field(kind, n) and n not in ufs and n != "UF_*"]
    multis = tuple(n for n in MULTIFIELD_TYPES if n in wanted and n in kind.fields)
    return Selection(scalars, tuple(ufs), multis)


def multifield_items(rows: list[tuple[int, str, str, str]], type_id: str) -> list[dict[str, str]]:
    return [{"ID": str(mid), "VALUE_TYPE": vt, "VALUE": value, "TYPE_ID": t}
            for mid, t, vt, value in rows if t == type_id]


def render(kind: EntityKind, entity_id: int, doc: dict[str, Any], sel: Selection,
           multis: list[tuple[int, str, str, str]] | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    for name in sel.scalars:
        rec[name] = str(entity_id) if name == "ID" else output_value(doc.get(name))
    for name in sel.user_fields:
        rec[name] = output_value(doc.get(name))
    for type_id in sel.multifields:
        items = multifield_items(multis or [], type_id)
        if items:
            rec[type_id] = items
    return rec


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int
    next: int | None


def list_page(store: Store, kind: EntityKind, filter_: dict, order: dict, select: list[Any], start: Any,
              *, classic: bool, multifield_entity: str | None = None,
              default_select: tuple[str, ...] = ("*",)) -> Page:
    where, args = build_where(kind, filter_, multifield_entity)
    order_sql = build_order(kind, order)
    sel = build_select(kind, select, store.user_fields(kind.name), default_select)
    start_n = intval(start)
    count = start_n != -1
    if not count:
        offset = 0
    elif classic:
        offset = max(int(start_n / PAGE), 0) * PAGE  # iNumPage = intval(start / 50) + 1
    else:
        offset = max(start_n, 0)
    found = store.rows(f"SELECT id, doc FROM {kind.name} WHERE {where} ORDER BY {order_sql} LIMIT ? OFFSET ?",
                       (*args, PAGE, offset))
    multis: dict[int, list] = {}
    if sel.multifields and multifield_entity and found:
        multis = store.multifields(multifield_entity, [r[0] for r in found])
    rows = [render(kind, rid, json.loads(doc), sel, multis.get(rid)) for rid, doc in found]
    if not count:
        return Page(rows, 0, None)
    total = int(store.scalar(f"SELECT count(*) FROM {kind.name} WHERE {where}", args))
    nxt = offset + PAGE if classic else offset + len(rows)
    return Page(rows, total, nxt if total > nxt else None)
