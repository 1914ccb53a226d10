"""What the EGRUL gate sees of a registry: one interface, whichever service answers.

A provider turns an INN into a `LookupResult` (found with a status, or NOT_FOUND), or raises:
- `LookupFailed`: transient (timeout, connection error, 429, 5xx after retries). The record is
  parked as pending and retried next run; never treated as not found.
- `ProviderRefused`: fatal for the run (bad or missing key, quota exhausted, malformed request,
  wrong URL). The message says what to fix and never contains the key.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class Status(StrEnum):
    """Known `data.state.status` values (plus NOT_FOUND). Statuses are kept as plain strings, so a
    value DaData adds later (it added BANKRUPT in 2021) is carried through rather than crashing."""

    ACTIVE = "ACTIVE"
    LIQUIDATING = "LIQUIDATING"
    LIQUIDATED = "LIQUIDATED"
    BANKRUPT = "BANKRUPT"
    REORGANIZING = "REORGANIZING"
    NOT_FOUND = "NOT_FOUND"
    UNKNOWN = "UNKNOWN"   # found, but the record carries no state.status


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The registry's answer for one INN: `data` is the chosen DaData `data` object (None if not found)."""

    inn: str
    status: str
    data: dict[str, Any] | None = None

    @classmethod
    def from_data(cls, inn: str, data: dict[str, Any] | None) -> "LookupResult":
        """Build from a DaData `data` object (or None: not found); also how a cache rebuilds one."""
        if data is None:
            return cls(inn, Status.NOT_FOUND.value, None)
        status = _get(data, "state", "status")
        status = status.strip().upper() if isinstance(status, str) and status.strip() else Status.UNKNOWN.value
        return cls(inn, status, data)

    @property
    def found(self) -> bool:
        return self.data is not None

    @property
    def is_active(self) -> bool:
        return self.status == Status.ACTIVE

    # --- enrichment -----------------------------------------------------------------------
    @property
    def full_name(self) -> str | None:
        """Full name with legal form: `ПУБЛИЧНОЕ АКЦИОНЕРНОЕ ОБЩЕСТВО "СБЕРБАНК РОССИИ"`."""
        return _text(_get(self.data, "name", "full_with_opf"))

    @property
    def short_name(self) -> str | None:
        """Short name with legal form: `ПАО СБЕРБАНК`."""
        return _text(_get(self.data, "name", "short_with_opf"))

    @property
    def opf_short(self) -> str | None:
        """Legal form, short: `ПАО`, `ООО`, `ИП`."""
        return _text(_get(self.data, "opf", "short"))

    @property
    def kpp(self) -> str | None:
        return _text(_get(self.data, "kpp"))

    @property
    def ogrn(self) -> str | None:
        return _text(_get(self.data, "ogrn"))

    @property
    def address(self) -> str | None:
        return _text(_get(self.data, "address", "value"))

    @property
    def management(self) -> dict[str, Any] | None:
        """`{"name": ..., "post": ...}` of the head of a legal entity (None for an ИП)."""
        m = _get(self.data, "management")
        return m if isinstance(m, dict) else None

    @property
    def manager_name(self) -> str | None:
        return _text(_get(self.data, "management", "name"))

    @property
    def manager_post(self) -> str | None:
        return _text(_get(self.data, "management", "post"))

    @property
    def state_code(self) -> str | None:
        """ЕГРЮЛ status code (e.g. 113 bankruptcy proceedings opened), when the registry gives one."""
        code = _get(self.data, "state", "code")
        return str(code) if code not in (None, "") else None

    @property
    def is_sole_proprietor(self) -> bool:
        return _get(self.data, "type") == "INDIVIDUAL" or len(self.inn) == 12


class LookupFailed(Exception):
    """Transient failure for one INN: park the record as pending and try again next run."""

    def __init__(self, inn: str, reason: str, attempts: int = 1) -> None:
        self.inn, self.reason, self.attempts = inn, reason, attempts
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"EGRUL lookup of INN {inn} failed{tries}: {reason}; the record stays pending "
                         "and is retried on the next run")


class ProviderRefused(Exception):
    """The registry refuses to serve us (bad key, quota, wrong URL or request): stop the run."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


@runtime_checkable
class RegistryProvider(Protocol):
    """A source of EGRUL answers. `name` keys the cache (answers of different registries differ)."""

    name: str

    def lookup(self, inn: str) -> LookupResult:
        """Look one INN up. Raises LookupFailed (transient) or ProviderRefused (fatal)."""
        ...

    def close(self) -> None:
        ...
