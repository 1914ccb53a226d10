"""The portal's two limits (reference §2).

* `LeakyBucket`: +1 per HTTP request, drains `rate` per second; a request that finds the bucket
  full (`burst`) is refused with 503 QUERY_LIMIT_EXCEEDED and does not fill it further.
* `OperatingLimiter`: seconds of method execution per (credential, method) in ten one-minute
  buckets. Only calls longer than 0.1 s are recorded; a bucket expires 10 minutes after its
  first record. The check is made before a call: once the live sum reaches the limit the method
  is blocked (429 OPERATION_TIME_LIMIT) until enough buckets expire; the call that crosses the
  limit still completes.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable


class LeakyBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.configure(rate, burst)
        self._level = 0.0
        self._at = clock()

    def configure(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got rate={rate}, burst={burst}")
        self.rate = float(rate)
        self.burst = int(burst)

    def _drain(self, now: float) -> None:
        self._level = max(0.0, self._level - (now - self._at) * self.rate)
        self._at = now

    def try_acquire(self) -> bool:
        with self._lock:
            self._drain(self._clock())
            if self._level + 1.0 > self.burst:
                return False
            self._level += 1.0
            return True

    @property
    def level(self) -> float:
        with self._lock:
            self._drain(self._clock())
            return self._level

    def reset(self) -> None:
        with self._lock:
            self._level = 0.0
            self._at = self._clock()


class OperatingLimiter:
    BUCKET_SECONDS = 60
    BUCKET_COUNT = 10
    MINIMAL_FIX_TIME = 0.1

    def __init__(self, limit: float, clock: Callable[[], float] = time.time) -> None:
        self.limit = float(limit)
        self._clock = clock
        # the real window is 10 buckets of 60 s; a test may shrink it (admin `operating_window`)
        self.bucket_seconds: float = self.BUCKET_SECONDS
        self._lock = threading.Lock()
        # key -> {bucket start: [seconds, first record ts]}
        self._buckets: dict[Hashable, dict[int, list[float]]] = {}

    @property
    def window(self) -> float:
        return self.bucket_seconds * self.BUCKET_COUNT

    def _live(self, key: Hashable, now: float) -> dict[int, list[float]]:
        buckets = self._buckets.get(key)
        if not buckets:
            return {}
        for start in [s for s, (_, first) in buckets.items() if first + self.window <= now]:
            del buckets[start]
        return buckets

    def is_blocked(self, key: Hashable) -> bool:
        with self._lock:
            buckets = self._live(key, self._clock())
            return sum(b[0] for b in buckets.values()) >= self.limit

    def record(self, key: Hashable, seconds: float) -> None:
        if seconds <= self.MINIMAL_FIX_TIME:
            return
        with self._lock:
            now = self._clock()
            buckets = self._live(key, now)
            if not buckets:
                self._buckets[key] = buckets
            start = int(now // self.bucket_seconds) * self.bucket_seconds
            bucket = buckets.setdefault(start, [0.0, now])
            bucket[0] += seconds

    def state(self, key: Hashable) -> tuple[float, int]:
        """(accumulated seconds in the window, unix time the oldest bucket expires)."""
        with self._lock:
            now = self._clock()
            buckets = self._live(key, now)
            if not buckets:
                return 0.0, math.ceil(now + self.window)
            total = sum(b[0] for b in buckets.values())
            return total, math.ceil(min(first for _, first in buckets.values()) + self.window)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
