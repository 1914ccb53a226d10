"""Stop asking a registry that is down.

Without it, a run during an outage sends every distinct INN through its full retry schedule (four
tries and ~7 s of backoff each with DaData's settings): minutes of hammering a dead service for
records that end up parked anyway. After `failures` lookups in a row have failed (each after its
own retries), the breaker opens: further lookups fail at once with `LookupFailed` (the gate parks
the record as pending, the next run retries it). Every `probe_every` seconds one lookup is let
through as a probe; its success closes the breaker and the run goes on normally.

`ProviderRefused` (key, quota) is not an outage: it passes through untouched.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from validators.egrul.provider import LookupFailed, LookupResult, RegistryProvider

log = logging.getLogger(__name__)


class OutageBreaker:
    """A `RegistryProvider` around another; `outage` is the failure that opened it (None: closed)."""

    def __init__(self, provider: RegistryProvider, *, failures: int = 8, probe_every: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1 or probe_every <= 0:
            raise ValueError("failures must be >= 1 and probe_every > 0")
        self.provider = provider
        self.name = provider.name
        self.failures, self.probe_every = failures, probe_every
        self._clock = clock
        self._lock = threading.Lock()
        self._streak = 0
        self._probe_at = 0.0
        self.outage: LookupFailed | None = None
        self.not_asked = 0          # lookups answered "down" without asking the provider

    def lookup(self, inn: str) -> LookupResult:
        with self._lock:
            if self.outage is not None:
                now = self._clock()
                if now < self._probe_at:
                    self.not_asked += 1
                    raise LookupFailed(inn, f"the registry is down ({self.outage.reason}); "
                                            "not asked again in this run")
                self._probe_at = now + self.probe_every  # this lookup is the probe
        try:
            result = self.provider.lookup(inn)
        except LookupFailed as e:
            with self._lock:
                self._streak += 1
                if self._streak >= self.failures and self.outage is None:
                    self.outage = e
                    self._probe_at = self._clock() + self.probe_every
                    log.error("EGRUL: %d lookups in a row failed (%s); the registry is taken as down, the "
                              "remaining companies are parked as pending (one probe every %g s)",
                              self._streak, e.reason, self.probe_every)
            raise
        with self._lock:
            self._streak = 0
            if self.outage is not None:
                log.warning("EGRUL answers again; lookups resume")
                self.outage = None
        return result

    def close(self) -> None:
        self.provider.close()
