"""Client-side request rate limit shared by every lookup thread.

GCRA (the "virtual scheduling" form of a token bucket): each `acquire()` reserves the next free
slot under a lock and sleeps outside it, so threads queue fairly and the long-run rate never
exceeds `rate` per second, with at most `burst` requests sent back to back.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate: float, burst: int = 1, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 requests per second, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = clock()  # theoretical arrival time of the next request

    def reserve(self) -> float:
        """Claim the next slot; return how many seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            allowed_at = tat - (self.burst - 1) * self._interval
            self._tat = tat + self._interval
            return max(0.0, allowed_at - now)

    def acquire(self) -> None:
        """Block until this caller may send one request."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
