"""crm.duplicate.findbycomm (reference §6.10).

The first 20 distinct non-empty values are searched (the rest silently ignored); phones match
whatever their formatting or extension. The answer lists ids per entity type with hits, or is an
empty PHP array (`[]`) when nothing matched. When one type reaches 20 ids the others are dropped.
"""
from __future__ import annotations

from etl.sandbox.bitrix24.errors import crm_error
from etl.sandbox.bitrix24.methods.base import Call, Reply, method
from etl.sandbox.bitrix24.multifield import normalize
from etl.sandbox.bitrix24.params import array_values, php_string, resolve_param

MAX_VALUES = 20
ENTITY_TABLES = {"LEAD": None, "CONTACT": "contact", "COMPANY": "company"}  # no leads in the emulator


@method("crm.duplicate.findbycomm")
def find_by_comm(call: Call) -> Reply:
    comm_type = resolve_param(call.params, "type")
    comm_type = php_string(comm_type).strip().upper() if not isinstance(comm_type, dict) else ""
    if not comm_type:
        raise crm_error("Communication type is not defined")
    if comm_type not in ("PHONE", "EMAIL"):
        raise crm_error(f"Communication type '{comm_type}' is not supported in current context")
    values = resolve_param(call.params, "values")
    if not isinstance(values, dict) or not values:
        raise crm_error("Communication values is not defined")
    entity_type = resolve_param(call.params, "entity_type")
    entity_type = php_string(entity_type).strip().upper() if not isinstance(entity_type, dict) else ""
    if entity_type and entity_type not in ENTITY_TABLES:
        raise crm_error(f"Entity type '{entity_type}' is not supported in current context")

    norms: list[str] = []
    for value in array_values(values):
        if isinstance(value, dict):
            continue
        text = php_string(value).strip()
        if not text:
            continue
        norm = normalize(comm_type, text)
        if norm and norm not in norms:
            norms.append(norm)
        if len(norms) == MAX_VALUES:
            break
    result: dict[str, list[int]] = {}
    if norms:
        for name, table in ENTITY_TABLES.items():
            if table is None or (entity_type and name != entity_type):
                continue
            ids = call.store.find_by_norm(comm_type, norms, table, MAX_VALUES)
            if len(ids) >= MAX_VALUES:
                return Reply({name: ids})
            if ids:
                result[name] = ids
    return Reply(result)
