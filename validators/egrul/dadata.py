"""DaData `findById/party` client (and so the sandbox EGRUL emulator, which speaks the same protocol).

- One long-lived `requests.Session`: keep-alive matters, DaData accepts only 60 *new* connections
  per minute. Its pool holds `concurrency` connections and blocks rather than opening more.
- A 10-digit INN is asked with `branch_type: MAIN` (otherwise branches come back too); among
  several records the head office wins, then an ACTIVE one (a 12-digit INN can have several ИП).
- Timeouts, connection errors, 408, 429 and 5xx are retried (tenacity: exponential backoff with
  jitter, or the server's Retry-After), then raised as `LookupFailed`. Anything else the server
  refuses (400, 401, 403, 404, 405, 413, ...) is `ProviderRefused`, naming what to fix.
- A `RateLimiter` shared by all threads keeps the client under the requests-per-second limit.
- The API key travels only in the Authorization header; it is a `Secret`, and every message that
  quotes the server is passed through `scrub`.
"""
from __future__ import annotations

import email.utils
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import (RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential,
                      wait_random)

from etl.secrets import Secret, redact_url, scrub
from validators.egrul.provider import LookupFailed, LookupResult, ProviderRefused, Status
from validators.egrul.ratelimit import RateLimiter

log = logging.getLogger(__name__)

FIND_PARTY = "findById/party"
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
ENV_URL, ENV_TOKEN = "CRM_ETL_EGRUL_URL", "CRM_ETL_EGRUL_TOKEN"


class _Transient(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class _TokenAuth(requests.auth.AuthBase):
    def __init__(self, token: Secret) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = "Token " + self._token.reveal()
        return r

    def __repr__(self) -> str:
        return "_TokenAuth(***)"


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def choose_record(inn: str, suggestions: list[Any]) -> dict[str, Any] | None:
    """The record that speaks for the INN: head office (MAIN) first, then an ACTIVE one."""
    records = [s["data"] for s in suggestions
               if isinstance(s, dict) and isinstance(s.get("data"), dict) and s["data"].get("inn") == inn]
    if not records:
        return None
    records.sort(key=lambda d: (d.get("branch_type") not in (None, "MAIN"),
                                (d.get("state") or {}).get("status") != Status.ACTIVE))
    return records[0]


class DadataProvider:
    """`RegistryProvider` over DaData's findById/party. Thread-safe; share one per run."""

    def __init__(self, base_url: str, token: Secret | str, *, timeout: float = 10.0,
                 rate: float | None = 20.0, max_retries: int = 3, concurrency: int = 8,
                 backoff: float = 1.0, max_backoff: float = 30.0, burst: int = 1) -> None:
        token = token if isinstance(token, Secret) else Secret(token)
        if not token:
            raise ProviderRefused(f"no EGRUL API key: set {ENV_TOKEN} to your DaData API key "
                                  "(in the sandbox: the key `crm-etl emulate egrul` printed)")
        try:
            parts = urlsplit(base_url)
        except ValueError:  # e.g. an unclosed `[` of an IPv6 host
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProviderRefused(f"{ENV_URL}={redact_url(base_url)!r} is not an http(s) URL; expected e.g. "
                                  "https://suggestions.dadata.ru/suggestions/api/4_1/rs")
        if max_retries < 0 or concurrency < 1 or timeout <= 0:
            raise ValueError("max_retries must be >= 0, concurrency >= 1 and timeout > 0")
        self.base_url = base_url.rstrip("/")
        self.name = "dadata@" + (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency
        self._endpoint = f"{self.base_url}/{FIND_PARTY}"
        self._shown_url = redact_url(self._endpoint)
        self._auth = _TokenAuth(token)
        self._limiter = RateLimiter(rate, burst) if rate else None
        # backoff, 2*backoff, 4*backoff ... (capped) plus up to `backoff` of random jitter
        self._backoff = wait_exponential(multiplier=backoff, max=max_backoff) + wait_random(0, backoff)
        self._max_backoff = max_backoff
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=concurrency, pool_block=True, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"Content-Type": "application/json", "Accept": "application/json"})

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> "DadataProvider":
        """From `etl.config.EgrulSettings` (url, token, rate, concurrency, timeout)."""
        kwargs = dict(timeout=settings.timeout, rate=settings.rate, concurrency=settings.concurrency)
        kwargs.update(overrides)
        return cls(settings.url, settings.token, **kwargs)

    def __repr__(self) -> str:
        return f"DadataProvider({redact_url(self.base_url)!r}, token=***)"

    def __enter__(self) -> "DadataProvider":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # --- lookups ---------------------------------------------------------------------------
    def lookup(self, inn: str, kpp: str | None = None) -> LookupResult:
        """Look one INN up (optionally one branch by KPP). Raises LookupFailed / ProviderRefused."""
        inn = inn.strip()
        payload: dict[str, Any] = {"query": inn}
        if kpp:
            payload["kpp"] = kpp
        elif len(inn) == 10:
            payload["branch_type"] = "MAIN"
        suggestions = self._request(inn, payload)
        return LookupResult.from_data(inn, choose_record(inn, suggestions))

    def _request(self, inn: str, payload: dict[str, Any]) -> list[Any]:
        retrying = Retrying(retry=retry_if_exception_type(_Transient),
                            stop=stop_after_attempt(self.max_retries + 1),
                            wait=self._wait, before_sleep=self._log_retry, reraise=True)
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return self._post(payload)
        except _Transient as e:
            raise LookupFailed(inn, e.reason, attempts) from None
        raise AssertionError("unreachable")  # pragma: no cover - Retrying either returns or raises

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, self._max_backoff)
        return min(self._backoff(state), self._max_backoff)

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.debug("EGRUL attempt %d failed (%s); retrying in %.2f s", state.attempt_number, exc, wait)

    def _post(self, payload: dict[str, Any]) -> list[Any]:
        if self._limiter:
            self._limiter.acquire()
        try:
            resp = self._session.post(self._endpoint, json=payload, auth=self._auth, timeout=self.timeout)
        except requests.exceptions.Timeout:
            raise _Transient(f"no answer from {self._shown_url} within {self.timeout:g} s") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema) as e:
            raise ProviderRefused(f"{ENV_URL} is not usable ({type(e).__name__}): "
                                  f"{self._shown_url}") from None
        except requests.exceptions.RequestException as e:
            raise _Transient(f"connection to {self._shown_url} failed ({type(e).__name__})") from None
        if resp.status_code == 200:
            return self._suggestions(resp)
        detail = self._server_message(resp)
        if resp.status_code in TRANSIENT_STATUSES:
            raise _Transient(f"HTTP {resp.status_code} {resp.reason}{detail}",
                             parse_retry_after(resp.headers.get("Retry-After")))
        raise self._refusal(resp.status_code, resp.reason, detail)

    def _suggestions(self, resp: requests.Response) -> list[Any]:
        try:
            body = resp.json()
        except ValueError:
            body = None
        suggestions = body.get("suggestions") if isinstance(body, dict) else None
        if not isinstance(suggestions, list):
            raise ProviderRefused(
                f"{self._shown_url} answered 200 without a JSON `suggestions` list: {ENV_URL} does not "
                "point to a DaData-compatible findById/party API "
                "(expected e.g. https://suggestions.dadata.ru/suggestions/api/4_1/rs)", 200)
        return suggestions

    @staticmethod
    def _server_message(resp: requests.Response) -> str:
        try:
            body = resp.json()
        except ValueError:
            body = None
        msg = (body.get("message") or body.get("error_description") or "") if isinstance(body, dict) else ""
        msg = scrub(str(msg)).strip()[:200]
        return f" ({msg})" if msg else ""

    def _refusal(self, status: int, reason: str, detail: str) -> ProviderRefused:
        head = f"EGRUL provider {self._shown_url} refused the request: HTTP {status} {reason}{detail}"
        if status == 401:
            fix = f"no API key was accepted; set {ENV_TOKEN} to your DaData API key"
        elif status == 403:
            fix = (f"the API key in {ENV_TOKEN} is unknown or its e-mail is not confirmed, or the daily "
                   "request limit is used up; check the key, or rerun after the quota resets "
                   "(records not looked up stay pending)")
        elif status in (404, 405):
            fix = (f"{ENV_URL} does not point to a findById/party API; expected a base URL like "
                   "https://suggestions.dadata.ru/suggestions/api/4_1/rs")
        elif status in (400, 413):
            fix = "the request was rejected as malformed or too large: a bug in crm-etl, please report it"
        else:
            fix = f"unexpected answer; check {ENV_URL} and the provider's status page"
        return ProviderRefused(scrub(f"{head}: {fix}"), status)
