"""crm.contact.company.add / items.set / items.get (reference §6.5)."""
from __future__ import annotations

from etl.sandbox.bitrix24 import links
from etl.sandbox.bitrix24.errors import crm_error
from etl.sandbox.bitrix24.methods.base import Call, Reply, method
from etl.sandbox.bitrix24.params import array_values, intval, php_string, resolve_param

OWNER_INVALID = "The parameter ownerEntityID is invalid or not defined"
FIELDS_INVALID = "The parameter 'fields' is not valid"


def _contact(call: Call) -> int:
    raw = call.params.get("ID", call.params.get("id"))
    contact_id = intval(raw) if not isinstance(raw, dict) else 0
    if contact_id <= 0:
        raise crm_error(OWNER_INVALID)
    if not call.store.exists("contact", contact_id):
        raise crm_error("Not found")
    return contact_id


def _item(item: object) -> tuple[int, int | None, bool]:
    if not isinstance(item, dict):
        raise crm_error(FIELDS_INVALID)
    company_id = intval(item.get("COMPANY_ID")) if not isinstance(item.get("COMPANY_ID"), dict) else 0
    if company_id <= 0:
        raise crm_error(FIELDS_INVALID)
    sort = item.get("SORT")
    return (company_id, intval(sort) if sort not in (None, "") and not isinstance(sort, dict) else None,
            php_string(item.get("IS_PRIMARY")).upper() == "Y")


@method("crm.contact.company.add")
def add(call: Call) -> Reply:
    contact_id = _contact(call)
    company_id, sort, primary = _item(resolve_param(call.params, "fields"))
    if not call.store.exists("company", company_id):
        raise crm_error("Not found")
    return Reply(links.add(call.store, contact_id, company_id, primary=primary, sort=sort))


@method("crm.contact.company.items.set")
def items_set(call: Call) -> Reply:
    contact_id = _contact(call)
    items = resolve_param(call.params, "items")
    if not isinstance(items, dict):
        raise crm_error("The parameter items must be array")
    new: list[links.Link] = []
    for item in array_values(items):
        company_id, sort, primary = _item(item)
        if any(c == company_id for c, _, _, _ in new):
            continue
        if not call.store.exists("company", company_id):
            raise crm_error("Not found")
        if sort is None:
            sort = max((s for _, s, _, _ in new), default=0) + 10
        new.append((company_id, sort, 0, "Y" if primary else "N"))
    links.save(call.store, contact_id, new)
    return Reply(True)


@method("crm.contact.company.items.get")
def items_get(call: Call) -> Reply:
    contact_id = _contact(call)
    return Reply([{"COMPANY_ID": c, "SORT": s, "ROLE_ID": r, "IS_PRIMARY": p}
                  for c, s, r, p in call.store.links(contact_id)])
