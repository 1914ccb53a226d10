"""What can go wrong talking to a Bitrix24 portal, as exceptions the loader can act on.

The classification keys on the `error` code of the JSON body first and on the HTTP status
only when there is no code (the reference, §3: auth-stage statuses differ between the docs and
the server source, so the status alone is not reliable).

Four outcomes matter to a caller:

* `BitrixError`       - the portal refused this one call/entity (e.g. `ERROR_CORE` bad e-mail,
                        `""` "Not found"); the run goes on, the entity becomes a reject.
* `PortalRefused`     - credentials, scope, plan or method name are wrong: nothing will work
                        until a person fixes the configuration; the run must stop cleanly.
* `PortalUnavailable` - retries are exhausted (5xx, timeouts, connection errors, endless limits).
* `OutcomeUnknown`    - a write was sent but its answer was lost; it may or may not have been
                        executed. Never retried blindly; the loader reconciles by ORIGIN_ID.

No message built here contains the webhook URL or code: callers pass method names and
already-redacted text only.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from etl.secrets import scrub

#: Error codes that mean "this portal/credential will not serve us" (compared case-insensitively).
FATAL_CODES = frozenset(code.upper() for code in (
    "INVALID_CREDENTIALS",      # webhook code wrong, deleted, blocked or regenerated
    "NO_AUTH_FOUND",            # no authentication at all (malformed webhook URL)
    "insufficient_scope",       # webhook lacks the `crm` scope
    "ACCESS_DENIED",            # REST not available on the plan / user without CRM rights
    "expired_token",            # OAuth token expired
    "invalid_token",
    "WRONG_AUTH_TYPE",
    "ERROR_METHOD_NOT_FOUND",   # typo in a method name, or webhook URL without USER_ID
    "INVALID_REQUEST",          # "Https required."
    "OVERLOAD_LIMIT",           # REST blocked for this webhook by support
))

#: Within a batch, ACCESS_DENIED may concern one entity, so only these stop the run.
BATCH_FATAL_CODES = FATAL_CODES - {"ACCESS_DENIED"}

QUERY_LIMIT_EXCEEDED = "QUERY_LIMIT_EXCEEDED"
OPERATION_TIME_LIMIT = "OPERATION_TIME_LIMIT"


class BitrixError(Exception):
    """The portal answered with an error for one call or one batch command.

    `code` is the portal's `error` value (often `""` for legacy CRM validation errors),
    `description` its `error_description`, `status` the HTTP status (None inside a batch),
    `method` the REST method and `key` the batch command key, when known.
    """

    def __init__(self, code: str, description: str = "", status: int | None = None, *,
                 method: str | None = None, key: str | None = None,
                 extra: Mapping[str, Any] | None = None) -> None:
        self.code = code
        self.description = scrub(description or "")
        self.status = status
        self.method = method
        self.key = key
        self.extra = dict(extra or {})
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.method:
            where.append(self.method)
        if self.key is not None:
            where.append(f"command {self.key!r}")
        if self.status:
            where.append(f"HTTP {self.status}")
        head = f"{self.code or '(no code)'}: {self.description or '(no description)'}"
        return f"{head} [{', '.join(where)}]" if where else head

    @property
    def is_fatal(self) -> bool:
        return self.code.upper() in FATAL_CODES

    def __reduce__(self):  # keep pickling (multiprocessing, logging queues) working
        return (_rebuild, (type(self), self.code, self.description, self.status, self.method,
                           self.key, self.extra))


def _rebuild(cls, code, description, status, method, key, extra):  # noqa: ANN001, ANN202
    return cls(code, description, status, method=method, key=key, extra=extra)


class PortalRefused(BitrixError):
    """Fatal: credentials/scope/plan/method are wrong. Stop the run; a person must fix the config.

    When raised from `batch()`, `batch_result` holds what the batch did before (commands that
    succeeded were executed and must be recorded).
    """

    batch_result: Any = None

    def _message(self) -> str:
        return (super()._message() + " - the portal refuses this webhook; check the webhook URL "
                "(CRM_ETL_BITRIX24_WEBHOOK: https://portal/rest/USER_ID/CODE/), its `crm` scope "
                "and the portal's plan")


class RateLimited(BitrixError):
    """503 QUERY_LIMIT_EXCEEDED: the request was not executed; wait and send it again."""


class OperatingLimited(BitrixError):
    """429 OPERATION_TIME_LIMIT: the method is blocked for this webhook until its budget resets.

    The call was checked before execution, so it did not run.
    """


class ServerError(BitrixError):
    """A 5xx other than the rate limit (or an unreadable answer): the portal is unwell."""


class PortalUnavailable(Exception):
    """Retries exhausted: the portal did not give a usable answer after `attempts` tries.

    `cause` is a short, secret-free description of the last failure. `batch_result`: see
    `Bitrix24Client.batch`.
    """

    batch_result: Any = None

    def __init__(self, method: str, attempts: int, cause: str) -> None:
        self.method = method
        self.attempts = attempts
        self.cause = scrub(cause)
        super().__init__(f"Bitrix24 portal unavailable: {method} failed {attempts} times; "
                         f"last failure: {self.cause}")


class OutcomeUnknown(Exception):
    """A write was sent but its answer was lost (read timeout, dropped connection, 5xx that is
    not known to mean "not executed"). The portal may or may not have executed it.

    `commands` maps each command key to `(method, params)`; for a plain `call()` the key is the
    method name. Reconcile by looking the entities up (ORIGIN_ID) before sending them again.
    `batch_result` (when a batch's re-send of limited commands was lost) holds what the first
    request of that batch did.
    """

    batch_result: Any = None
    sent_at: float | None = None  # time.monotonic() when the lost request was sent

    def __init__(self, commands: Mapping[Any, tuple[str, Mapping[str, Any]]], cause: str) -> None:
        self.commands = dict(commands)
        self.cause = scrub(cause)
        methods = sorted({m for m, _ in self.commands.values()})
        super().__init__(f"outcome unknown for {len(self.commands)} command(s) "
                         f"({', '.join(methods)}): {self.cause}; look the entities up before "
                         f"sending them again")


def error_from_body(status: int, body: Any, *, method: str | None = None,
                    key: str | None = None) -> BitrixError:
    """Build the right `BitrixError` subclass for an error answer (`body` is the decoded JSON,
    or None when the body was not JSON)."""
    code, description, extra = "", "", {}
    if isinstance(body, Mapping) and "error" in body:
        raw = body.get("error")
        code = "" if raw in (None, 0, "0", False) else str(raw)
        description = str(body.get("error_description") or "")
        extra = {k: v for k, v in body.items() if k not in ("error", "error_description")}
    return classify(code, description, status, method=method, key=key, extra=extra)


def classify(code: str, description: str, status: int | None, *, method: str | None = None,
             key: str | None = None, extra: Mapping[str, Any] | None = None,
             fatal: frozenset[str] = FATAL_CODES) -> BitrixError:
    """The exception for one error answer; `fatal` is the set of codes that stop the run."""
    upper = code.upper()
    kw = {"method": method, "key": key, "extra": extra}
    if upper == QUERY_LIMIT_EXCEEDED:
        return RateLimited(code, description, status, **kw)
    if upper == OPERATION_TIME_LIMIT:
        return OperatingLimited(code, description, status, **kw)
    if upper in fatal:
        return PortalRefused(code, description, status, **kw)
    if not code and status is not None:
        if status == 429:
            return RateLimited("HTTP_429", description or "Too many requests", status, **kw)
        if status >= 500:
            return ServerError(f"HTTP_{status}", description, status, **kw)
        if status in (401, 403) or (status == 404 and not description):
            # An auth wall or a wrong URL answering without a Bitrix24 error body.
            return PortalRefused(f"HTTP_{status}", description or "not a Bitrix24 REST answer",
                                 status, **kw)
    if status is not None and status >= 500:
        return ServerError(code, description, status, **kw)
    return BitrixError(code, description, status, **kw)
