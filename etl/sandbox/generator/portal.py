"""A small Bitrix24 REST client for the sandbox tools (applying the CRM seed, checking a CRM
against the truth). Deliberately separate from the loader's client: a checker should not share
the code it checks.

JSON POSTs to `<webhook><method>.json`; `batch` with commands in PHP query-string form; listing
by `start=-1` + `>ID` chained inside one batch (`$result[pN][49][ID]`, 50 pages a request).
A client-side leaky bucket keeps under the portal's rate (2/s, burst 50 by default);
503 QUERY_LIMIT_EXCEEDED and 429 OPERATION_TIME_LIMIT are waited out (the command did not run);
other failures of reads are retried a few times. The webhook never appears in messages.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from etl.secrets import Secret, redact_url, register, scrub

PAGE = 50
MAX_COMMANDS = 50


class PortalError(Exception):
    """The portal refused a call, or stayed unreachable; the message names the method."""


def php_query(params: Mapping[str, Any]) -> str:
    """`{"fields": {"TITLE": "A+B", "PHONE": [{"VALUE": "+7..."}]}}` ->
    `fields[TITLE]=A%2BB&fields[PHONE][0][VALUE]=%2B7...` (PHP `parse_str` reads it back)."""
    items: list[str] = []

    def walk(key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{key}[{k}]", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{key}[{i}]", v)
        else:
            text = "" if value is None else str(value)
            items.append(f"{quote(key, safe='[]')}={quote(text, safe='$[]')}")

    for k, v in params.items():
        walk(str(k), v)
    return "&".join(items)


class _Bucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.level = 0.0
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        with self.lock:
            now = time.monotonic()
            self.level = max(0.0, self.level - (now - self.at) * self.rate)
            self.at = now
            if self.level + 1 > self.burst:
                wait = (self.level + 1 - self.burst) / self.rate
                time.sleep(wait)
                self.level -= wait * self.rate
                self.at = time.monotonic()
            self.level += 1

    def full(self) -> None:
        with self.lock:
            self.level = float(self.burst)
            self.at = time.monotonic()


class Portal:
    def __init__(self, webhook_url: str, *, rate: float = 2.0, burst: int = 50, timeout: float = 60.0,
                 patience: float = 300.0) -> None:
        register(webhook_url)
        self._webhook = Secret(webhook_url.rstrip("/") + "/")
        self._bucket = _Bucket(rate, max(1, burst - 2))
        self._session = requests.Session()
        self.timeout = timeout
        self.patience = patience            # seconds of limit answers to wait out per call
        self.requests = 0

    def __repr__(self) -> str:
        return f"Portal({redact_url(self._webhook.reveal())!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Portal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any] | None = None, *, read: bool = True) -> dict:
        """The whole response body of one method (`result`, `total`, `next`, `time`)."""
        url = f"{self._webhook.reveal()}{method}.json"
        deadline = time.monotonic() + self.patience
        failures = 0
        while True:
            self._bucket.take()
            self.requests += 1
            try:
                resp = self._session.post(url, json=dict(params or {}), timeout=self.timeout)
            except requests.RequestException as e:
                failures += 1
                if not read or failures >= 4:
                    raise PortalError(f"{method}: portal unreachable ({type(e).__name__}: "
                                      f"{scrub(str(e))[:200]})") from None
                time.sleep(0.5 * 2 ** failures)
                continue
            body = _json(resp)
            error = body.get("error") if isinstance(body, dict) else None
            if resp.status_code == 503 and error == "QUERY_LIMIT_EXCEEDED":
                self._bucket.full()
                self._wait(deadline, 1.0, method, error)
                continue
            if resp.status_code == 429 or error == "OPERATION_TIME_LIMIT":
                self._wait(deadline, 5.0, method, "OPERATION_TIME_LIMIT")
                continue
            if resp.status_code >= 500 and read and failures < 3:
                failures += 1
                time.sleep(0.5 * 2 ** failures)
                continue
            if error is not None or resp.status_code >= 400 or not isinstance(body, dict):
                desc = body.get("error_description", "") if isinstance(body, dict) else ""
                raise PortalError(scrub(f"{method}: HTTP {resp.status_code} {error or ''} {desc}".strip()))
            return body

    def _wait(self, deadline: float, seconds: float, method: str, what: str) -> None:
        if time.monotonic() + seconds > deadline:
            raise PortalError(f"{method}: the portal kept answering {what} for {self.patience:.0f} s")
        time.sleep(seconds)

    def batch(self, commands: Mapping[str, str], *, halt: bool = False, read: bool = True) -> dict:
        """`{key: "method?query"}` -> the batch's inner `result` map (`result`, `result_error`, ...),
        empty maps as dicts."""
        if len(commands) > MAX_COMMANDS:
            raise ValueError(f"a batch holds at most {MAX_COMMANDS} commands, got {len(commands)}")
        body = self.call("batch", {"halt": int(halt), "cmd": dict(commands)}, read=read)
        inner = body.get("result") or {}
        return {k: (v if isinstance(v, dict) else {}) for k, v in inner.items()}

    def list_all(self, method: str, *, select: list[str], filter: Mapping[str, Any] | None = None,  # noqa: A002
                 pages_per_request: int = MAX_COMMANDS) -> Iterator[dict]:
        """Every row of a CRM list method, ID ascending, 50 pages per request."""
        last = 0
        while True:
            cmds = {}
            for i in range(pages_per_request):
                flt = dict(filter or {})
                flt[">ID"] = last if i == 0 else f"$result[p{i - 1}][{PAGE - 1}][ID]"
                cmds[f"p{i}"] = f"{method}?" + php_query(
                    {"order": {"ID": "ASC"}, "filter": flt, "select": select, "start": -1})
            res = self.batch(cmds)
            results, errors = res.get("result", {}), res.get("result_error", {})
            for i in range(pages_per_request):
                key = f"p{i}"
                if key in errors:
                    e = errors[key]
                    raise PortalError(f"{method}: {e.get('error', '')} {e.get('error_description', '')}".strip())
                rows = results.get(key) or []
                if isinstance(rows, dict):
                    rows = list(rows.values())
                yield from rows
                if len(rows) < PAGE:
                    return
                last = int(rows[-1]["ID"])


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return {}
