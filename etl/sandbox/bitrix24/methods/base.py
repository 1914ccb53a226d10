"""What every method handler gets and returns, the method registry, and shared parameter rules."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from etl.sandbox.bitrix24.errors import crm_error
from etl.sandbox.bitrix24.params import PhpArray, intval, php_string, resolve_param
from etl.sandbox.bitrix24.query import is_user_field
from etl.sandbox.bitrix24.schema import EntityKind
from etl.sandbox.bitrix24.store import Store
from etl.sandbox.bitrix24.values import iso, store_user_field, store_value


@dataclass
class Call:
    """One method call: its parameters (without the reserved `start`), the portal's data, the caller."""

    params: PhpArray
    store: Store
    user_id: int
    now: float
    start: Any = None

    @property
    def now_iso(self) -> str:
        return iso(self.now)


@dataclass
class Reply:
    result: Any
    total: int | None = None
    next: int | None = None


Handler = Callable[[Call], Reply]
REGISTRY: dict[str, Handler] = {}


def method(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        REGISTRY[name] = fn
        return fn
    return register


# --- parameters ---------------------------------------------------------------------------------

def array_param(call: Call, name: str, *, required: bool = True) -> dict:
    """A top-level array parameter, case-insensitively; `Parameter 'x' must be array.` otherwise."""
    value = resolve_param(call.params, name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise crm_error(f"Parameter '{name}' must be array.")
    return value


def entity_id(call: Call) -> int:
    """`ID` or `id`, cast to int; `ID is not defined or invalid.` when absent or not positive."""
    raw = call.params.get("ID", call.params.get("id"))
    value = intval(raw) if not isinstance(raw, dict) else 0
    if value <= 0:
        raise crm_error("ID is not defined or invalid.")
    return value


def list_params(call: Call) -> tuple[dict, dict, list]:
    filter_ = array_param(call, "filter", required=False)
    order = array_param(call, "order", required=False)
    select = array_param(call, "select", required=False)
    return filter_, order, list(select.values())


def is_import(call: Call) -> bool:
    opts = resolve_param(call.params, "params")
    return isinstance(opts, dict) and php_string(opts.get("IMPORT")).upper() == "Y"


@dataclass
class Written:
    """The written `fields` sorted by what the portal does with them; unknown keys are gone."""

    scalars: dict[str, Any] = field(default_factory=dict)       # stored form, None = clear
    multifields: dict[str, Any] = field(default_factory=dict)   # PHONE/EMAIL/... raw arrays
    multiple: dict[str, Any] = field(default_factory=dict)      # COMPANY_IDS, CONTACT_ID raw
    user_fields: dict[str, Any] = field(default_factory=dict)


def internalize(kind: EntityKind, fields: dict, *, update: bool = False, importing: bool = False) -> Written:
    out = Written()
    for key, value in fields.items():
        if not isinstance(key, str):
            continue
        fd = kind.fields.get(key)
        if fd is None:
            if key.startswith("UF_CRM_") and is_user_field(kind, key):
                out.user_fields[key] = store_user_field(value)
            continue
        if fd.is_multifield:
            out.multifields[key] = value
            continue
        if key == "ID" or fd.type == "file":
            continue
        if fd.read_only and not (importing and key in kind.importable):
            continue
        if update and fd.immutable:
            continue
        if fd.multiple:
            out.multiple[key] = value
            continue
        out.scalars[key] = store_value(fd, value)
    return out


def apply_written(doc: dict[str, Any], written: Written) -> None:
    for source in (written.scalars, written.user_fields):
        for key, value in source.items():
            if value is None:
                doc.pop(key, None)
            else:
                doc[key] = value
