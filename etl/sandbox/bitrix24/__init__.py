"""A local Bitrix24 portal for the sandbox: `crm-etl emulate bitrix24`, `make demo`, tests.

Speaks the REST protocol of the methods crm-etl uses (webhook URLs, parameter parsing, `batch`,
limits, error shapes; see /work/shared/reference/bitrix24.md) over real HTTP, with its data in a
SQLite file. `start_bitrix24()` runs one on a background thread.
"""
from __future__ import annotations

from pathlib import Path

from etl.sandbox.bitrix24.portal import Portal
from etl.sandbox.bitrix24.server import Bitrix24Handler, Bitrix24Server
from etl.sandbox.faults import FaultInjector, FaultSpec
from etl.sandbox.httpserver import SandboxHTTPServer

__all__ = ["Bitrix24Server", "Portal", "start_bitrix24"]


def start_bitrix24(db: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 0, rate: float = 2.0,
                   burst: int = 50, operating_limit: float = 480.0, faults: FaultSpec | None = None,
                   user_id: int = 1, code: str | None = None, limits: bool = True) -> Bitrix24Server:
    """Start an emulated portal on a background thread and return it (`.url`, `.webhook_url`, `.stop()`).

    db: SQLite file (created if missing, kept after stop); None = a temporary file removed on stop.
    rate/burst: the request-rate leaky bucket (2/s, 50 on ordinary plans; 5/s, 250 on Enterprise).
    operating_limit: seconds of execution per method per 10 minutes. limits=False lifts both.
    code: the webhook code (random if None).
    """
    portal = Portal(db, rate=rate, burst=burst, operating_limit=operating_limit, user_id=user_id, code=code,
                    limits=limits)
    try:
        httpd = SandboxHTTPServer((host, port), Bitrix24Handler, portal, FaultInjector(faults))
    except BaseException:
        portal.close()
        raise
    return Bitrix24Server(httpd).start()
