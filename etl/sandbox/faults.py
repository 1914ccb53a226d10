"""Seeded fault injection for the sandbox services (Bitrix24 and EGRUL emulators).

A share of requests can be answered with a 500, a 503, answered slowly, have the connection
dropped without an answer before the request is handled (`drop`), or after it was handled (`lost`:
the work is done, the answer never arrives, as when a proxy or the network fails on the way back). Decisions come from one `random.Random(seed)`, so a given seed and a
given request order reproduce the same faults.
"""
from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class FaultSpec:
    error_500: float = 0.0     # share of requests answered with HTTP 500
    error_503: float = 0.0     # share answered with HTTP 503 (the service's own 503 body)
    slow: float = 0.0          # share answered only after `slow_seconds`
    slow_seconds: float = 5.0
    drop: float = 0.0          # share whose connection is closed without any answer
    lost: float = 0.0          # share handled, then closed without the answer
    seed: int | None = None

    def __post_init__(self) -> None:
        for f in ("error_500", "error_503", "slow", "drop", "lost"):
            v = getattr(self, f)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"fault share {f} must be between 0 and 1, got {v}")
        if self.error_500 + self.error_503 + self.drop + self.lost > 1.0:
            raise ValueError("error_500 + error_503 + drop + lost must not exceed 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FaultSpec":
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    """Thread-safe: `decide()` returns (kind or None, delay seconds) for the next request."""

    def __init__(self, spec: FaultSpec | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(spec or FaultSpec())

    def configure(self, spec: FaultSpec) -> None:
        with self._lock:
            self.spec = spec
            self._rng = random.Random(spec.seed)
            self.counts = {"500": 0, "503": 0, "slow": 0, "drop": 0, "lost": 0}

    @property
    def active(self) -> bool:
        s = self.spec
        return bool(s.error_500 or s.error_503 or s.slow or s.drop or s.lost)

    def decide(self) -> tuple[str | None, float]:
        if not self.active:
            return None, 0.0
        with self._lock:
            s = self.spec
            delay = 0.0
            if s.slow and self._rng.random() < s.slow:
                delay = s.slow_seconds
                self.counts["slow"] += 1
            r = self._rng.random()
            kind = None
            if r < s.drop:
                kind = "drop"
            elif r < s.drop + s.error_500:
                kind = "500"
            elif r < s.drop + s.error_500 + s.error_503:
                kind = "503"
            elif r < s.drop + s.error_500 + s.error_503 + s.lost:
                kind = "lost"
            if kind:
                self.counts[kind] += 1
            return kind, delay
