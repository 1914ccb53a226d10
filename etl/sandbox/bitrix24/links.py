"""Contact <-> company bindings (reference §6.5) and the contact's `COMPANY_ID` (its primary company).

A binding has a SORT, a ROLE_ID and an IS_PRIMARY flag; exactly one binding of a contact is
primary when it has any. The contact document keeps `COMPANY_ID` = the primary company, so
`crm.contact.list` can filter on it like the portal.
"""
from __future__ import annotations

from etl.sandbox.bitrix24.store import Store

Link = tuple[int, int, int, str]  # company id, sort, role id, "Y"/"N"


def normalise(links: list[Link]) -> list[Link]:
    """One primary: the first flagged one, else the first by order given."""
    if not links:
        return []
    primary = next((c for c, _, _, p in links if p == "Y"), links[0][0])
    return [(c, s, r, "Y" if c == primary else "N") for c, s, r, _ in links]


def save(store: Store, contact_id: int, links: list[Link], doc: dict | None = None) -> None:
    """Replace the contact's bindings and keep its COMPANY_ID in step (doc is saved if not given)."""
    links = normalise(links)
    store.set_links(contact_id, links)
    primary = next((c for c, _, _, p in links if p == "Y"), None)
    own = doc is None
    if own:
        doc = store.get("contact", contact_id)
        if doc is None:
            return
    if primary is None:
        doc.pop("COMPANY_ID", None)
    else:
        doc["COMPANY_ID"] = primary
    if own:
        store.replace("contact", contact_id, doc)


def add(store: Store, contact_id: int, company_id: int, *, primary: bool = False, sort: int | None = None,
        doc: dict | None = None) -> bool:
    """Bind one company; False when it is already bound. The first binding becomes primary."""
    links = store.links(contact_id)
    if any(c == company_id for c, _, _, _ in links):
        return False
    if sort is None:
        sort = max((s for _, s, _, _ in links), default=0) + 10
    make_primary = primary or not links
    links = [(c, s, r, "N" if make_primary else p) for c, s, r, p in links]
    links.append((company_id, sort, 0, "Y" if make_primary else "N"))
    links.sort(key=lambda x: (x[1], x[0]))
    save(store, contact_id, links, doc)
    return True


def existing_ids(store: Store, table: str, ids: list[int]) -> list[int]:
    seen: list[int] = []
    for i in ids:
        if i > 0 and i not in seen and store.exists(table, i):
            seen.append(i)
    return seen


def set_company_contacts(store: Store, company_id: int, contact_ids: list[int], *, replace: bool) -> None:
    """`CONTACT_ID` written on a company: bind these contacts (on update: only these)."""
    wanted = existing_ids(store, "contact", contact_ids)
    if replace:
        for contact_id in store.contacts_of(company_id):
            if contact_id not in wanted:
                save(store, contact_id, [l for l in store.links(contact_id) if l[0] != company_id])
    for contact_id in wanted:
        add(store, contact_id, company_id)

