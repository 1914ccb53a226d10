"""Merging duplicate records into one company per INN and one person per real contact.

Rules (DESIGN.md, "Dedup and merge"): the newest record wins per field, blanks are filled from the
others, phones and e-mails are united. Contacts are the same person when they share an e-mail, a
phone or a complete normalised full name, and their names do not conflict (transitively).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from etl.dto import BankAccount, Company, Contact, Phone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _newest_first(records: Sequence[Company | Contact]) -> list:
    return sorted(records, key=lambda r: r.updated_at or _EPOCH, reverse=True)


def _unite_phones(groups: Iterable[Iterable[Phone]]) -> tuple[Phone, ...]:
    seen: dict[tuple[str, str], Phone] = {}
    for phones in groups:
        for p in phones:
            seen.setdefault((p.e164, p.ext), p)
    return tuple(seen.values())


def _unite(groups: Iterable[Iterable[str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for g in groups for v in g))


def merge_companies(records: Sequence[Company]) -> Company:
    """One Company from several records with the same INN (newest first, blanks filled)."""
    if len(records) == 1:
        return records[0]
    ordered = _newest_first(records)
    base = ordered[0]
    filled = {}
    for name in ("kpp", "ogrn", "name", "full_name", "legal_form", "address"):
        if not getattr(base, name):
            filled[name] = next((getattr(r, name) for r in ordered if getattr(r, name)), "")
    banks: dict[tuple[str, str], BankAccount] = {}
    for r in ordered:
        for b in r.bank_accounts:
            banks.setdefault((b.bik, b.account), b)
    return replace(base, phones=_unite_phones(r.phones for r in ordered),
                   emails=_unite(r.emails for r in ordered), bank_accounts=tuple(banks.values()),
                   **filled)


def merge_contacts(records: Sequence[Contact]) -> Contact:
    if len(records) == 1:
        return records[0]
    ordered = _newest_first(records)
    base = ordered[0]
    filled = {}
    for name in ("first_name", "last_name", "middle_name", "position", "company_inn"):
        current = getattr(base, name)
        if not current or (name != "position" and len(current) <= 2 and current.endswith(".")):
            # blank, or only an initial ("И."): take the fullest value among the others
            best = max((getattr(r, name) for r in ordered), key=len, default="")
            if best and len(best) > len(current):
                filled[name] = best
    return replace(base, phones=_unite_phones(r.phones for r in ordered),
                   emails=_unite(r.emails for r in ordered), **filled)


# --- contact identity -------------------------------------------------------------------------

NameParts = tuple[str, str, str]  # normalised (last, first, middle)


def contact_keys(c: Contact, normalize: Callable[[str], str],
                 names: NameParts | None = None) -> list[tuple[str, str]]:
    """The match keys of a contact: ('email', e), ('phone', e164), ('name', 'last first middle').
    `names` are the contact's `name_parts` if the caller has them already."""
    keys = [("email", e) for e in c.emails]
    if c.phones:
        keys += [("phone", p.e164) for p in c.phones]
    last, first, middle = names if names is not None else name_parts(c, normalize)
    if last and first and middle and not (last[-1] == "." or first[-1] == "." or middle[-1] == "."):
        keys.append(("name", f"{last} {first} {middle}"))
    return keys


def name_parts(c: Contact, normalize: Callable[[str], str]) -> NameParts:
    return (normalize(c.last_name) if c.last_name else "", normalize(c.first_name) if c.first_name else "",
            normalize(c.middle_name) if c.middle_name else "")


@dataclass
class Person:
    """One real person of one company: the records that are the same person, merged on demand."""

    company_inn: str
    records: list[Contact] = field(default_factory=list)
    identity: str | None = None  # known identity (state store) if any record matched one
    _merged: Contact | None = field(default=None, repr=False, compare=False)

    def merged(self) -> Contact:
        """The merged record (computed once: records are complete when a Person is handed on)."""
        if self._merged is None:
            self._merged = merge_contacts(self.records)
        return self._merged


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def cluster_contacts(contacts: Sequence[Contact], *, normalize: Callable[[str], str],
                     conflict: Callable[[NameParts, NameParts], bool],
                     known: dict[tuple[str, str, str], tuple[str, NameParts]] | None = None,
                     keys: Sequence[list[tuple[str, str]]] | None = None,
                     names: Sequence[NameParts] | None = None) -> list[Person]:
    """Group contacts (any companies) into persons.

    `known` maps (company_inn, kind, value) to (identity, name parts) of persons already in the
    CRM/state store, so a record can join an existing person; a known person is linked only if the
    names do not conflict. `keys` and `names` are the records' `contact_keys` and `name_parts` if
    the caller has them already.
    """
    known = known or {}
    n = len(contacts)
    uf = _UnionFind(n)
    if names is None:
        names = [name_parts(c, normalize) for c in contacts]
    by_key: dict[tuple[str, str, str], list[int]] = {}
    identity_of: dict[int, str] = {}
    if keys is None:
        keys = [contact_keys(c, normalize) for c in contacts]
    union, find = uf.union, uf.find
    for i, c in enumerate(contacts):
        inn, mine = c.company_inn, names[i]
        for kind, value in keys[i]:
            k = (inn, kind, value)
            sharing = by_key.get(k)
            if sharing is None:
                by_key[k] = [i]
            else:
                for j in sharing:  # (two records already joined need no second look at their names)
                    if find(i) != find(j) and not conflict(mine, names[j]):
                        union(i, j)
                sharing.append(i)
            if known:
                hit = known.get(k)
                if hit and i not in identity_of and not conflict(mine, hit[1]):
                    identity_of[i] = hit[0]
    # records of one known identity belong together even when they share no key among themselves
    first_with: dict[str, int] = {}
    for i, ident in identity_of.items():
        if ident in first_with:
            uf.union(i, first_with[ident])
        else:
            first_with[ident] = i
    groups: dict[int, Person] = {}
    for i, c in enumerate(contacts):
        root = uf.find(i)
        p = groups.get(root)
        if p is None:
            p = groups[root] = Person(company_inn=c.company_inn)
        p.records.append(c)
        if p.identity is None and i in identity_of:
            p.identity = identity_of[i]
    return list(groups.values())
