"""The HTTP face of the emulated portal.

    /rest/USER_ID/CODE/METHOD[.json]    incoming-webhook calls (GET, POST form/multipart/JSON)
    /rest/METHOD[.json]                 OAuth-style calls: always refused (no app tokens here)

Order of checks, as on the portal: request-rate bucket (503 QUERY_LIMIT_EXCEEDED), webhook
credentials (401 INVALID_CREDENTIALS), method (404 ERROR_METHOD_NOT_FOUND), operating time
(429 OPERATION_TIME_LIMIT), then the call; one SQLite transaction per request.

Admin routes (besides the base's health and faults):
    GET  /_sandbox/stats         counters: HTTP requests (and in flight now), calls per method (batch commands
                                 included), batch commands run, 503/429 refusals, errors, rows
    POST /_sandbox/reset-stats   zero the counters
    GET  /_sandbox/config        rate, burst, operating_limit, operating_window (600 s; shorter for
                                 tests), limits, operating_cost(s), webhook
    POST /_sandbox/config        change any of those; {"rotate_code": true} / {"code": "..."} gives
                                 the webhook a new code, {"invalidate_code": true} makes every
                                 call fail with INVALID_CREDENTIALS; {"reset_limits": true}
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from etl.sandbox.bitrix24.errors import (INTERNAL_SERVER_ERROR, INVALID_CREDENTIALS, INVALID_TOKEN,
                                         METHOD_NOT_FOUND, NO_AUTH_FOUND, QUERY_LIMIT_EXCEEDED, RestError)
from etl.sandbox.bitrix24.params import request_params
from etl.sandbox.bitrix24.phpjson import php_shape
from etl.sandbox.bitrix24.portal import Portal
from etl.sandbox.httpserver import RunningServer, SandboxHandler, SandboxHTTPServer
from etl.secrets import redact_url

log = logging.getLogger(__name__)

_WEBHOOK = re.compile(r"/rest/(\d+)/([^/]+)/([^/]+?)/?")
_OAUTH = re.compile(r"/rest/([^/]+?)/?")


class Bitrix24Handler(SandboxHandler):
    service_name = "bitrix24"

    @property
    def portal(self) -> Portal:
        return self.server.service

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), redact_url(format % args))

    def _dispatch(self) -> None:
        if self.path.startswith("/_sandbox/"):
            super()._dispatch()
            return
        stats = self.portal.stats
        stats.count("http_requests")
        stats.count("in_flight")
        try:
            super()._dispatch()
        finally:
            stats.count("in_flight", -1)

    def fault_body(self, status: int) -> tuple[int, dict[str, Any]]:
        if status == 503:
            return 503, QUERY_LIMIT_EXCEEDED.payload()
        return status, INTERNAL_SERVER_ERROR.payload()

    def send_error_payload(self, error: RestError) -> None:
        self.send_json(error.status, error.payload())

    # --- the REST API ---------------------------------------------------------------------------
    def handle_api(self, body: bytes) -> None:
        try:
            self._handle_rest(body)
        except Exception:  # noqa: BLE001 - an emulator bug must look like the portal's 500, not a reset
            log.exception("bitrix24 emulator: request failed")
            self.send_error_payload(INTERNAL_SERVER_ERROR)

    def _handle_rest(self, body: bytes) -> None:
        portal = self.portal
        split = urlsplit(self.path)
        path = unquote(split.path)
        if not path.startswith("/rest/"):
            self.send_json(404, {"error": "NOT_FOUND", "error_description": "Not found"})
            return
        if not portal.admit():
            self.send_error_payload(QUERY_LIMIT_EXCEEDED)
            return
        params = request_params(split.query, body, self.headers.get("Content-Type", ""), self.command == "POST")
        webhook = _WEBHOOK.fullmatch(path)
        if webhook:
            user_id, code, method = webhook.groups()
            if not portal.authenticate(user_id, code):
                portal.stats.count_in("errors", INVALID_CREDENTIALS.code)
                self.send_error_payload(INVALID_CREDENTIALS)
                return
        else:
            oauth = _OAUTH.fullmatch(path)
            if oauth is None:
                self.send_error_payload(METHOD_NOT_FOUND)
                return
            error = INVALID_TOKEN if params.get("auth") else NO_AUTH_FOUND
            portal.stats.count_in("errors", error.code)
            self.send_error_payload(error)
            return
        method = method.lower()
        if method.endswith(".json"):
            method = method[:-5]
        with portal.store.transaction():
            outcome = portal.execute(method, params, credential=f"{user_id}/{code}")
        if outcome.error is not None:
            self.send_error_payload(outcome.error)
            return
        payload: dict[str, Any] = {"result": php_shape(outcome.result)}
        if outcome.total is not None:
            payload["total"] = outcome.total
        if outcome.next is not None:
            payload["next"] = outcome.next
        payload["time"] = outcome.time
        seconds = f"{outcome.time['processing']:.6f}" if outcome.time else "0"
        self.send_json(200, payload, {"X-Bitrix-Rest-Time": seconds, "X-Bitrix-Rest-User-Time": seconds,
                                      "X-Bitrix-Rest-System-Time": "0"})

    # --- admin ----------------------------------------------------------------------------------
    def handle_admin(self, path: str, body: bytes) -> bool:
        portal = self.portal
        if path == "/_sandbox/stats" and self.command == "GET":
            self.send_json(200, {**portal.stats.snapshot(), "entities": portal.store.counts(),
                                 "faults": dict(self.server.faults.counts)})
        elif path == "/_sandbox/reset-stats" and self.command == "POST":
            portal.stats.reset()
            self.send_json(200, {"ok": True})
        elif path == "/_sandbox/config" and self.command == "GET":
            self.send_json(200, self._config())
        elif path == "/_sandbox/config" and self.command == "POST":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object")
                portal.configure(changes)
            except (ValueError, TypeError) as e:
                self.send_json(400, {"error": "BAD_CONFIG", "error_description": str(e)})
                return True
            self.send_json(200, self._config())
        else:
            return False
        return True

    def _config(self) -> dict[str, Any]:
        portal = self.portal
        host, port = self.server.server_address[:2]
        url = f"http://{host}:{port}/rest/{portal.user_id}/{portal.code}/" if portal.code else None
        return {**portal.config(), "webhook_url": url}


class Bitrix24Server(RunningServer):
    """A running emulator; `webhook_url` is the inbound webhook base (follows code rotation)."""

    @property
    def portal(self) -> Portal:
        return self.httpd.service

    @property
    def webhook_url(self) -> str:
        portal = self.portal
        return f"{self.url}/rest/{portal.user_id}/{portal.code or 'invalidated'}/"

    @property
    def db_path(self) -> str:
        return str(self.portal.store.path)
