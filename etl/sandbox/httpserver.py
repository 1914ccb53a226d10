"""The HTTP server both sandbox services are built on.

Real HTTP/1.1 over loopback (keep-alive, threads), so a client cannot tell it from the real
service by transport. Every request first passes the fault injector. Paths under `/_sandbox/`
are the sandbox's own admin API (not part of the emulated service):

  GET  /_sandbox/health           -> {"ok": true, "service": ...}
  GET  /_sandbox/faults           -> the current FaultSpec and how many faults were injected
  POST /_sandbox/faults  {spec}   -> replace the FaultSpec (JSON body, FaultSpec fields)

A service subclasses `SandboxHandler`, implements `handle_api()`, and may add admin routes in
`handle_admin()`.
"""
from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from etl.sandbox.faults import FaultInjector, FaultSpec

log = logging.getLogger(__name__)


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type["SandboxHandler"],
                 service: Any, faults: FaultInjector) -> None:
        self.service = service
        self.faults = faults
        super().__init__(address, handler)


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes; with Nagle on, each answer on a kept-alive
    # connection stalls ~40 ms waiting for the delayed ACK
    disable_nagle_algorithm = True
    server: SandboxHTTPServer
    service_name: ClassVar[str] = "sandbox"

    # --- to implement -------------------------------------------------------------------
    def handle_api(self, body: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def fault_body(self, status: int) -> tuple[int, dict[str, Any]]:
        """The error a real service would give for an injected 500/503."""
        return status, {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}

    def handle_admin(self, path: str, body: bytes) -> bool:
        """Service-specific admin routes; return True if handled."""
        return False

    # --- plumbing ---------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        body = self.read_body()
        path = self.path.split("?", 1)[0]
        if path.startswith("/_sandbox/"):
            self._admin(path, body)
            return
        kind, delay = self.server.faults.decide()
        if delay:
            time.sleep(delay)
        if kind == "lost":
            self.wfile = io.BytesIO()  # handled as usual; the answer goes nowhere
            self.handle_api(body)
        if kind in ("drop", "lost"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if kind in ("500", "503"):
            status, payload = self.fault_body(int(kind))
            self.send_json(status, payload)
            return
        self.handle_api(body)

    def _admin(self, path: str, body: bytes) -> None:
        if path == "/_sandbox/health":
            self.send_json(200, {"ok": True, "service": self.service_name})
        elif path == "/_sandbox/faults" and self.command == "GET":
            f = self.server.faults
            self.send_json(200, {"spec": f.spec.to_dict(), "injected": dict(f.counts)})
        elif path == "/_sandbox/faults" and self.command == "POST":
            try:
                spec = FaultSpec.from_dict(json.loads(body or b"{}"))
            except (ValueError, TypeError) as e:
                self.send_json(400, {"error": "BAD_FAULT_SPEC", "error_description": str(e)})
                return
            self.server.faults.configure(spec)
            self.send_json(200, {"spec": spec.to_dict()})
        elif not self.handle_admin(path, body):
            self.send_json(404, {"error": "NOT_FOUND", "error_description": f"no admin route {path}"})

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()


class RunningServer:
    """A sandbox server started on a background thread (tests, `crm-etl demo`)."""

    def __init__(self, httpd: SandboxHTTPServer) -> None:
        self.httpd = httpd
        self.thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=type(httpd.service).__name__, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def service(self) -> Any:
        return self.httpd.service

    def start(self) -> "RunningServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
        close = getattr(self.httpd.service, "close", None)
        if close:
            close()

    def __enter__(self) -> "RunningServer":
        return self.start() if not self.thread.is_alive() else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
