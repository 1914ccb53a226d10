"""The truth rules (RULES.md) as small pure functions.

The generator knows what every record it writes *means* (which INN text, which valid phones and
e-mails, which name parts a careful reader takes from it); these functions turn that meaning into
the expected outcome: the first failing reject reason, and which loaded contact records are the
same person. They deliberately do not import the project's transformers or validators: the
ground truth must not share code (or bugs) with what it checks.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from stdnum.ru import inn as stdnum_inn

from etl import rejects

# Rule 5 removes exactly these before judging the INN's shape.
_INN_SEPARATORS = re.compile(r"[ \t\-./]+")

NOT_IN_REGISTRY = "NOT_FOUND"


def check_inn_text(raw: str | None) -> tuple[str | None, str | None]:
    """(inn, None) if `raw` is a valid INN after compaction, else (None, reason) — rules 4-6."""
    if raw is None or not raw.strip():
        return None, rejects.NO_INN
    inn = _INN_SEPARATORS.sub("", raw.strip())
    if len(inn) not in (10, 12) or not (inn.isascii() and inn.isdigit()) or len(set(inn)) == 1:
        return None, rejects.INN_FORMAT
    if not stdnum_inn.is_valid(inn):
        return None, rejects.INN_CHECKSUM
    return inn, None


def company_reason(*, deleted: bool, active: bool, inn_text: str | None,
                   registry: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(clean INN or None, first failing reason or None) for one company source record.

    `registry` maps INN -> EGRUL status; an INN it lacks is not in the register.
    """
    if deleted:
        return None, rejects.SOURCE_DELETED
    if not active:
        return None, rejects.SOURCE_INACTIVE
    inn, reason = check_inn_text(inn_text)
    if reason:
        return None, reason
    status = registry.get(inn, NOT_IN_REGISTRY)
    if status == NOT_IN_REGISTRY:
        return inn, rejects.EGRUL_NOT_FOUND
    if status != "ACTIVE":
        return inn, rejects.inactive(status)
    return inn, None


def contact_reason(*, deleted: bool, company_reason: str | None, has_name: bool,
                   has_phone: bool, has_email: bool) -> str | None:
    """The first failing reason for one contact record (rules for contacts, 2-5)."""
    if deleted:
        return rejects.SOURCE_DELETED
    if company_reason is not None:
        return rejects.COMPANY_REJECTED
    if not (has_name or has_phone or has_email):
        return rejects.CONTACT_EMPTY
    return None


# --- contact identity ---------------------------------------------------------------------------

def normalise(text: str) -> str:
    return " ".join(text.lower().replace("ё", "е").split())


def is_initial(part: str) -> bool:
    return len(part.rstrip(".")) == 1


def _given_conflict(x: str, y: str) -> bool:
    if not x or not y:
        return False
    x, y = normalise(x).rstrip("."), normalise(y).rstrip(".")
    if x == y:
        return False
    if len(x) == 1 or len(y) == 1:
        return x[0] != y[0]
    return True


def names_conflict(a: Sequence[str], b: Sequence[str]) -> bool:
    """(last, first, middle) pairs that cannot be one person."""
    if a[0] and b[0] and normalise(a[0]) != normalise(b[0]):
        return True
    return _given_conflict(a[1], b[1]) or _given_conflict(a[2], b[2])


def full_name_key(parts: Sequence[str]) -> str | None:
    """The normalised full name when all three parts are present (an initial is not a part: the
    generator never relies on initials matching, so both readings give the same truth)."""
    if not all(parts) or is_initial(parts[1]) or is_initial(parts[2]):
        return None
    return normalise(" ".join(parts))


@dataclass(slots=True)
class PersonRecord:
    """A loaded contact record (or a seed contact) as the truth sees it."""

    key: str                      # "shop-a:contact:123", "shop-b:contact:0002000456", "seed:p7"
    person: str                   # the world person it was written for (for stable truth keys)
    name: tuple[str, str, str]    # canonical (last, first, middle), "" when absent
    phones: frozenset[str]
    emails: frozenset[str]
    updated: datetime
    seed: bool = False

    def match_keys(self) -> list[tuple[str, str]]:
        keys = [("e", e) for e in self.emails] + [("p", p) for p in self.phones]
        name = full_name_key(self.name)
        if name:
            keys.append(("n", name))
        return keys

    def links(self, other: PersonRecord) -> bool:
        """Same person by the rules (one shared key and no name conflict)?"""
        shared = bool(self.emails & other.emails or self.phones & other.phones)
        if not shared:
            name = full_name_key(self.name)
            shared = name is not None and name == full_name_key(other.name)
        return shared and not names_conflict(self.name, other.name)


class BridgeError(Exception):
    """A record would join two persons that are already separate cards in the CRM."""


@dataclass
class Persons:
    """The persons of one company (one INN): groups of records, built by the rules.

    `build` is the full load (union-find over all records at once); `add` is one later record
    (an event): it joins the one person it links to, or starts a new one. A record linking two
    existing persons raises BridgeError, because a loader that never deletes could not merge two
    existing cards; the generator avoids writing such events.
    """

    groups: list[list[PersonRecord]] = field(default_factory=list)

    @classmethod
    def build(cls, records: Iterable[PersonRecord]) -> Persons:
        recs = list(records)
        parent = list(range(len(recs)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        by_key: dict[tuple[str, str], list[int]] = {}
        for i, r in enumerate(recs):
            for k in r.match_keys():
                for j in by_key.get(k, ()):
                    if not names_conflict(r.name, recs[j].name):
                        ri, rj = find(i), find(j)
                        if ri != rj:
                            parent[max(ri, rj)] = min(ri, rj)
                by_key.setdefault(k, []).append(i)
        groups: dict[int, list[PersonRecord]] = {}
        for i, r in enumerate(recs):
            groups.setdefault(find(i), []).append(r)
        return cls([groups[k] for k in sorted(groups)])

    def copy(self) -> Persons:
        return Persons([list(g) for g in self.groups])

    def targets(self, record: PersonRecord) -> set[int]:
        """Indexes of the groups this record belongs to (same source record or linked)."""
        hit = set()
        for gi, group in enumerate(self.groups):
            for r in group:
                if r.key == record.key or record.links(r):
                    hit.add(gi)
                    break
        return hit

    def add(self, record: PersonRecord) -> None:
        hit = self.targets(record)
        if len(hit) > 1:
            raise BridgeError(record.key)
        if hit:
            self.groups[hit.pop()].append(record)
        else:
            self.groups.append([record])


def merged_name(group: Sequence[PersonRecord]) -> tuple[str, str, str]:
    """Per field: a seed (already in the CRM) value wins, then the newest record; a blank or a
    bare initial is filled from the others."""
    ordered = sorted(group, key=lambda r: (not r.seed, -r.updated.timestamp(), r.key))
    out = []
    for i in range(3):
        values = [r.name[i] for r in ordered if r.name[i]]
        full = [v for v in values if not is_initial(v)]
        out.append(full[0] if full else (values[0] if values else ""))
    return out[0], out[1], out[2]
