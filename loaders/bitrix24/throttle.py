"""Client-side copies of the portal's two limits (reference §2), so a long run sends as fast as
the portal allows without being refused.

`LeakyBucket` mirrors the request-rate limit: a counter +1 per HTTP request, drained `rate`
per second, refused above `burst`. The client keeps its own counter and waits before a request
would overflow it. Because every request reaches the portal after we count it, our counter is
never lower than the portal's (unless someone else shares the bucket - then a 503 tells us, and
`mark_full()` re-synchronises). In the steady state the client sends exactly `rate` requests/s.

`OperatingTracker` mirrors the per-method execution-time budget (`operating_limit` seconds per
10-minute window). The portal reports the method's *accumulated* time in the window as
`time.operating` (LoadLimiter::getRestTime sums the method's 10 one-minute buckets - it is not
the time of this one call, as some client libraries assume and then sum again) and when the
oldest bucket expires as `time.operating_reset_at`. The tracker keeps the latest report per
method; before a call it waits until `operating_reset_at` when the method is within a margin of
the limit. The portal checks the budget *before* a call (the call that crosses the limit still
completes), so calling while the reported total is below the limit is safe. Where the portal
reports no `operating`, its limiter is off and there is nothing to track.

Both are thread-safe. Waits are reserved under the lock and slept outside it.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

WINDOW_SECONDS = 600.0        # 10 one-minute buckets
MINIMAL_FIX_TIME = 0.1        # the portal ignores calls shorter than this


class LeakyBucket:
    """Reserve a send slot: `acquire()` returns how long to wait before sending (and counts the
    request as sent at that moment)."""

    def __init__(self, rate: float, burst: float, *, headroom: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1 (got rate={rate}, burst={burst})")
        self.rate = float(rate)
        self.burst = float(burst)
        # Stay this many requests below the portal's bucket size: the portal's exact refusal
        # rule (> or >=) and its drain granularity are not documented. Costs nothing in the
        # long run (the drain rate is unchanged), only a little of the initial burst.
        self.headroom = float(headroom if headroom is not None else min(3.0, max(1.0, burst * 0.05)))
        self.capacity = max(1.0, self.burst - self.headroom)
        self._clock = clock
        self._level = 0.0
        self._at = clock()
        self._lock = threading.Lock()

    def _drain(self, now: float) -> None:
        self._level = max(0.0, self._level - (now - self._at) * self.rate)
        self._at = now

    def acquire(self) -> float:
        with self._lock:
            now = self._clock()
            self._drain(now)
            over = self._level + 1.0 - self.capacity
            self._level += 1.0
            return over / self.rate if over > 0 else 0.0

    def mark_full(self) -> None:
        """The portal said its bucket is full (503): assume it is, so the next send waits."""
        with self._lock:
            self._drain(self._clock())
            self._level = max(self._level, self.capacity)

    @property
    def level(self) -> float:
        with self._lock:
            self._drain(self._clock())
            return self._level


@dataclass
class _MethodBudget:
    reported: float | None = None          # the portal's accumulated seconds for the method
    reported_at: float = 0.0
    reset_at: float | None = None          # unix time the oldest bucket expires
    blocked_until: float | None = None     # after a 429
    recent: deque = field(default_factory=deque)  # (unix time, seconds) of single calls > 0.1 s

    def longest(self) -> float:
        return max((s for _, s in self.recent), default=0.0)


class OperatingTracker:
    """Per-method execution-time budget. `wait_for(methods)` says how long to wait before a
    request that runs those methods; `observe(method, time_block)` learns from each answer;
    `block(method, fallback)` records a 429."""

    def __init__(self, limit: float = 480.0, *, margin: float | None = None,
                 window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.limit = float(limit)
        # Stop this far below the limit, plus the longest recent call (a call in flight adds
        # its time). 5 s on the cloud's 480 s, like the official JS SDK.
        self.margin = float(margin if margin is not None else min(5.0, 0.05 * self.limit))
        self.window = float(window)
        self._clock = clock
        self._methods: dict[str, _MethodBudget] = {}
        self._lock = threading.Lock()

    def observe(self, method: str, time_block: Mapping[str, Any] | None) -> None:
        if not isinstance(time_block, Mapping):
            return
        now = self._clock()
        with self._lock:
            b = self._methods.setdefault(method.lower(), _MethodBudget())
            spent = _number(time_block.get("processing"))
            if spent is None:
                spent = _number(time_block.get("duration"))
            if spent is not None and spent > MINIMAL_FIX_TIME:
                b.recent.append((now, spent))
            operating = _number(time_block.get("operating"))
            if operating is not None:
                b.reported, b.reported_at = operating, now
            reset = _number(time_block.get("operating_reset_at"))
            if reset is not None:
                b.reset_at = reset
            self._prune(b, now)

    def block(self, method: str, fallback: float = 60.0) -> float:
        """A 429 came back for `method`: no call until the last known `operating_reset_at`,
        or, when none is known (or it has passed), for `fallback` seconds. Returns the unix time
        the method is blocked until."""
        now = self._clock()
        with self._lock:
            b = self._methods.setdefault(method.lower(), _MethodBudget())
            self._prune(b, now)
            until = b.reset_at if b.reset_at is not None and b.reset_at > now else now + fallback
            b.blocked_until = max(until, b.blocked_until or 0.0)
            return b.blocked_until

    def wait_for(self, methods: Iterable[str]) -> float:
        """Seconds to wait before calling all of `methods` (0 if none is near its limit)."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for method in {m.lower() for m in methods}:
                b = self._methods.get(method)
                if b is not None:
                    wait = max(wait, self._wait_one(b, now))
        return wait

    def spent(self, method: str) -> float:
        """The method's accumulated seconds in the window, as last reported (0 if unknown)."""
        now = self._clock()
        with self._lock:
            b = self._methods.get(method.lower())
            if b is None:
                return 0.0
            self._prune(b, now)
            return b.reported or 0.0

    def snapshot(self) -> dict[str, float]:
        now = self._clock()
        with self._lock:
            out = {}
            for m, b in self._methods.items():
                self._prune(b, now)
                out[m] = round(b.reported or 0.0, 3)
            return out

    # --- internals ----------------------------------------------------------------------------
    def _prune(self, b: _MethodBudget, now: float) -> None:
        while b.recent and b.recent[0][0] <= now - self.window:
            b.recent.popleft()
        if (b.reset_at is not None and b.reset_at <= now) or b.reported_at <= now - self.window:
            # The oldest bucket expired: the reported total is stale (lower by an unknown
            # amount). Forget it; the next answer reports the new total.
            b.reported, b.reset_at = None, None
        if b.blocked_until is not None and b.blocked_until <= now:
            b.blocked_until = None

    def _wait_one(self, b: _MethodBudget, now: float) -> float:
        self._prune(b, now)
        if b.blocked_until is not None:
            return b.blocked_until - now
        if b.reported is None or b.reset_at is None:
            return 0.0
        if b.reported < self.limit - self.margin - b.longest():
            return 0.0
        return max(0.0, min(b.reset_at - now, self.window))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
