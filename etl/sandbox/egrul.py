"""The sandbox EGRUL service: DaData's `findById/party` over real HTTP, answered from a registry file.

Protocol (registry reference, section 2), at `POST {base_url}/findById/party`:

  Authorization: Token <key>      401 without it, 403 for an unknown key or an exhausted daily quota
  {"query": INN|OGRN, "kpp"?, "branch_type"?, "type"?, "status"?, "count"?}
                                  400 if not a JSON object with a query; 405 for other methods;
                                  413 above 64 KiB
  -> 200 {"suggestions": [{"value", "unrestricted_value", "data": {...registry line...}}]}
     (not found -> 200 {"suggestions": []}); head office (MAIN) first, then file order.

Every answered lookup takes `latency` seconds (the reference case measured 0.4 s); the sleep is
on the request's own thread, so concurrent clients overlap. Above `rps` requests per second
(token bucket, burst = rps) the answer is 429. Faults (500/503/slow/drop) come from the base.

The registry is JSON lines, one DaData `data` object per line. Loading parses every line once
(to report bad ones by line number) but keeps only byte offsets; answers re-read their lines
from a memory map, so a 200k-line file costs little memory.

Admin routes (besides the base's health/faults):
  GET    /_sandbox/stats   counters (requests, lookups, found, not_found, suggestions, rate_limited,
                           unauthorized, forbidden, quota_exhausted, ..., connections,
                           in_flight, max_in_flight) and registry size
  DELETE /_sandbox/stats   reset the counters
  GET    /_sandbox/config  current latency, rps, daily_quota, retry_after, quota_used
  POST   /_sandbox/config  change any of them; {"reset_quota": true} zeroes today's usage
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import mmap
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - a dependency; the standard library reads it all too
    orjson = None  # type: ignore[assignment]

from etl.sandbox.faults import FaultInjector, FaultSpec
from etl.sandbox.httpserver import RunningServer, SandboxHandler, SandboxHTTPServer

log = logging.getLogger(__name__)

API_PREFIX = "/suggestions/api/4_1/rs"
FIND_PARTY = API_PREFIX + "/findById/party"
MAX_BODY = 64 * 1024
MAX_COUNT = 300          # the on-prem docs' maximum for `count`
DEFAULT_COUNT = 10
REPORT_BAD_LINES = 20    # bad registry lines logged one by one; the rest only counted


# --- the registry file -----------------------------------------------------------------------

@dataclass
class BadLine:
    line: int
    reason: str


class Registry:
    """INN/OGRN -> registry lines (byte offsets into a memory-mapped JSON-lines file)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.bad_lines: list[BadLine] = []
        self.records = 0
        # key -> offset of its line, or a list of offsets when several lines share the key
        self._by_inn: dict[str, int | list[int]] = {}
        self._by_ogrn: dict[str, int | list[int]] = {}
        self._file = open(self.path, "rb")  # noqa: SIM115 - kept open for the memory map
        try:
            self._index()
            size = self.path.stat().st_size
            self._map: mmap.mmap | bytes = (mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
                                            if size else b"")
            # orjson reads the lines unless one holds an integer beyond 64 bits (it would read a float)
            self._fast = orjson is not None and not self._long_integers
        except BaseException:
            self._file.close()
            raise

    def _integer(self, text: str) -> int:
        if len(text.lstrip("-")) > 18:
            self._long_integers = True
        return int(text)

    def _index(self) -> None:
        offset = 0
        self._long_integers = False
        for lineno, raw in enumerate(self._file, start=1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            try:
                data = json.loads(raw, parse_int=self._integer)
            except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
                self.bad_lines.append(BadLine(lineno, f"not valid JSON ({e})"))
                continue
            inn = data.get("inn") if isinstance(data, dict) else None
            if not isinstance(inn, str) or not inn:
                self.bad_lines.append(BadLine(lineno, "not a JSON object with a string \"inn\""))
                continue
            self.records += 1
            _add(self._by_inn, inn, start)
            ogrn = data.get("ogrn")
            if isinstance(ogrn, str) and ogrn:
                _add(self._by_ogrn, ogrn, start)

    @property
    def inns(self) -> int:
        return len(self._by_inn)

    def _read(self, start: int) -> dict[str, Any]:
        end = self._map.find(b"\n", start)
        raw = self._map[start:end if end >= 0 else len(self._map)]
        if self._fast:  # several times faster, same values
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:  # what only the standard library reads (NaN, ...)
                pass
        return json.loads(raw)

    def find(self, query: str) -> list[dict[str, Any]]:
        """Every record whose INN (or else OGRN) is `query`, MAIN first, then in file order."""
        if self._file.closed:  # a request still sleeping when the server was stopped
            return []
        found = self._by_inn.get(query)
        if found is None:
            found = self._by_ogrn.get(query, [])
        records = [self._read(o) for o in ([found] if isinstance(found, int) else found)]
        records.sort(key=lambda d: d.get("branch_type") != "MAIN")  # stable: keeps file order
        return records

    def close(self) -> None:
        self._file.close()
        if isinstance(self._map, mmap.mmap):
            self._map.close()


def _add(index: dict[str, int | list[int]], key: str, offset: int) -> None:
    known = index.get(key)
    if known is None:
        index[key] = offset
    elif isinstance(known, int):
        index[key] = [known, offset]
    else:
        known.append(offset)


# --- the service -----------------------------------------------------------------------------

@dataclass
class EgrulConfig:
    latency: float = 0.4
    rps: float | None = 30.0
    daily_quota: int | None = None
    retry_after: float | None = None   # seconds announced in Retry-After on 429 (None: no header)

    def validate(self) -> None:
        if self.latency < 0:
            raise ValueError("latency must be >= 0 seconds")
        if self.rps is not None and self.rps <= 0:
            raise ValueError("rps must be > 0 (or null for no limit)")
        if self.daily_quota is not None and self.daily_quota < 0:
            raise ValueError("daily_quota must be >= 0 (or null for no quota)")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must be >= 0 (or null for no header)")


class _TokenBucket:
    """Server-side requests-per-second cap: burst of `rps` requests, refilled at `rps` per second."""

    def __init__(self, rps: float | None) -> None:
        self._lock = threading.Lock()
        self.reset(rps)

    def reset(self, rps: float | None) -> None:
        with self._lock:
            self._rps = rps
            self._capacity = max(1.0, rps or 1.0)
            self._tokens = self._capacity
            self._stamp = time.monotonic()

    def take(self) -> bool:
        with self._lock:
            if self._rps is None:
                return True
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rps)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class EgrulService:
    """State shared by the handler threads: registry, accepted tokens, limits, counters."""

    def __init__(self, registry: Registry, tokens: Iterable[str], config: EgrulConfig) -> None:
        self.registry = registry
        self.tokens = frozenset(tokens)
        self.config = config
        self.bucket = _TokenBucket(config.rps)
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self._in_flight = 0
        self._quota_day = dt.date.today()
        self._quota_used: Counter[str] = Counter()

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
            self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def take_quota(self, token: str) -> bool:
        """Count one request against the token's daily quota; False once it is used up."""
        with self._lock:
            today = dt.date.today()
            if today != self._quota_day:
                self._quota_day, self._quota_used = today, Counter()
            limit = self.config.daily_quota
            if limit is not None and self._quota_used[token] >= limit:
                return False
            self._quota_used[token] += 1
            return True

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {k: self.stats[k] for k in STAT_KEYS}
            out["in_flight"] = self._in_flight
            out["quota_used"] = sum(self._quota_used.values())
        out["registry"] = {"records": self.registry.records, "inns": self.registry.inns,
                           "bad_lines": len(self.registry.bad_lines)}
        return out

    def reset_stats(self) -> None:
        with self._lock:
            self.stats.clear()

    def configure(self, changes: dict[str, Any]) -> None:
        unknown = set(changes) - {f for f in asdict(self.config)} - {"reset_quota"}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        reset_quota = bool(changes.pop("reset_quota", False))
        with self._lock:
            new = EgrulConfig(**{**asdict(self.config), **changes})
            new.validate()
            rps_changed = new.rps != self.config.rps
            self.config = new
            if reset_quota:
                self._quota_used.clear()
        if rps_changed:
            self.bucket.reset(new.rps)

    def config_view(self) -> dict[str, Any]:
        with self._lock:
            return {**asdict(self.config), "quota_used": sum(self._quota_used.values())}

    def close(self) -> None:
        self.registry.close()


STAT_KEYS = ("requests", "lookups", "found", "not_found", "suggestions", "rate_limited", "unauthorized",
             "forbidden", "quota_exhausted", "bad_request", "method_not_allowed", "not_found_path",
             "too_large", "connections", "max_in_flight")


def _error(status: int, reason: str, message: str) -> dict[str, str]:
    """DaData's error body shape (family/reason/message)."""
    family = "SERVER_ERROR" if status >= 500 else "CLIENT_ERROR"
    return {"family": family, "reason": reason, "message": message}


def suggestion(data: dict[str, Any]) -> dict[str, Any]:
    """One `suggestions[]` item: `value` is the short name with legal form, else the full one."""
    name = data.get("name") if isinstance(data.get("name"), dict) else {}
    value = name.get("short_with_opf") or name.get("full_with_opf") or ""
    return {"value": value, "unrestricted_value": name.get("full_with_opf") or value, "data": data}


class EgrulHandler(SandboxHandler):
    service_name = "egrul"
    server: SandboxHTTPServer

    @property
    def svc(self) -> EgrulService:
        return self.server.service

    def setup(self) -> None:
        super().setup()
        self.server.service.count("connections")

    def fault_body(self, status: int) -> tuple[int, dict[str, Any]]:
        reason = "Service Unavailable" if status == 503 else "Internal Server Error"
        return status, _error(status, reason, "Temporary failure, please retry later")

    def do_PATCH(self) -> None:  # noqa: N802 - stdlib naming; answered with 405 like any non-POST
        self._dispatch()

    # --- the API ---------------------------------------------------------------------------
    def handle_api(self, body: bytes) -> None:
        svc = self.svc
        svc.count("requests")
        if not svc.bucket.take():
            svc.count("rate_limited")
            ra = svc.config.retry_after
            headers = {"Retry-After": f"{ra:g}"} if ra is not None else None
            self.send_json(429, _error(429, "Too Many Requests", "Too many requests per second"), headers)
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        if path != FIND_PARTY:
            svc.count("not_found_path")
            self.send_json(404, _error(404, "Not Found", f"No such method: {path}"))
            return
        if self.command != "POST":
            svc.count("method_not_allowed")
            self.send_json(405, _error(405, "Method Not Allowed", f"Request method '{self.command}' "
                                       "not supported"), {"Allow": "POST"})
            return
        scheme, _, key = (self.headers.get("Authorization") or "").strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "token" or not key:
            svc.count("unauthorized")
            self.send_json(401, _error(401, "Unauthorized", "Zero-length or missing API key"))
            return
        if key not in svc.tokens:
            svc.count("forbidden")
            self.send_json(403, _error(403, "Forbidden", "Unknown API key"))
            return
        if len(body) > MAX_BODY:
            svc.count("too_large")
            self.send_json(413, _error(413, "Request Entity Too Large", "Request is too large"))
            return
        try:
            request = self._parse(body)
        except ValueError as e:
            svc.count("bad_request")
            self.send_json(400, _error(400, "Bad Request", str(e)))
            return
        if not svc.take_quota(key):
            svc.count("forbidden")
            svc.count("quota_exhausted")
            self.send_json(403, _error(403, "Forbidden", "Daily request limit exhausted"))
            return
        with svc.in_flight():
            if svc.config.latency:
                time.sleep(svc.config.latency)
            found = self._find(request)
        svc.count("lookups")
        svc.count("found" if found else "not_found")
        svc.count("suggestions", len(found))
        self.send_json(200, {"suggestions": [suggestion(d) for d in found]})

    @staticmethod
    def _parse(body: bytes) -> dict[str, Any]:
        try:
            request = json.loads(body) if body else None
        except ValueError as e:
            raise ValueError(f"Invalid JSON: {e}") from None
        if not isinstance(request, dict):
            raise ValueError("Request body must be a JSON object")
        query = request.get("query")
        if isinstance(query, int) and not isinstance(query, bool):
            query = str(query)
        if not isinstance(query, str):
            raise ValueError("Field 'query' is required and must be a string")
        request["query"] = query.strip()
        count = request.get("count", DEFAULT_COUNT)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            raise ValueError(f"Field 'count' must be an integer from 1 to {MAX_COUNT}")
        request["count"] = count
        status = request.get("status")
        if status is not None and (not isinstance(status, list)
                                   or not all(isinstance(s, str) for s in status)):
            raise ValueError("Field 'status' must be a list of strings")
        for name in ("kpp", "branch_type", "type"):
            if request.get(name) is not None and not isinstance(request[name], str):
                raise ValueError(f"Field '{name}' must be a string")
        return request

    def _find(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        if not request["query"]:
            return []
        kpp, branch_type, kind = request.get("kpp"), request.get("branch_type"), request.get("type")
        statuses = set(request.get("status") or ())
        out = []
        for d in self.svc.registry.find(request["query"]):
            if kpp and d.get("kpp") != kpp:
                continue
            if branch_type and d.get("branch_type") != branch_type.upper():
                continue
            if kind and d.get("type") != kind.upper():
                continue
            if statuses and (d.get("state") or {}).get("status") not in statuses:
                continue
            out.append(d)
        return out[:request["count"]]

    # --- admin ---------------------------------------------------------------------------
    def handle_admin(self, path: str, body: bytes) -> bool:
        svc = self.svc
        if path == "/_sandbox/stats" and self.command == "GET":
            self.send_json(200, svc.snapshot())
        elif path == "/_sandbox/stats" and self.command == "DELETE":
            svc.reset_stats()
            self.send_json(200, svc.snapshot())
        elif path == "/_sandbox/config" and self.command == "GET":
            self.send_json(200, svc.config_view())
        elif path == "/_sandbox/config" and self.command == "POST":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("body must be a JSON object")
                svc.configure(changes)
            except (ValueError, TypeError) as e:
                self.send_json(400, {"error": "BAD_CONFIG", "error_description": str(e)})
                return True
            self.send_json(200, svc.config_view())
        else:
            return False
        return True


# --- starting it -----------------------------------------------------------------------------

class EgrulServer(RunningServer):
    """A running EGRUL emulator. `token` is an accepted API key; `base_url` is what a client
    takes as CRM_ETL_EGRUL_URL (it posts to `{base_url}/findById/party`)."""

    service: EgrulService

    @property
    def tokens(self) -> frozenset[str]:
        return self.httpd.service.tokens

    @property
    def token(self) -> str:
        return sorted(self.tokens)[0]

    @property
    def base_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def registry(self) -> Registry:
        return self.httpd.service.registry


def load_registry(path: str | Path) -> Registry:
    """Index the registry file; bad lines are logged with their number and skipped."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"EGRUL registry file {p} does not exist (give --registry a JSON-lines file)")
    t0 = time.perf_counter()
    registry = Registry(p)
    for bad in registry.bad_lines[:REPORT_BAD_LINES]:
        log.warning("EGRUL registry %s line %d: %s; line skipped", p, bad.line, bad.reason)
    if len(registry.bad_lines) > REPORT_BAD_LINES:
        log.warning("EGRUL registry %s: %d more bad lines skipped", p,
                    len(registry.bad_lines) - REPORT_BAD_LINES)
    log.info("EGRUL registry %s: %d records, %d INNs, %d bad lines, loaded in %.2f s", p,
             registry.records, registry.inns, len(registry.bad_lines), time.perf_counter() - t0)
    return registry


def start_egrul(registry: str | Path, *, host: str = "127.0.0.1", port: int = 0, latency: float = 0.4,
                rps: float | None = 30.0, tokens: Iterable[str] | None = None,
                daily_quota: int | None = None, faults: FaultSpec | None = None) -> EgrulServer:
    """Load the registry and serve it on a background thread. Without `tokens`, one random token
    is generated (read it from `.token`)."""
    config = EgrulConfig(latency=latency, rps=rps, daily_quota=daily_quota)
    config.validate()
    accepted = [t for t in (tokens if tokens is not None else [secrets.token_hex(20)]) if t]
    if not accepted:
        raise ValueError("the EGRUL emulator needs at least one non-empty API token")
    reg = load_registry(registry)
    service = EgrulService(reg, accepted, config)
    try:
        httpd = SandboxHTTPServer((host, port), EgrulHandler, service, FaultInjector(faults))
    except BaseException:
        service.close()
        raise
    return EgrulServer(httpd).start()
