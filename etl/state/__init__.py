"""The state store: what crm-etl remembers between runs (see base.py for the interface).

    from etl.state import open_state
    with open_state(settings.state) as store:
        run_id = store.start_run("full", "shop-a")

`open_state` picks the backend from the URL scheme. A backend is a class with
`from_url(url) -> StateStore`, registered in BACKENDS as "module:Class"; None marks a scheme
that is planned but not built yet.
"""
from __future__ import annotations

import importlib
import os
import re

from etl.config import ConfigError
from etl.secrets import redact_url
from etl.state.base import (
    INTENT, RUNNING, WRITTEN, ContactKey, EgrulCacheEntry, EntityState, LockInfo, PendingItem,
    RejectRow, RunInfo, SourceKey, StateError, StateStore,
)

BACKENDS: dict[str, str | None] = {
    "sqlite": "etl.state.sqlite:SQLiteStateStore",
    "mysql": "etl.state.mysql:MySQLStateStore",
}
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")

__all__ = [
    "BACKENDS", "INTENT", "RUNNING", "WRITTEN", "ContactKey", "EgrulCacheEntry", "EntityState", "LockInfo",
    "PendingItem", "RejectRow", "RunInfo", "SourceKey", "StateError", "StateStore", "open_state",
]


def open_state(url: str | os.PathLike[str]) -> StateStore:
    """Open (creating and migrating as needed) the store `url` names.

    A plain path or `sqlite:///path` -> SQLite file; `mysql://user:pass@host:port/db` -> MySQL or
    MariaDB (the database must exist; see etl/state/mysql.py for the options).
    Raises ConfigError for a URL it cannot use, StateError if the store itself is unusable.
    """
    text = os.fspath(url).strip()
    if not text:
        raise ConfigError("the state store location is empty: set CRM_ETL_STATE or [state] url "
                          "to a file path (SQLite)")
    m = _SCHEME.match(text)
    scheme = m.group(1).lower().split("+")[0] if m else "sqlite"
    if scheme not in BACKENDS:
        known = ", ".join(f"{s}://" for s in BACKENDS)
        raise ConfigError(f"state store {redact_url(text)}: unknown scheme {scheme!r} "
                          f"(use a file path or one of {known})")
    target = BACKENDS[scheme]
    if target is None:
        raise ConfigError(f"the {scheme}:// state store is not available yet; use a SQLite file path")
    module, _, cls = target.partition(":")
    backend = getattr(importlib.import_module(module), cls)
    return backend.from_url(text)
