"""The sandbox data generator: both shops' data with all their mess, the EGRUL registry, a CRM seed,
shop B's change events, and the ground truth a correct load must produce.

    from etl.sandbox.generator import generate
    manifest = generate("out/", seed=1, scale=0.01)        # or: crm-etl generate --out out/

Output (all streamed; scale 1.0 is the reference case of DESIGN.md):

    shop_a.sqlite                 b2b_company / b2b_contact, text columns as BLOBs of the exact bytes
    (MySQL, with --mysql-dsn)     the same rows in the shop's own DDL (latin1 columns, raw bytes)
    shop_b/export_YYYY.json       one JSON array per CHANGED_AT year (UTF-8, BOM with --bom)
    shop_b/events.jsonl           {"key": PARTNER, "value": "<event JSON>"} in topic order
    egrul_registry.jsonl          DaData `data` objects for the EGRUL emulator
    crm_seed.json                 what the CRM holds before the first load (etl.sandbox.seed)
    truth/                        companies.jsonl, contacts.jsonl, rejects.jsonl, summary.json
    truth_after_events/           the same after the full loads and every event
    manifest.json                 seed, scale, now, since, counts, file sizes and hashes

The ground truth follows the rules in RULES.md (next to this file; a copy of the rules shared by
the generator, the transformers and the loader). Where the rules leave room, the truth takes this
reading, and the generator avoids data whose outcome would depend on it:

* After events, a record's reject is its *latest* outcome: a partner loaded by the full load and
  blocked by an event is rejected `source_inactive` (its cards stay in the CRM); a prospect that
  an event activates is no longer rejected. BP_DELETED makes the partner `source_deleted`.
* A later record never joins two persons that are already separate cards (events that would are
  not generated); a seed contact links to its person only through a shared e-mail.
* Shop A contacts whose company id does not exist are never generated (the scope joins contacts
  on in-scope companies, so such rows would be out of scope).
* Names: per field a seed value wins, then the newest record; a blank or a bare initial is filled
  from the other records.
"""
from __future__ import annotations

from etl.sandbox.generator.core import GeneratorError, ScalePlan, generate
from etl.sandbox.generator.manifest import Manifest

__all__ = ["generate", "Manifest", "GeneratorError", "ScalePlan"]
