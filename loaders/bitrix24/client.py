"""The Bitrix24 REST client the loader uses: calls, batches, fast listing, throttling, retries.

Transport: `POST <webhook><method>.json` with a JSON body on one keep-alive `requests.Session`
(reference §1). Every request first passes the operating-time gate and the leaky bucket
(`throttle.py`), so a long run sends at the portal's rate without 503s.

Failures and what happens (tenacity drives the retries):

| answer                                   | read (idempotent)          | write                        |
|------------------------------------------|----------------------------|------------------------------|
| 503 QUERY_LIMIT_EXCEEDED                 | bucket marked full, retry  | same (not executed)          |
| 429 OPERATION_TIME_LIMIT                 | wait for reset, retry      | same (checked before running)|
| other 503, connect error/timeout         | backoff + jitter, retry    | same (never reached the app) |
| 500/502/504, read timeout, dropped conn. | backoff + jitter, retry    | `OutcomeUnknown`             |
| fatal code (credentials, scope, method)  | `PortalRefused` at once    | `PortalRefused` at once      |
| other error                              | `BitrixError`              | `BitrixError`                |

After `max_attempts` failed tries (or 50 rate-limit answers, or 4 operating-limit waits)
the call raises `PortalUnavailable`. A write is a method that is not a read (`*.get`, `*.list`,
`*.fields`, `crm.duplicate.findbycomm`, ...); a batch is a read when all its commands are;
`idempotent=True` overrides. 500/502/504 on a write count as "outcome unknown" on purpose: a
batch runs its commands one after another without a transaction, so a batch cut by a gateway
timeout may have executed part of its commands.

Inside a batch, commands refused for the operating limit were not executed; they are sent
again (after the wait) with `$result[...]` references to already answered commands resolved
here. For dependent chains pass `halt=True`, so nothing runs on top of a failed command.

The webhook never appears in logs, exception text or reprs: the URL is held as a `Secret`,
transport errors are described by type and a redacted message, and the DEBUG logger of
urllib3 (which prints request paths) gets the secret-scrubbing filter.
"""
from __future__ import annotations

import json
import logging
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from etl.config import Bitrix24Settings, ConfigError
from etl.secrets import ScrubFilter, Secret, redact_url, scrub
from loaders.bitrix24.batch import (MAX_COMMANDS, BatchResult, Command, as_map, normalise_commands,
                                    parse_batch, resolve_references)
from loaders.bitrix24.encoding import encode_command
from loaders.bitrix24.errors import (BitrixError, OperatingLimited, OutcomeUnknown, PortalRefused,
                                     PortalUnavailable, RateLimited, ServerError, error_from_body)
from loaders.bitrix24.throttle import LeakyBucket, OperatingTracker

log = logging.getLogger(__name__)

PAGE_SIZE = 50                 # legacy list methods return 50 rows per page
FINDBYCOMM_MAX_VALUES = 20     # crm.duplicate.findbycomm ignores values beyond 20
MAX_RATE_LIMIT_RETRIES = 50
MAX_OPERATING_RETRIES = 20     # 429 waits per request (each up to the 10-minute window)
_READ_SUFFIXES = (".get", ".list", ".fields", ".findbycomm")
_READ_METHODS = frozenset({"batch", "scope", "methods", "method.get", "profile", "server.time",
                           "user.current", "app.info"})


def is_read(method: str) -> bool:
    """True for methods that change nothing on the portal (safe to send twice)."""
    m = method.lower()
    return m in _READ_METHODS or m.endswith(_READ_SUFFIXES) or m.startswith("crm.enum.") \
        or m.endswith(".items.get")


@dataclass(frozen=True, slots=True)
class Response:
    """A successful answer: `result`, paging (`total`, `next`) and the `time` block."""

    result: Any
    total: int | None = None
    next: int | None = None
    time: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ClientStats:
    """What the client did; `Bitrix24Client.stats` returns a copy."""

    requests: int = 0             # HTTP requests sent, retries included
    commands: int = 0             # REST calls sent (a batch of n counts n), retries included
    retries: Counter = field(default_factory=Counter)  # by cause
    throttle_wait_s: float = 0.0  # waited by the leaky bucket
    operating_wait_s: float = 0.0  # waited for a method's operating budget
    backoff_wait_s: float = 0.0   # waited between retries
    http_503: int = 0             # QUERY_LIMIT_EXCEEDED answers
    http_429: int = 0             # OPERATION_TIME_LIMIT answers (call or batch command)
    outcome_unknown: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "commands": self.commands,
                "retries": dict(self.retries), "throttle_wait_s": round(self.throttle_wait_s, 3),
                "operating_wait_s": round(self.operating_wait_s, 3),
                "backoff_wait_s": round(self.backoff_wait_s, 3), "http_503": self.http_503,
                "http_429": self.http_429, "outcome_unknown": self.outcome_unknown}


class _Retry(Exception):
    """One failed try that may be retried; `cause` names the kind for limits and stats."""

    def __init__(self, cause: str, detail: str, error: BitrixError | None = None,
                 min_wait: float = 0.0) -> None:
        super().__init__(detail)
        self.cause, self.detail, self.error, self.min_wait = cause, detail, error, min_wait


class _Unknown(Exception):
    """A write may have been executed; becomes OutcomeUnknown with the caller's commands."""

    def __init__(self, detail: str, sent_at: float) -> None:
        super().__init__(detail)
        self.sent_at = sent_at  # time.monotonic() when the lost request went out


_TRANSIENT = ("server_error", "timeout", "connection", "bad_answer")


class Bitrix24Client:
    """Thread-safe client for one portal's inbound webhook."""

    def __init__(self, webhook: Secret | str, *, rate: float = 2.0, burst: int = 50,
                 timeout: float = 60.0, operating_limit: float = 480.0, max_attempts: int = 6,
                 session: requests.Session | None = None, batch_size: int = MAX_COMMANDS,
                 request_time_limit: float = 60.0) -> None:
        self._webhook = webhook if isinstance(webhook, Secret) else Secret(webhook)
        url = self._webhook.reveal()
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unclosed `[` of an IPv6 host
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"Bitrix24 webhook {redact_url(url) if url else '(empty)'} is not a "
                              f"URL; set CRM_ETL_BITRIX24_WEBHOOK to https://portal/rest/USER_ID/CODE/")
        if not url.endswith("/"):
            self._webhook = Secret(url + "/")
        if not 1 <= batch_size <= MAX_COMMANDS:
            raise ValueError(f"batch_size must be 1..{MAX_COMMANDS}, got {batch_size}")
        self.rate, self.burst, self.timeout = float(rate), int(burst), float(timeout)
        self.max_attempts = max(1, int(max_attempts))
        # the portal cuts a request after this long: a lost write is settled once this has passed
        self.request_time_limit = float(request_time_limit)
        self.batch_size = batch_size
        self._bucket = LeakyBucket(rate, burst)
        self._operating = OperatingTracker(operating_limit)
        self._own_session = session is None
        self._session = session or requests.Session()
        self._stats = ClientStats()
        self._lock = threading.Lock()
        self._key_seq = 0
        _guard_transport_logs()

    @classmethod
    def from_settings(cls, settings: Bitrix24Settings, **overrides: Any) -> "Bitrix24Client":
        kw: dict[str, Any] = dict(rate=settings.rate, burst=settings.burst, timeout=settings.timeout,
                                  operating_limit=settings.operating_limit,
                                  batch_size=settings.batch_size,
                                  request_time_limit=settings.request_time_limit)
        kw.update(overrides)
        return cls(settings.webhook, **kw)

    # --- public API ------------------------------------------------------------------------
    @property
    def portal(self) -> str:
        """The webhook URL with its code masked (for reports and logs)."""
        return redact_url(self._webhook.reveal())

    @property
    def stats(self) -> ClientStats:
        with self._lock:
            s = self._stats
            return ClientStats(s.requests, s.commands, Counter(s.retries), s.throttle_wait_s,
                               s.operating_wait_s, s.backoff_wait_s, s.http_503, s.http_429,
                               s.outcome_unknown)

    def operating_spent(self) -> dict[str, float]:
        """Per method, the best estimate of seconds used in the current 10-minute window."""
        return self._operating.snapshot()

    def call(self, method: str, params: Mapping[str, Any] | None = None, *,
             idempotent: bool | None = None) -> Response:
        """One REST call. Raises BitrixError, PortalRefused, PortalUnavailable, OutcomeUnknown."""
        params = dict(params or {})
        idempotent = is_read(method) if idempotent is None else idempotent
        try:
            body = self._send(method, params, idempotent=idempotent, budget=[method], commands=1)
        except _Unknown as e:
            self._count("outcome_unknown")
            raise _outcome_unknown({method: (method, params)}, e) from None
        tb = body.get("time") if isinstance(body.get("time"), Mapping) else {}
        self._operating.observe(method, tb)
        return Response(body.get("result"), _int(body.get("total")), _int(body.get("next")), tb)

    def batch(self, commands: Mapping[Any, Command] | Sequence[Command], *, halt: bool = False,
              idempotent: bool | None = None) -> BatchResult:
        """Run up to 50 commands in one request. Per-command errors land in `.errors`; a fatal
        code in any command raises PortalRefused. Commands refused for the operating limit are
        sent again after the wait; if that second request fails, the exception (OutcomeUnknown
        for the re-sent commands, PortalUnavailable, PortalRefused) carries `.batch_result`
        with what the first request did."""
        sent = normalise_commands(commands)
        if not sent:
            return BatchResult()
        if idempotent is None:
            idempotent = all(is_read(m) for _, (m, _) in sent.values())
        result = self._batch_once(sent, halt, idempotent, 0)
        callers = {wire: caller for wire, (caller, _) in sent.items()}
        for round_no in range(1, MAX_OPERATING_RETRIES + 1):
            # Commands refused for a limit were not executed: send them again (with the ones a
            # halt skipped), references to answered commands resolved here.
            limited = [k for k, e in result.errors.items()
                       if isinstance(e, (OperatingLimited, RateLimited))]
            if not limited:
                break
            again = set(limited) | (set(result.not_run) if halt else set())
            rerun = {wire: (caller, (m, resolve_references(p, result, callers)))
                     for wire, (caller, (m, p)) in sent.items() if caller in again}
            self._count_retry("operating", len(limited))
            try:
                again_result = self._batch_once(rerun, halt, idempotent, round_no)
            except (OutcomeUnknown, PortalUnavailable, PortalRefused) as e:
                e.batch_result = result  # the commands answered before were executed
                raise
            result.merge(again_result)
        for err in result.errors.values():
            if isinstance(err, PortalRefused):
                err.batch_result = result
                raise err
        return result

    def batch_many(self, commands: Mapping[Any, Command] | Iterable[Any], *, halt: bool = False,
                   idempotent: bool | None = None, size: int | None = None) -> Iterator[BatchResult]:
        """Chunk any number of commands into batches of `size` (default `batch_size`) and yield
        each batch's result as it comes. Items: `(key, (method, params))` pairs, or bare
        `(method, params)` commands (keys generated, unique per client)."""
        size = size or self.batch_size
        if not 1 <= size <= MAX_COMMANDS:
            raise ValueError(f"size must be 1..{MAX_COMMANDS}, got {size}")
        items = iter(commands.items() if isinstance(commands, Mapping) else commands)
        while chunk := list(islice(items, size)):
            keyed: dict[Any, Command] = {}
            for item in chunk:
                if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], tuple):
                    key, cmd = item
                else:
                    key, cmd = self._next_key(), item
                if key in keyed:
                    raise ValueError(f"batch command key {key!r} is used twice")
                keyed[key] = cmd
            yield self.batch(keyed, halt=halt, idempotent=idempotent)

    def list_all(self, method: str, *, filter: Mapping[str, Any] | None = None,  # noqa: A002
                 select: Sequence[str] | None = None, order_by_id: bool = True,
                 pages_per_batch: int = MAX_COMMANDS) -> Iterator[dict[str, Any]]:
        """Every row of a legacy list method (`crm.company.list`, `crm.requisite.list`, ...).

        With `order_by_id` (the default) it uses the fast keyset pattern of reference §5.1:
        `order {ID: ASC}`, `filter {>ID: last}`, `start=-1` (no COUNT per page), and chains up
        to `pages_per_batch` pages in one batch with `$result[pN][49][ID]`. The first page is
        fetched with `start=0` once, to learn `total` and size the batches. Without
        `order_by_id` it pages by `start` offsets in batches (for lists without an ID).
        """
        flt = dict(filter or {})
        sel = list(select) if select else None
        if not order_by_id:
            yield from self._list_by_offset(method, flt, sel)
            return
        if sel is not None and "ID" not in sel and "*" not in sel:
            sel.append("ID")
        last_id = 0
        if ">ID" in flt:
            last_id = max(last_id, _int(flt.pop(">ID")) or 0)
        if ">=ID" in flt:
            last_id = max(last_id, (_int(flt.pop(">=ID")) or 1) - 1)
        base: dict[str, Any] = {"order": {"ID": "ASC"}}
        if sel:
            base["select"] = sel

        def params(after: Any, start: int) -> dict[str, Any]:
            return {**base, "filter": {**flt, ">ID": after}, "start": start}

        first = self.call(method, params(last_id, 0))
        rows = _rows(first.result, method)
        yield from rows
        if rows:
            last_id = _row_id(rows[-1], method)
        remaining = (first.total or 0) - len(rows)
        full = len(rows) >= PAGE_SIZE
        grow = 1
        while full:
            pages = math.ceil(remaining / PAGE_SIZE) if remaining > 0 else grow
            pages = max(1, min(pages, pages_per_batch))
            grow = min(grow * 2, pages_per_batch)
            cmds = {f"p{i}": (method, params(last_id if i == 0 else f"$result[p{i - 1}][{PAGE_SIZE - 1}][ID]", -1))
                    for i in range(pages)}
            result = self.batch(cmds, halt=True, idempotent=True)
            for i in range(pages):
                key = f"p{i}"
                if key in result.errors:
                    raise result.errors[key]
                page = [r for r in _rows(result.results.get(key), method) if _row_id(r, method) > last_id]
                yield from page
                remaining -= len(page)
                if page:
                    last_id = _row_id(page[-1], method)
                if len(page) < PAGE_SIZE:
                    full = False
                    break

    def find_by_comm(self, type: str, values: Iterable[str],  # noqa: A002 - the API's name
                     entity_type: str | None = None) -> dict[str, list[int]]:
        """`crm.duplicate.findbycomm` over any number of values (20 per command, 50 commands
        per batch). Returns `{"CONTACT": [ids], "COMPANY": [ids], ...}` merged, ids unique in
        first-seen order; types without hits are absent."""
        distinct = list(dict.fromkeys(v.strip() for v in map(str, values) if v and str(v).strip()))
        chunks = [distinct[i:i + FINDBYCOMM_MAX_VALUES] for i in range(0, len(distinct), FINDBYCOMM_MAX_VALUES)]
        commands = []
        for i, chunk in enumerate(chunks):
            p: dict[str, Any] = {"type": type, "values": chunk}
            if entity_type:
                p["entity_type"] = entity_type
            commands.append((f"f{i}", ("crm.duplicate.findbycomm", p)))
        found: dict[str, dict[int, None]] = {}
        for result in self.batch_many(commands, idempotent=True):
            for err in result.errors.values():
                raise err
            for key in sorted(result.results, key=lambda k: int(k[1:])):
                for etype, ids in as_map(result.results[key]).items():
                    bucket = found.setdefault(str(etype), {})
                    for raw in ids if isinstance(ids, list) else as_map(ids).values():
                        if (n := _int(raw)) is not None:
                            bucket[n] = None
        return {etype: list(ids) for etype, ids in found.items()}

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def __enter__(self) -> "Bitrix24Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Bitrix24Client(portal={self.portal!r}, rate={self.rate}, burst={self.burst})"

    # --- internals -------------------------------------------------------------------------
    def _next_key(self) -> str:
        with self._lock:
            self._key_seq += 1
            return f"k{self._key_seq}"

    def _batch_once(self, sent: Mapping[str, tuple[Any, Command]], halt: bool,
                    idempotent: bool, strikes: int) -> BatchResult:
        cmd = {wire: encode_command(m, p) for wire, (_, (m, p)) in sent.items()}
        methods = sorted({m for _, (m, _) in sent.values()})
        try:
            body = self._send("batch", {"halt": 1 if halt else 0, "cmd": cmd}, idempotent=idempotent,
                              budget=["batch", *methods], commands=len(cmd))
        except _Unknown as e:
            self._count("outcome_unknown")
            raise _outcome_unknown({caller: c for caller, c in sent.values()}, e) from None
        self._operating.observe("batch", body.get("time"))
        result = parse_batch(body, sent)
        method_of = {caller: m for caller, (m, _) in sent.values()}
        for caller, tb in result.times.items():
            self._operating.observe(method_of.get(caller, "batch"), tb)
        for caller, err in result.errors.items():
            if isinstance(err, OperatingLimited):
                self._count("http_429")
                self._operating.block(method_of[caller], _probe_after(strikes + 1))
        return result

    def _send(self, method: str, payload: Mapping[str, Any], *, idempotent: bool,
              budget: Sequence[str], commands: int) -> dict[str, Any]:
        """POST with throttling and retries; returns the decoded success body."""
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        url = self._webhook.reveal() + method + ".json"
        failures: Counter = Counter()

        def attempt() -> dict[str, Any]:
            try:
                return self._post_once(url, method, data, idempotent, budget, commands,
                                       failures["operating"] + 1)
            except _Retry as r:
                failures["transient" if r.cause in _TRANSIENT else r.cause] += 1
                raise

        def stop(state: RetryCallState) -> bool:
            return (failures["transient"] >= self.max_attempts
                    or failures["rate_limit"] >= MAX_RATE_LIMIT_RETRIES
                    or failures["operating"] >= MAX_OPERATING_RETRIES)

        def wait(state: RetryCallState) -> float:
            r = state.outcome.exception() if state.outcome else None
            if not isinstance(r, _Retry):
                return 0.0
            if r.cause == "operating":
                return 0.0  # the operating gate before the next try does the waiting
            n = failures["rate_limit"] if r.cause == "rate_limit" else failures["transient"]
            cap = 5.0 if r.cause == "rate_limit" else 30.0
            base = min(cap, 0.25 * 2 ** (n - 1)) if r.cause == "rate_limit" else min(cap, 0.5 * 2 ** (n - 1))
            return max(r.min_wait, base / 2 + random.uniform(0, base / 2))

        def before_sleep(state: RetryCallState) -> None:
            r = state.outcome.exception() if state.outcome else None
            if isinstance(r, _Retry):
                self._count_retry(r.cause)
                log.warning("Bitrix24 %s: %s; retrying in %.1f s (try %d)", method, r.detail,
                            state.upcoming_sleep, state.attempt_number + 1)

        retrying = Retrying(retry=retry_if_exception_type(_Retry), stop=stop, wait=wait,
                            before_sleep=before_sleep, sleep=self._backoff_sleep, reraise=True)
        try:
            return retrying(attempt)
        except _Retry as r:
            attempts = sum(failures.values())
            if r.error is not None and isinstance(r.error, (RateLimited, OperatingLimited)):
                cause = str(r.error)
            else:
                cause = r.detail
            raise PortalUnavailable(method, attempts, cause) from None

    def _post_once(self, url: str, method: str, data: bytes, idempotent: bool,
                   budget: Sequence[str], commands: int, strikes: int) -> dict[str, Any]:
        while (w := self._operating.wait_for(budget)) > 0:
            log.info("Bitrix24 %s: operating-time budget nearly used; waiting %.1f s for its reset",
                     method, w)
            self._sleep(w, "operating_wait_s")
        w = self._bucket.acquire()
        if w > 0:
            self._sleep(w, "throttle_wait_s")
        with self._lock:
            self._stats.requests += 1
            self._stats.commands += commands
        sent_at = time.monotonic()
        try:
            resp = self._session.post(url, data=data, timeout=(min(10.0, self.timeout), self.timeout),
                                      headers={"Content-Type": "application/json; charset=utf-8",
                                               "Accept": "application/json"},
                                      allow_redirects=False)
        except requests.exceptions.RequestException as exc:
            detail = describe_transport_error(exc)
            if not _was_sent(exc):
                raise _Retry("connection", detail) from None
            if not idempotent:
                raise _Unknown(detail, sent_at) from None
            cause = "timeout" if isinstance(exc, requests.exceptions.Timeout) else "connection"
            raise _Retry(cause, detail) from None
        status = resp.status_code
        try:
            body = json.loads(resp.content) if resp.content else None
        except ValueError:
            body = None
        if status == 200 and isinstance(body, dict) and "error" not in body and "result" in body:
            return body
        if status == 200 or (200 <= status < 300):
            detail = f"HTTP {status} without a REST result ({len(resp.content)} bytes)"
            if not idempotent:
                raise _Unknown(detail, sent_at)
            raise _Retry("bad_answer", detail)
        if 300 <= status < 400:
            raise PortalRefused(f"HTTP_{status}", "the webhook URL redirects; use the portal's "
                                "final https address", status, method=method)
        err = error_from_body(status, body, method=method)
        if isinstance(err, RateLimited):
            self._count("http_503")
            self._bucket.mark_full()
            raise _Retry("rate_limit", str(err), err, _retry_after(resp))
        if isinstance(err, OperatingLimited):
            self._count("http_429")
            for m in budget[1:] if method == "batch" and len(budget) > 1 else budget:
                self._operating.block(m, _probe_after(strikes))
            raise _Retry("operating", str(err), err)
        if isinstance(err, ServerError):
            if status == 503 or idempotent:
                raise _Retry("server_error", str(err), err, _retry_after(resp))
            raise _Unknown(str(err), sent_at)
        raise err

    def _sleep(self, seconds: float, stat: str) -> None:
        if seconds <= 0:
            return
        time.sleep(seconds)
        with self._lock:
            setattr(self._stats, stat, getattr(self._stats, stat) + seconds)

    def _backoff_sleep(self, seconds: float) -> None:
        self._sleep(seconds, "backoff_wait_s")

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self._stats, name, getattr(self._stats, name) + n)

    def _count_retry(self, cause: str, n: int = 1) -> None:
        with self._lock:
            self._stats.retries[cause] += n

    def _list_by_offset(self, method: str, flt: dict[str, Any],
                        sel: list[str] | None) -> Iterator[dict[str, Any]]:
        base: dict[str, Any] = {"filter": flt} if flt else {}
        if sel:
            base["select"] = sel
        first = self.call(method, {**base, "start": 0})
        yield from _rows(first.result, method)
        if first.next is None:
            return
        total = first.total or 0
        starts = iter(range(first.next, max(total, first.next + 1), PAGE_SIZE))
        while chunk := list(islice(starts, MAX_COMMANDS)):
            cmds = {f"s{s}": (method, {**base, "start": s}) for s in chunk}
            result = self.batch(cmds, idempotent=True)
            for s in chunk:
                key = f"s{s}"
                if key in result.errors:
                    raise result.errors[key]
                yield from _rows(result.results.get(key), method)


def _outcome_unknown(commands: Mapping[Any, Command], e: _Unknown) -> OutcomeUnknown:
    err = OutcomeUnknown(commands, str(e))
    err.sent_at = e.sent_at
    return err


def describe_transport_error(exc: BaseException) -> str:
    """`ReadTimeout: ...` with every webhook-looking path and registered secret masked."""
    text = re.sub(r"(/rest/\d+/)[^/\s'\")]+", r"\1***", str(exc))
    text = scrub(text)
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(exc).__name__}: {text}"


def _was_sent(exc: BaseException) -> bool:
    """False only when the request provably never reached the server (connect failed)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return True
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, urllib3.exceptions.ConnectTimeoutError):  # incl. NewConnectionError
            return False
        if isinstance(e, BaseException):
            stack.extend([getattr(e, "reason", None), e.__cause__, e.__context__, *e.args])
    return True


def _probe_after(strikes: int) -> float:
    """After a 429 with no known reset time: probe again after 1, 2, 4 ... 60 s."""
    return float(min(60, 2 ** max(0, strikes - 1)))


def _retry_after(resp: requests.Response) -> float:
    value = resp.headers.get("Retry-After")
    try:
        return min(60.0, max(0.0, float(value))) if value else 0.0
    except ValueError:
        return 0.0


def _rows(result: Any, method: str) -> list[dict[str, Any]]:
    if result is None or result == []:
        return []
    if isinstance(result, list):
        return result
    if isinstance(result, Mapping):
        if isinstance(result.get("items"), list):
            return result["items"]
        return list(as_map(result).values())
    raise BitrixError("", f"{method} returned {type(result).__name__}, not a list of rows",
                      method=method)


def _row_id(row: Mapping[str, Any], method: str) -> int:
    n = _int(row.get("ID")) if isinstance(row, Mapping) else None
    if n is None:
        raise BitrixError("", f"{method} rows carry no ID; list it with order_by_id=False",
                          method=method)
    return n


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_guard_lock = threading.Lock()


def _guard_transport_logs() -> None:
    """urllib3 logs request paths (so webhook codes) at DEBUG; scrub them whatever the app's
    logging set-up."""
    with _guard_lock:
        logger = logging.getLogger("urllib3.connectionpool")
        if not any(isinstance(f, ScrubFilter) for f in logger.filters):
            logger.addFilter(ScrubFilter())
