"""The state store interface every backend implements, and the rows it hands out.

The loader, the reports and the commands talk only to `StateStore` (obtained from
`etl.state.open_state(url)`); nothing here knows which database is behind it.

Conventions for every method:
- Batch-oriented: methods take iterables and return dicts/sets, so a run touches the store once
  per batch of 500-5000 records, never once per record.
- Every write method is atomic on its own; `transaction()` groups several calls into one atomic
  unit (nested `transaction()` blocks are savepoints: an inner failure undoes only the inner
  block). Keep slow work (HTTP) out of a transaction: it holds the store's write lock.
- Thread-safe: threads of one process may share a store. Other processes may use the same store
  at the same time; a writer waits for another writer rather than failing at once.
- Timestamps are timezone-aware UTC datetimes (naive ones passed in are taken as UTC).
- Database failures surface as `StateError` (never a driver exception); misuse as ValueError.

Semantics worth knowing (details on each method):
- entities: one row per identity, enforced by the database. `record_intents` before a CRM
  write, `record_written` after it. An identity in status "intent" without a bitrix_id means a
  create may have reached the CRM and then the process died: search the CRM by ORIGIN_ID first.
- rejects: one row per source record `(source, kind, source_id)`, holding its latest rejection
  ("current rejects"); a rerun that rejects it again updates that row (run_id, reason, detail,
  raw, rejected_at) and counts the runs that rejected it. A record that later loads fine is
  taken off the list with `resolve_rejects`. Per-run history lives in the run's counts.
- pending: one row per parked source record, re-parking increments `attempts`.
"""
from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from etl.dto import Reject

INTENT = "intent"
WRITTEN = "written"
RUNNING = "running"

ContactKey = tuple[str, str, str]  # (company_inn, kind, value), kind e.g. "email" | "phone" | "name"
SourceKey = tuple[str, str, str]   # (source, kind, source_id)


class StateError(Exception):
    """The state store cannot do what was asked (unreachable, corrupt, newer schema, closed).

    The message names the store (path or redacted URL) and, where there is one, the fix.
    `retryable`: a conflict with another writer (deadlock, lock wait): nothing of the transaction
    was kept, and running the whole transaction again is the right answer.
    """

    retryable: bool = False


def run_in_transaction(state: "StateStore", work, attempts: int = 5) -> None:
    """Run `work()` inside `state.transaction()`, again from the start when another writer made
    it fail (`StateError.retryable`). `work` must only write to the state store."""
    import random
    import time

    for attempt in range(1, attempts + 1):
        try:
            with state.transaction():
                work()
            return
        except StateError as e:
            if not e.retryable or attempt == attempts:
                raise
            time.sleep(random.uniform(0.0, 0.05 * attempt))


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: int
    mode: str                  # "full" | "delta" | "consume" | "demo" | ...
    source: str                # "shop-a", "shop-b", ...
    status: str                # "running" until finish_run, then what the caller said ("ok", "failed", ...)
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]     # the run report's funnel, as given to finish_run ({} while running)
    argv: str = ""             # the command line, secrets scrubbed
    host: str = ""
    pid: int = 0


def shown_status(run: RunInfo) -> str:
    """The run's status for people: a run still marked running whose process is gone from this
    host ended without recording its end (killed, or its state store was locked) - "interrupted"."""
    if run.status == RUNNING and run.host == socket.gethostname():
        from etl.state.sql import pid_alive

        if not pid_alive(run.pid):
            return "interrupted"
    return run.status


@dataclass(frozen=True, slots=True)
class EntityState:
    identity: str              # "company:7707083893", "contact:<opaque>"
    entity_type: str           # "company" | "contact"
    bitrix_id: int | None      # None until a write is recorded
    payload_hash: str | None   # hash of what was last written (None if never written)
    status: str                # INTENT (a write is or was in flight) | WRITTEN (last write acknowledged)
    updated_at: datetime
    intent_hash: str | None = None  # hash of the write in flight (status INTENT), else None
    run_id: int | None = None       # the last run that recorded an intent or a write for it


@dataclass(frozen=True, slots=True)
class EgrulCacheEntry:
    inn: str
    status: str                       # "ACTIVE", "LIQUIDATED", ..., "NOT_FOUND" (as the caller names them)
    payload: dict[str, Any] | None    # the registry's answer (or the part the caller keeps)
    checked_at: datetime | None = None  # when the registry said so; None in put_egrul = now


@dataclass(frozen=True, slots=True)
class RejectRow:
    """The current rejection of one source record (see the module docstring)."""

    source: str
    kind: str
    source_id: str
    reason: str
    detail: str
    raw: Any                   # decoded JSON of the raw record (bytes restored), None if none was given
    run_id: int                # the latest run that rejected it
    first_run_id: int          # the first run that rejected it
    run_count: int             # how many runs rejected it
    first_rejected_at: datetime
    rejected_at: datetime      # the latest rejection


@dataclass(frozen=True, slots=True)
class PendingItem:
    """A source record parked until its check can be done (e.g. EGRUL was unreachable).

    For `park` only source, kind, source_id, reason, detail and raw matter; the store keeps the
    rest. Items read back carry the raw record as decoded JSON (bytes restored).
    """

    source: str
    kind: str
    source_id: str
    reason: str
    detail: str = ""
    raw: Any = None
    attempts: int = 0
    first_parked_at: datetime | None = None
    last_tried_at: datetime | None = None
    run_id: int | None = None  # the last run that parked it


@dataclass(frozen=True, slots=True)
class LockInfo:
    name: str
    holder: str
    pid: int
    host: str
    acquired_at: datetime
    heartbeat_at: datetime


class StateStore(ABC):
    """What crm-etl remembers between runs. Obtain one with `etl.state.open_state(url)`."""

    location: str          # where it is, for messages: a path, or a URL without its password
    schema_version: int    # the schema version of the open store

    # -- lifecycle ---------------------------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Group calls atomically: all of them are committed at the end, none if it raises."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (idempotent). Any later call raises StateError."""

    @abstractmethod
    def integrity_check(self) -> list[str]:
        """Problems the database finds in its own storage; an empty list means healthy."""

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs --------------------------------------------------------------------------------
    @abstractmethod
    def start_run(self, mode: str, source: str, argv: str = "") -> int:
        """Record a run in status "running" (with this host and pid); returns its run_id."""

    @abstractmethod
    def finish_run(self, run_id: int, status: str, counts: Mapping[str, Any]) -> None:
        """Close a run with a status ("ok", "failed", "interrupted", ...) and its funnel counts.
        Raises StateError if run_id is unknown."""

    @abstractmethod
    def get_run(self, run_id: int) -> RunInfo | None: ...

    @abstractmethod
    def last_run(self, source: str | None = None, mode: str | None = None,
                 status: str | None = None) -> RunInfo | None:
        """The most recent run matching every given filter."""

    @abstractmethod
    def list_runs(self, limit: int = 20, source: str | None = None) -> list[RunInfo]:
        """Most recent first."""

    # -- entities: identity -> Bitrix24 id -----------------------------------------------------
    @abstractmethod
    def get_entities(self, identities: Iterable[str]) -> dict[str, EntityState]:
        """The known ones among `identities` (unknown identities are simply absent)."""

    @abstractmethod
    def record_intents(self, items: Iterable[tuple[str, str, str]], run_id: int | None = None) -> set[str]:
        """Before CRM writes: items are (identity, entity_type, payload_hash).

        A new identity gets a row in status INTENT without bitrix_id; an existing one keeps its
        bitrix_id and payload_hash and goes to status INTENT with intent_hash set. Returns the
        identities this call created. The database guarantees one row per identity, so of two
        workers racing on one identity exactly one sees it in the returned set; the other leaves
        the row as the winner wrote it and must not create the entity in the CRM.
        """

    @abstractmethod
    def record_written(self, items: Iterable[tuple[str, str, int, str]], run_id: int | None = None) -> None:
        """After acknowledged CRM writes: items are (identity, entity_type, bitrix_id, payload_hash).

        Upsert: sets bitrix_id and payload_hash, status WRITTEN, clears intent_hash. Also used for
        entities found in the CRM (no intent needed). A different earlier bitrix_id is replaced
        (the CRM entity was re-created); races on creation are settled by record_intents.
        """

    # -- contact match index -------------------------------------------------------------------
    @abstractmethod
    def find_contact_keys(self, keys: Iterable[ContactKey]) -> dict[ContactKey, str]:
        """Which contact identity holds each key (company_inn, kind, value); unknown keys absent."""

    @abstractmethod
    def put_contact_keys(self, items: Iterable[tuple[str, str, str, str]]) -> dict[ContactKey, str]:
        """Give keys (company_inn, kind, value, identity) to identities; the first writer wins.

        Returns the conflicts: each key already held by (or, within this batch, first given to) a
        different identity, mapped to that holder. A key given again to its holder is no conflict.
        """

    @abstractmethod
    def put_contact_names(self, items: Iterable[tuple[str, str, str, str]]) -> None:
        """Remember the (normalised) name of contact identities: (identity, last, first, middle).

        Upsert; a part given empty keeps the stored one (a later record may lack the middle name).
        The loader uses it to refuse joining a record to a known person whose name conflicts
        (two people behind one switchboard phone)."""

    @abstractmethod
    def reassign_contact_keys(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Move every key (and the name) of identity `old` to identity `new`, for (old, new) pairs.

        Two workers that met the same person at once may mint two identities for it; the one that
        learns it lost (a key it wanted is held by the other identity) folds its identity into the
        winner's, so later records find one person. Returns how many keys moved."""

    @abstractmethod
    def get_contact_names(self, identities: Iterable[str]) -> dict[str, tuple[str, str, str]]:
        """identity -> (last, first, middle) for the known ones among `identities`."""

    # -- source record -> identity ---------------------------------------------------------------
    @abstractmethod
    def map_sources(self, items: Iterable[tuple[str, str, str, str]]) -> None:
        """Upsert (source, kind, source_id, identity): the record now feeds that identity."""

    @abstractmethod
    def identities_for_sources(self, source: str, kind: str, source_ids: Iterable[str]) -> dict[str, str]:
        """source_id -> identity for the mapped ones among `source_ids`."""

    # -- watermarks ------------------------------------------------------------------------------
    @abstractmethod
    def get_watermark(self, name: str) -> str | None: ...

    @abstractmethod
    def set_watermark(self, name: str, value: str) -> None:
        """Inside `transaction()` it commits together with the batch it belongs to."""

    # -- EGRUL cache -----------------------------------------------------------------------------
    @abstractmethod
    def get_egrul(self, inns: Iterable[str], fresh_days: Mapping[str, float] | None = None,
                  now: datetime | None = None) -> dict[str, EgrulCacheEntry]:
        """Cached answers for `inns`. With `fresh_days` ({status: days}) only entries checked within
        that many days of `now` are returned; a status missing from the mapping counts as stale."""

    @abstractmethod
    def put_egrul(self, entries: Iterable[EgrulCacheEntry]) -> None:
        """Upsert by INN (the latest answer replaces the earlier one)."""

    # -- rejects ---------------------------------------------------------------------------------
    @abstractmethod
    def add_rejects(self, run_id: int, rejects: Iterable[Reject]) -> int:
        """Store rejections of `run_id` (upsert per source record, see the module docstring).

        The raw record is kept as JSON whatever it is (bytes, datetimes, odd objects become
        storable; more than 64 KB of JSON is cut, with a marker). A reject without a source_id is
        keyed by a digest of its reason, detail and raw record. Returns how many were given.
        """

    @abstractmethod
    def resolve_rejects(self, keys: Iterable[SourceKey]) -> int:
        """Take source records off the rejects list (they loaded fine); returns how many were on it."""

    @abstractmethod
    def iter_rejects(self, run_id: int | None = None, reason: str | None = None,
                     source: str | None = None, kind: str | None = None) -> Iterator[RejectRow]:
        """Current rejects matching every given filter (run_id = the latest run that rejected
        them), in insertion order, read page by page (memory stays flat)."""

    @abstractmethod
    def count_rejects(self, run_id: int | None = None, source: str | None = None) -> dict[str, int]:
        """reason -> number of current rejects."""

    # -- pending ---------------------------------------------------------------------------------
    @abstractmethod
    def park(self, run_id: int, items: Iterable[PendingItem]) -> int:
        """Upsert by (source, kind, source_id): new ones get attempts=1, parked ones attempts+1 and
        the new reason/detail/raw. Returns how many were given."""

    @abstractmethod
    def iter_pending(self, source: str | None = None, kind: str | None = None) -> Iterator[PendingItem]:
        """Parked records, oldest first, read page by page."""

    @abstractmethod
    def unpark(self, keys: Iterable[SourceKey]) -> int:
        """Remove parked records (they were dealt with); returns how many were parked."""

    @abstractmethod
    def count_pending(self, source: str | None = None) -> dict[str, int]:
        """reason -> number of parked records."""

    # -- locks -----------------------------------------------------------------------------------
    @abstractmethod
    def acquire_lock(self, name: str, holder: str, pid: int, host: str, stale_after_s: float,
                     now: datetime | None = None) -> LockInfo | None:
        """Take the named lock for `holder`: None when acquired (or already ours: heartbeat
        refreshed), else who holds it. A lock is taken over when it is stale: its holder runs on
        `host` (this machine) and its pid is gone, or its heartbeat is older than stale_after_s."""

    @abstractmethod
    def heartbeat_lock(self, name: str, holder: str, now: datetime | None = None) -> bool:
        """Refresh the heartbeat; False if `holder` no longer holds the lock (it was taken over)."""

    @abstractmethod
    def release_lock(self, name: str, holder: str) -> bool:
        """Release if `holder` holds it; returns whether it did."""

    @abstractmethod
    def get_lock(self, name: str) -> LockInfo | None: ...
