"""crm.company.* and crm.contact.*: add, update, get, list, fields (reference §6.1-6.4)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from etl.sandbox.bitrix24 import links, multifield
from etl.sandbox.bitrix24.errors import core_error, crm_error
from etl.sandbox.bitrix24.methods.base import (Call, Reply, Written, apply_written, array_param, entity_id,
                                               internalize, is_import, list_params, method)
from etl.sandbox.bitrix24.params import array_values, intval
from etl.sandbox.bitrix24.query import build_select, list_page, render
from etl.sandbox.bitrix24.schema import COMPANY, CONTACT, MULTIFIELD_TYPES, EntityKind
from etl.sandbox.bitrix24.store import Store

MISSING_TITLE = "The required field 'Company Name' is missing.<br />"


@dataclass(frozen=True)
class EntitySpec:
    kind: EntityKind
    not_found_on_update: str
    defaults: Callable[[Call], dict[str, Any]]
    check: Callable[[dict[str, Any]], None]
    bind: Callable[[Call, int, dict[str, Any], Written, bool], None]


def _audit(call: Call) -> dict[str, Any]:
    return {"ASSIGNED_BY_ID": call.user_id, "CREATED_BY_ID": call.user_id, "MODIFY_BY_ID": call.user_id,
            "DATE_CREATE": call.now_iso, "DATE_MODIFY": call.now_iso, "OPENED": "Y"}


def _company_defaults(call: Call) -> dict[str, Any]:
    return {"COMPANY_TYPE": "CUSTOMER", "CURRENCY_ID": "RUB", "IS_MY_COMPANY": "N", **_audit(call)}


def _contact_defaults(call: Call) -> dict[str, Any]:
    return {"TYPE_ID": "CLIENT", "EXPORT": "Y", **_audit(call)}


def _check_company(doc: dict[str, Any]) -> None:
    if not str(doc.get("TITLE") or "").strip():
        raise core_error(MISSING_TITLE)


def _check_nothing(doc: dict[str, Any]) -> None:
    return None


def _ids(value: Any) -> list[int]:
    return [intval(v) for v in array_values(value) if not isinstance(v, dict)]


def _bind_company(call: Call, company_id: int, doc: dict[str, Any], written: Written, is_update: bool) -> None:
    if "CONTACT_ID" in written.multiple:
        links.set_company_contacts(call.store, company_id, _ids(written.multiple["CONTACT_ID"]), replace=is_update)


def _bind_contact(call: Call, contact_id: int, doc: dict[str, Any], written: Written, is_update: bool) -> None:
    store = call.store
    has_ids = "COMPANY_IDS" in written.multiple
    has_primary = "COMPANY_ID" in written.scalars
    if not has_ids and not has_primary:
        return
    primary = written.scalars.get("COMPANY_ID") or 0
    current = store.links(contact_id) if is_update else []
    if has_ids:
        wanted = links.existing_ids(store, "company", _ids(written.multiple["COMPANY_IDS"]))
        if primary > 0 and primary not in wanted and store.exists("company", primary):
            wanted.insert(0, primary)
        if primary <= 0:
            old = next((c for c, _, _, p in current if p == "Y"), None)
            primary = old if old in wanted else (wanted[0] if wanted else 0)
        kept = {c: (s, r) for c, s, r, _ in current}
        new = [(c, kept.get(c, ((i + 1) * 10, 0))[0], kept.get(c, (0, 0))[1], "Y" if c == primary else "N")
               for i, c in enumerate(wanted)]
        links.save(store, contact_id, new, doc)
    elif primary > 0:
        if store.exists("company", primary):
            if not links.add(store, contact_id, primary, primary=True, doc=doc):
                links.save(store, contact_id, [(c, s, r, "Y" if c == primary else "N") for c, s, r, _ in current], doc)
    else:  # COMPANY_ID emptied: the primary binding goes
        links.save(store, contact_id, [link for link in current if link[3] != "Y"], doc)


COMPANY_SPEC = EntitySpec(COMPANY, "Company is not found", _company_defaults, _check_company, _bind_company)
CONTACT_SPEC = EntitySpec(CONTACT, "Contact is not found", _contact_defaults, _check_nothing, _bind_contact)


def _flags(store: Store, entity: str, entity_id: int, doc: dict[str, Any]) -> None:
    doc["HAS_PHONE"] = "Y" if store.has_multifield(entity, entity_id, "PHONE") else "N"
    doc["HAS_EMAIL"] = "Y" if store.has_multifield(entity, entity_id, "EMAIL") else "N"
    doc.setdefault("HAS_IMOL", "N")


def add(spec: EntitySpec, call: Call) -> Reply:
    fields = array_param(call, "fields")
    written = internalize(spec.kind, fields, importing=is_import(call))
    doc = spec.defaults(call)
    apply_written(doc, written)
    doc.pop("COMPANY_ID", None)  # a contact's primary company comes from its bindings
    spec.check(doc)
    changes = multifield.plan(written.multifields, allow_ids=False)
    added = {t for t, _, _ in changes.adds}
    doc["HAS_PHONE"] = "Y" if "PHONE" in added else "N"
    doc["HAS_EMAIL"] = "Y" if "EMAIL" in added else "N"
    doc["HAS_IMOL"] = "N"
    store = call.store
    new_id = store.insert(spec.kind.name, doc)
    multifield.apply(store, spec.kind.name, new_id, changes)
    store.register_user_fields(spec.kind.name, written.user_fields)
    if written.multiple or "COMPANY_ID" in written.scalars:
        spec.bind(call, new_id, doc, written, False)
        store.replace(spec.kind.name, new_id, doc)
    return Reply(new_id)


def update(spec: EntitySpec, call: Call) -> Reply:
    eid = entity_id(call)
    fields = array_param(call, "fields")
    store = call.store
    doc = store.get(spec.kind.name, eid)
    if doc is None:
        raise crm_error(spec.not_found_on_update)
    written = internalize(spec.kind, fields, update=True, importing=is_import(call))
    primary = doc.get("COMPANY_ID")
    apply_written(doc, written)
    if spec.kind is CONTACT:
        doc["COMPANY_ID"] = primary
        if primary is None:
            doc.pop("COMPANY_ID")
    spec.check(doc)
    changes = multifield.plan(written.multifields, allow_ids=True)
    doc["DATE_MODIFY"] = call.now_iso
    doc["MODIFY_BY_ID"] = call.user_id
    multifield.apply(store, spec.kind.name, eid, changes)
    if changes:
        _flags(store, spec.kind.name, eid, doc)
    store.register_user_fields(spec.kind.name, written.user_fields)
    spec.bind(call, eid, doc, written, True)
    store.replace(spec.kind.name, eid, doc)
    return Reply(True)


def get(spec: EntitySpec, call: Call) -> Reply:
    eid = entity_id(call)
    store = call.store
    doc = store.get(spec.kind.name, eid)
    if doc is None:
        raise crm_error("Not found")
    sel = build_select(spec.kind, ["*", "UF_*", *MULTIFIELD_TYPES], store.user_fields(spec.kind.name))
    return Reply(render(spec.kind, eid, doc, sel, store.multifields(spec.kind.name, [eid]).get(eid)))


def list_(spec: EntitySpec, call: Call) -> Reply:
    filter_, order, select = list_params(call)
    page = list_page(call.store, spec.kind, filter_, order, select, call.start, classic=True,
                     multifield_entity=spec.kind.name)
    return Reply(page.rows, page.total, page.next)


def fields(spec: EntitySpec, call: Call) -> Reply:
    out = {name: fd.describe(name) for name, fd in spec.kind.fields.items()}
    for name in call.store.user_fields(spec.kind.name):
        out[name] = {"type": "string", "isRequired": False, "isReadOnly": False, "isImmutable": False,
                     "isMultiple": False, "isDynamic": True, "title": name, "listLabel": name,
                     "formLabel": name, "filterLabel": name}
    return Reply(out)


def _register(prefix: str, spec: EntitySpec) -> None:
    for verb, fn in (("add", add), ("update", update), ("get", get), ("list", list_), ("fields", fields)):
        method(f"{prefix}.{verb}")(lambda call, fn=fn: fn(spec, call))


_register("crm.company", COMPANY_SPEC)
_register("crm.contact", CONTACT_SPEC)
