"""One emulated portal: its data, webhook, limits, counters, and how a method call runs.

`Portal.execute()` is the single path for a call, top-level or inside `batch`: method lookup,
the operating-time check (before the call), the call in a savepoint, the accounting of its
duration (plus the simulated `operating_cost`, see below), and the `time` block.

Simulated operating cost: real calls here take milliseconds, so the operating limit would never
trigger. `operating_cost` (seconds, all methods) and `operating_costs` ({method: seconds}) are
added to each call's measured duration: they show in `time.processing`/`duration`/`operating`
and count against the limit exactly like real execution time (calls over 0.1 s are recorded).
Set them with `POST /_sandbox/config`.
"""
from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from etl.sandbox.bitrix24.batch import Outcome, run_batch
from etl.sandbox.bitrix24.errors import INTERNAL_SERVER_ERROR, METHOD_NOT_FOUND, OPERATION_TIME_LIMIT, RestError
from etl.sandbox.bitrix24.limits import LeakyBucket, OperatingLimiter
from etl.sandbox.bitrix24.methods import REGISTRY, Call
from etl.sandbox.bitrix24.store import Store
from etl.sandbox.bitrix24.values import iso
from etl.secrets import register as register_secret

log = logging.getLogger(__name__)


def new_code() -> str:
    """A webhook code shaped like the portal's (16 lower-case alphanumerics)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


class Stats:
    """Counters for `GET /_sandbox/stats` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.http_requests = 0
            self.in_flight = 0            # requests being answered right now
            self.methods: Counter[str] = Counter()
            self.batch_commands = 0
            self.rejected: Counter[str] = Counter()
            self.errors: Counter[str] = Counter()

    def count(self, attr: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, attr, getattr(self, attr) + n)

    def count_in(self, counter: str, key: str) -> None:
        with self._lock:
            getattr(self, counter)[key] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"http_requests": self.http_requests, "in_flight": self.in_flight,
                    "methods": dict(self.methods),
                    "batch_commands": self.batch_commands,
                    "rejected": {"QUERY_LIMIT_EXCEEDED": self.rejected["QUERY_LIMIT_EXCEEDED"],
                                 "OPERATION_TIME_LIMIT": self.rejected["OPERATION_TIME_LIMIT"]},
                    "errors": dict(self.errors)}


class Portal:
    def __init__(self, db: str | Path | None = None, *, rate: float = 2.0, burst: int = 50,
                 operating_limit: float = 480.0, user_id: int = 1, code: str | None = None,
                 limits: bool = True) -> None:
        self.store = Store(db)
        self.bucket = LeakyBucket(rate, burst)
        self.operating = OperatingLimiter(operating_limit)
        self.limits = limits
        self.user_id = int(user_id)
        self.code: str | None = code or new_code()
        register_secret(self.code)  # a webhook code is a secret for the logs, like any other
        self.operating_cost = 0.0
        self.operating_costs: dict[str, float] = {}
        self.stats = Stats()

    # --- access -------------------------------------------------------------------------------
    def authenticate(self, user_id: str, code: str) -> bool:
        current = self.code
        if current is None or user_id != str(self.user_id):
            return False
        return hmac.compare_digest(code.encode(), current.encode())

    def admit(self) -> bool:
        """The leaky bucket: True if this HTTP request may go on."""
        if not self.limits or self.bucket.try_acquire():
            return True
        self.stats.count_in("rejected", "QUERY_LIMIT_EXCEEDED")
        return False

    # --- calls --------------------------------------------------------------------------------
    def execute(self, method: str, params: dict, credential: str) -> Outcome:
        """Run one method (top-level or a batch command). The caller holds a store transaction."""
        method = method.lower()
        if method != "batch" and method not in REGISTRY:
            return self._failed(METHOD_NOT_FOUND)
        self.stats.count_in("methods", method)
        key = (credential, method)
        if self.limits and method != "batch" and self.operating.is_blocked(key):
            self.stats.count_in("rejected", "OPERATION_TIME_LIMIT")
            return self._failed(OPERATION_TIME_LIMIT)
        params = dict(params)
        start_param = params.pop("start", None)
        started = time.time()
        t0 = time.perf_counter()
        error: RestError | None = None
        reply = None
        try:
            if method == "batch":
                reply, executed = run_batch(params, lambda m, p: self.execute(m, p, credential))
                self.stats.count("batch_commands", executed)
            else:
                with self.store.savepoint():
                    reply = REGISTRY[method](Call(params, self.store, self.user_id, started, start_param))
        except RestError as e:
            error = e
        except Exception:  # noqa: BLE001 - a bug must become the portal's 500, not a dropped request
            log.exception("bitrix24 emulator: %s failed", method)
            error = INTERNAL_SERVER_ERROR
        elapsed = time.perf_counter() - t0 + self.operating_costs.get(method, self.operating_cost)
        if method != "batch":
            self.operating.record(key, elapsed)
        if error is not None:
            return self._failed(error)
        operating, reset_at = self.operating.state(key)
        return Outcome(reply.result, reply.total, reply.next, time_block(started, elapsed, operating, reset_at))

    def _failed(self, error: RestError) -> Outcome:
        self.stats.count_in("errors", error.code or '""')
        return Outcome(error=error)

    # --- admin --------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"rate": self.bucket.rate, "burst": self.bucket.burst, "operating_limit": self.operating.limit,
                "operating_window": self.operating.window,
                "limits": self.limits, "operating_cost": self.operating_cost,
                "operating_costs": dict(self.operating_costs), "user_id": self.user_id,
                "code_valid": self.code is not None}

    def configure(self, changes: dict[str, Any]) -> None:
        """Apply `POST /_sandbox/config`; raises ValueError naming the bad key."""
        known = {"rate", "burst", "operating_limit", "operating_window", "limits", "operating_cost",
                 "operating_costs", "code", "rotate_code", "invalidate_code", "reset_limits"}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        rate = float(changes.get("rate", self.bucket.rate))
        burst = int(changes.get("burst", self.bucket.burst))
        limit = float(changes.get("operating_limit", self.operating.limit))
        window = float(changes.get("operating_window", self.operating.window))
        if window <= 0:
            raise ValueError("operating_window must be > 0 seconds (the portal's is 600)")
        cost = float(changes.get("operating_cost", self.operating_cost))
        costs = changes.get("operating_costs", self.operating_costs)
        if not isinstance(costs, dict):
            raise ValueError("operating_costs must be an object {method: seconds}")
        costs = {str(k).lower(): float(v) for k, v in costs.items()}
        if limit <= 0 or cost < 0 or any(v < 0 for v in costs.values()):
            raise ValueError("operating_limit must be > 0 and operating costs >= 0")
        code = changes.get("code")
        if code is not None and (not isinstance(code, str) or not code or "/" in code):
            raise ValueError("code must be a non-empty string without '/'")
        self.bucket.configure(rate, burst)
        self.operating.limit = limit
        self.operating.bucket_seconds = window / self.operating.BUCKET_COUNT
        self.operating_cost = cost
        self.operating_costs = costs
        if "limits" in changes:
            self.limits = bool(changes["limits"])
        if code is not None:
            self.code = code
        if changes.get("rotate_code"):
            self.code = new_code()
        register_secret(self.code)
        if changes.get("invalidate_code"):
            self.code = None
        if changes.get("reset_limits"):
            self.bucket.reset()
            self.operating.reset()

    def close(self) -> None:
        self.store.close()


def time_block(started: float, elapsed: float, operating: float, reset_at: int) -> dict[str, Any]:
    finished = started + elapsed
    return {"start": started, "finish": finished, "duration": elapsed, "processing": elapsed,
            "date_start": iso(started), "date_finish": iso(finished),
            "operating_reset_at": reset_at, "operating": operating}
