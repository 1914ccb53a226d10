"""Shop B's change events (sources/README.md) as they arrive on the topic, and their effect on the
truth: BP_CREATED (a new partner), BP_CHANGED (a full snapshot: a new phone, e-mail or contact, a
block, an activation), BP_DELETED (only the PARTNER). Some events are delivered twice.

Events never delete anything from the CRM: a deleted or blocked partner is reported (its reject
becomes the record's latest outcome) and its cards stay.
"""
from __future__ import annotations

import copy
import json
import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from etl.sandbox.generator import messy
from etl.sandbox.generator.ground_truth import CompanyTruth
from etl.sandbox.generator.records import COMPANY, SHOP_B, Appearance, CompanyRecord, ContactRecord
from etl.sandbox.generator.rules import BridgeError
from etl.sandbox.generator.shop_b import ShopB, sap_time
from etl.sandbox.generator.world import RealCompany, World

PARTNER_EVENT_SHARE = 0.02     # partners of the export that change later
DUPLICATE_DELIVERY = 0.15
CHANGE_KINDS = (("new_phone", 25), ("new_email", 20), ("new_contact", 25), ("blocked", 10),
                ("deleted", 8), ("activated", 12))


@dataclass
class Partner:
    """A partner as the topic last described it, with the meaning of each part."""

    element: dict
    company: CompanyRecord
    contacts: list[ContactRecord]


class EventMaker:
    def __init__(self, world: World, shop_b: ShopB, now: datetime) -> None:
        self.world = world
        self.shop_b = shop_b
        self.start = now

    def _time(self, rng: random.Random, after: datetime | None) -> datetime:
        base = after or self.start
        return base + timedelta(seconds=rng.randint(1, 6 * 3600))

    def _event(self, rng: random.Random, kind: str, partner: dict, at: datetime) -> dict:
        return {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "event_type": kind,
                "occurred_at": at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "partner": partner}

    def changes(self, c: RealCompany, rng: random.Random, partner: Partner,
                truth: CompanyTruth) -> tuple[list[dict], CompanyTruth]:
        """One to three events for an exported partner; returns them and the truth after them."""
        events: list[dict] = []
        at: datetime | None = None
        n = 1 if rng.random() < 0.75 else rng.randint(2, 3)
        for _ in range(n):
            at = self._time(rng, at)
            kind = _weighted_kind(rng, partner)
            trial = truth.copy()
            try:
                event, partner_after = self._change(c, rng, partner, kind, at, trial)
            except BridgeError:
                trial = truth.copy()
                event, partner_after = self._change(c, rng, partner, "new_phone", at, trial)
            events.append(event)
            truth, partner = trial, partner_after
            if event["event_type"] == "BP_DELETED":
                break
        return events, truth

    def created(self, c: RealCompany, rng: random.Random, appearances: list[Appearance],
                truth: CompanyTruth) -> tuple[list[dict], CompanyTruth]:
        """A partner SAP creates after the export (maybe a prospect that becomes a customer)."""
        at = self._time(rng, None)
        prospect = rng.random() < 0.2
        element, rec, contacts = self.shop_b.partner(c, rng, appearances, changed=at,
                                                     status="E0001" if prospect else "E0002")
        trial = truth.copy()
        try:
            trial.apply_snapshot(rec, contacts)
        except BridgeError:  # its people would join two existing cards: create it without them
            element["CONTACTS"] = []
            contacts = []
            trial = truth.copy()
            trial.apply_snapshot(rec, contacts)
        events = [self._event(rng, "BP_CREATED", element, at)]
        truth = trial
        if prospect and rng.random() < 0.7:
            partner = Partner(element, rec, contacts)
            at = self._time(rng, at)
            trial = truth.copy()
            try:
                event, _ = self._change(c, rng, partner, "activated", at, trial)
            except BridgeError:
                trial = truth.copy()
                event, _ = self._change(c, rng, partner, "new_phone", at, trial)
            events.append(event)
            truth = trial
        return events, truth

    # -- one change -----------------------------------------------------------------------------

    def _change(self, c: RealCompany, rng: random.Random, partner: Partner, kind: str, at: datetime,
                truth: CompanyTruth) -> tuple[dict, Partner]:
        number = partner.element["PARTNER"]
        if kind == "deleted":
            truth.apply_deleted((SHOP_B, COMPANY, number))
            return self._event(rng, "BP_DELETED", {"PARTNER": number}, at), partner
        el = copy.deepcopy(partner.element)
        el["CHANGED_AT"] = sap_time(at)
        rec = replace(partner.company, updated=at, inn=None, reason=None)
        contacts = [replace(r, company=rec, updated=at, reason=None) for r in partner.contacts]
        if kind == "new_phone":
            phone = self.world.landline(c.area_code)
            el["COMM"]["PHONE"].append({"TEL_NUMBER": messy.phone_text(phone, rng), "TEL_EXTENS": ""})
            rec.phones = rec.phones | {phone}
        elif kind == "new_email":
            self._new_email(c, rng, el, rec, contacts)
        elif kind == "new_contact":
            self._new_contact(c, rng, el, rec, contacts)
        elif kind == "blocked":
            el["STATUS"] = "E0003"
            rec.active = False
        elif kind == "activated":
            el["STATUS"] = "E0002"
            rec.active = True
        truth.apply_snapshot(rec, contacts)
        return self._event(rng, "BP_CHANGED", el, at), Partner(el, rec, contacts)

    @staticmethod
    def _new_email(c: RealCompany, rng: random.Random, el: dict, rec: CompanyRecord,
                   contacts: list[ContactRecord]) -> None:
        """A person starts using another address (or, with no one to give it to, the company
        publishes its second one)."""
        people = [i for i, r in enumerate(contacts) if r.person and not r.deleted]
        if not people:
            el["COMM"]["EMAIL"].append({"SMTP_ADDR": messy.email_text(c.emails[1], rng)})
            rec.emails = rec.emails | {c.emails[1]}
            return
        i = rng.choice(people)
        person = c.persons[int(contacts[i].person[1:])]
        el["CONTACTS"][i]["COMM"].setdefault("EMAIL", []).append(
            {"SMTP_ADDR": messy.email_text(person.alt_email, rng)})
        contacts[i] = replace(contacts[i], emails=contacts[i].emails | {person.alt_email})

    def _new_contact(self, c: RealCompany, rng: random.Random, el: dict, rec: CompanyRecord,
                     contacts: list[ContactRecord]) -> None:
        present = {r.person for r in contacts}
        others = [p for p in c.persons if p.key not in present]
        if others and rng.random() < 0.4:
            person = rng.choice(others)          # someone the other shop (or partner) knows
            a = Appearance(person, messy.NAME_FULL, email=True, mobile=False, work=rng.random() < 0.5)
        else:
            person = self.world.person(c, rng)   # someone new
            a = Appearance(person, messy.NAME_FULL, email=True, mobile=True, work=rng.random() < 0.5)
        contacts.append(self.shop_b.add_contact(el, rec, c, a, rng))

    # -- the topic ------------------------------------------------------------------------------

    @staticmethod
    def topic_lines(events: list[dict], rng: random.Random) -> list[str]:
        """`{"key": PARTNER, "value": "<the JSON message>"}` lines; some delivered twice."""
        lines = []
        for e in events:
            line = json.dumps({"key": e["partner"]["PARTNER"],
                               "value": json.dumps(e, ensure_ascii=False)}, ensure_ascii=False)
            lines.append(line)
            if rng.random() < DUPLICATE_DELIVERY:
                lines.append(line)
        return lines


def _weighted_kind(rng: random.Random, partner: Partner) -> str:
    if partner.element.get("STATUS") != "E0002" and rng.random() < 0.6:
        return "activated"
    total = sum(w for _, w in CHANGE_KINDS)
    x = rng.random() * total
    for kind, w in CHANGE_KINDS:
        x -= w
        if x < 0:
            return kind
    return CHANGE_KINDS[-1][0]
