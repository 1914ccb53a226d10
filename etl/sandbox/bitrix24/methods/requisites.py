"""Requisites, their templates (presets), bank details and addresses (reference §6.6-6.9).

These are ORM-based lists on the portal: `start` is an exact offset, and every field is
selected by default.
"""
from __future__ import annotations

from typing import Any

from etl.sandbox.bitrix24.errors import crm_error
from etl.sandbox.bitrix24.methods.base import (Call, Reply, apply_written, array_param, entity_id, internalize,
                                               list_params, method)
from etl.sandbox.bitrix24.params import intval, php_string
from etl.sandbox.bitrix24.query import build_select, list_page, render
from etl.sandbox.bitrix24.schema import ADDRESS, BANKDETAIL, PRESET, REQUISITE, EntityKind

OWNER_TABLES = {3: "contact", 4: "company"}
ADDRESS_OWNER_TABLES = {3: "contact", 4: "company", 8: "requisite"}
ADDRESS_TYPES = {1, 4, 6, 8, 9, 11}
ALL_FIELDS = ("*", "UF_*")


def _int_field(fields: dict, name: str) -> int:
    value = fields.get(name)
    return intval(value) if not isinstance(value, dict) else 0


def _invalid(name: str) -> Exception:
    return crm_error(f"{name} is not defined or invalid.")


def _audit(call: Call) -> dict[str, Any]:
    return {"CREATED_BY_ID": call.user_id, "MODIFY_BY_ID": call.user_id, "DATE_CREATE": call.now_iso,
            "DATE_MODIFY": call.now_iso}


def _list(kind: EntityKind, call: Call) -> Reply:
    filter_, order, select = list_params(call)
    page = list_page(call.store, kind, filter_, order, select, call.start, classic=False, default_select=ALL_FIELDS)
    return Reply(page.rows, page.total, page.next)


def _get(kind: EntityKind, call: Call, not_found: str) -> Reply:
    eid = entity_id(call)
    doc = call.store.get(kind.name, eid)
    if doc is None:
        raise crm_error(not_found.format(id=eid))
    sel = build_select(kind, list(ALL_FIELDS), call.store.user_fields(kind.name))
    return Reply(render(kind, eid, doc, sel))


def _check_requisite_owner(call: Call, doc: dict[str, Any]) -> None:
    entity_type = doc.get("ENTITY_TYPE_ID") or 0
    if entity_type not in OWNER_TABLES:
        raise _invalid("ENTITY_TYPE_ID")
    if (doc.get("ENTITY_ID") or 0) <= 0:
        raise _invalid("ENTITY_ID")
    if (doc.get("PRESET_ID") or 0) <= 0 or not call.store.exists("preset", doc["PRESET_ID"]):
        raise _invalid("PRESET_ID")
    if not call.store.exists(OWNER_TABLES[entity_type], doc["ENTITY_ID"]):
        raise crm_error("Entity not found.")
    if not php_string(doc.get("NAME")).strip():
        raise _invalid("NAME")


# --- requisites ---------------------------------------------------------------------------------

@method("crm.requisite.add")
def requisite_add(call: Call) -> Reply:
    written = internalize(REQUISITE, array_param(call, "fields"))
    doc = {"ACTIVE": "Y", "ADDRESS_ONLY": "N", "SORT": 500, **_audit(call)}
    apply_written(doc, written)
    _check_requisite_owner(call, doc)
    new_id = call.store.insert(REQUISITE.name, doc)
    call.store.register_user_fields(REQUISITE.name, written.user_fields)
    return Reply(new_id)


@method("crm.requisite.update")
def requisite_update(call: Call) -> Reply:
    eid = entity_id(call)
    fields = array_param(call, "fields")
    doc = call.store.get(REQUISITE.name, eid)
    if doc is None:
        raise crm_error(f"The Requisite with ID '{eid}' is not found")
    written = internalize(REQUISITE, fields, update=True)
    apply_written(doc, written)
    if "PRESET_ID" in written.scalars:
        _check_requisite_owner(call, doc)
    doc.update(MODIFY_BY_ID=call.user_id, DATE_MODIFY=call.now_iso)
    call.store.replace(REQUISITE.name, eid, doc)
    call.store.register_user_fields(REQUISITE.name, written.user_fields)
    return Reply(True)


@method("crm.requisite.get")
def requisite_get(call: Call) -> Reply:
    return _get(REQUISITE, call, "The Requisite with ID '{id}' is not found")


@method("crm.requisite.list")
def requisite_list(call: Call) -> Reply:
    return _list(REQUISITE, call)


@method("crm.requisite.fields")
def requisite_fields(call: Call) -> Reply:
    return Reply({name: fd.describe(name) for name, fd in REQUISITE.fields.items()})


@method("crm.requisite.preset.list")
def preset_list(call: Call) -> Reply:
    return _list(PRESET, call)


# --- bank details -------------------------------------------------------------------------------

@method("crm.requisite.bankdetail.add")
def bankdetail_add(call: Call) -> Reply:
    written = internalize(BANKDETAIL, array_param(call, "fields"))
    doc = {"ACTIVE": "Y", "SORT": 500, **_audit(call)}
    apply_written(doc, written)
    requisite = call.store.get(REQUISITE.name, doc.get("ENTITY_ID") or 0) if (doc.get("ENTITY_ID") or 0) > 0 else None
    if requisite is None:
        raise _invalid("ENTITY_ID")
    if not php_string(doc.get("NAME")).strip():
        raise _invalid("NAME")
    if not doc.get("COUNTRY_ID"):
        preset = call.store.get(PRESET.name, requisite.get("PRESET_ID") or 0) or {}
        doc["COUNTRY_ID"] = preset.get("COUNTRY_ID", 1)
    return Reply(call.store.insert(BANKDETAIL.name, doc))


@method("crm.requisite.bankdetail.get")
def bankdetail_get(call: Call) -> Reply:
    return _get(BANKDETAIL, call, "The BankDetail with ID '{id}' is not found")


@method("crm.requisite.bankdetail.list")
def bankdetail_list(call: Call) -> Reply:
    return _list(BANKDETAIL, call)


# --- addresses ----------------------------------------------------------------------------------

@method("crm.address.add")
def address_add(call: Call) -> Reply:
    fields = array_param(call, "fields")
    type_id = _int_field(fields, "TYPE_ID")
    if type_id not in ADDRESS_TYPES:
        raise _invalid("TYPE_ID")
    owner_type = _int_field(fields, "ENTITY_TYPE_ID")
    if owner_type not in ADDRESS_OWNER_TABLES:
        raise _invalid("ENTITY_TYPE_ID")
    owner_id = _int_field(fields, "ENTITY_ID")
    if owner_id <= 0 or not call.store.exists(ADDRESS_OWNER_TABLES[owner_type], owner_id):
        raise _invalid("ENTITY_ID")
    taken = call.store.scalar(
        "SELECT 1 FROM address WHERE json_extract(doc,'$.ENTITY_ID') = ? AND json_extract(doc,'$.ENTITY_TYPE_ID') = ? "
        "AND json_extract(doc,'$.TYPE_ID') = ?", (owner_id, owner_type, type_id))
    if taken:
        raise crm_error("TypeAddress exists")
    written = internalize(ADDRESS, fields)
    doc: dict[str, Any] = {}
    apply_written(doc, written)
    doc.update(TYPE_ID=type_id, ENTITY_TYPE_ID=owner_type, ENTITY_ID=owner_id)
    if owner_type == 8:  # a requisite's address is anchored to the requisite's owner
        requisite = call.store.get(REQUISITE.name, owner_id) or {}
        doc.update(ANCHOR_TYPE_ID=requisite.get("ENTITY_TYPE_ID"), ANCHOR_ID=requisite.get("ENTITY_ID"))
    else:
        doc.update(ANCHOR_TYPE_ID=owner_type, ANCHOR_ID=owner_id)
    call.store.insert(ADDRESS.name, doc)
    return Reply(True)


@method("crm.address.list")
def address_list(call: Call) -> Reply:
    return _list(ADDRESS, call)
