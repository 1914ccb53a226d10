"""`crm-etl emulate bitrix24`: a local Bitrix24 portal in the foreground until SIGINT/SIGTERM."""
from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from etl.sandbox.faults import FaultSpec

DEFAULT_PORT = 8024


@click.command("bitrix24")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 = any free port).")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite file with the portal's data (kept between runs). Default: a temporary file.")
@click.option("--code", help="Webhook code (default: random). The full webhook URL is printed at start.")
@click.option("--user-id", default=1, show_default=True, type=click.IntRange(1), help="Webhook user id.")
@click.option("--rate", default=2.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Request-rate bucket drain, requests/s (Enterprise: 5).")
@click.option("--burst", default=50, show_default=True, type=click.IntRange(1),
              help="Request-rate bucket size (Enterprise: 250).")
@click.option("--operating-limit", default=480.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds of execution per method per 10 minutes before OPERATION_TIME_LIMIT.")
@click.option("--no-limits", is_flag=True, help="Lift the request-rate and operating-time limits.")
@click.option("--fault-500", default=0.0, type=click.FloatRange(0, 1), help="Share of requests answered 500.")
@click.option("--fault-503", default=0.0, type=click.FloatRange(0, 1),
              help="Share of requests answered 503 QUERY_LIMIT_EXCEEDED.")
@click.option("--fault-slow", default=0.0, type=click.FloatRange(0, 1), help="Share of requests answered slowly.")
@click.option("--slow-seconds", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="Delay of a slow answer.")
@click.option("--fault-drop", default=0.0, type=click.FloatRange(0, 1),
              help="Share of connections closed without an answer.")
@click.option("--seed", type=int, help="Seed for the fault decisions (same seed, same faults).")
def bitrix24_command(host: str, port: int, db: Path | None, code: str | None, user_id: int, rate: float,
                     burst: int, operating_limit: float, no_limits: bool, fault_500: float, fault_503: float,
                     fault_slow: float, slow_seconds: float, fault_drop: float, seed: int | None) -> None:
    """Run a local Bitrix24 portal (incoming webhook REST API) for the sandbox and tests.

    Answers the crm.company/contact/requisite/... methods crm-etl uses, `batch`, the request-rate
    and operating-time limits and the portal's error shapes. Admin API under /_sandbox/
    (health, stats, config, faults). Stops on Ctrl-C or SIGTERM.
    """
    from etl.sandbox.bitrix24 import start_bitrix24

    try:
        faults = FaultSpec(error_500=fault_500, error_503=fault_503, slow=fault_slow, slow_seconds=slow_seconds,
                           drop=fault_drop, seed=seed)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--fault-*") from e
    if code is not None and (not code or "/" in code):
        raise click.BadParameter("must be non-empty and contain no '/'", param_hint="--code")
    try:
        server = start_bitrix24(db, host=host, port=port, rate=rate, burst=burst, operating_limit=operating_limit,
                                faults=faults, user_id=user_id, code=code, limits=not no_limits)
    except OSError as e:
        error = click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}; choose another --port")
        error.exit_code = 2
        raise error from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        limits = "off" if no_limits else f"burst {burst}, {rate:g} req/s, operating {operating_limit:g} s per 10 min"
        click.echo(f"Bitrix24 emulator listening on {server.url}")
        # The sandbox's own webhook: printed because a client needs it to call the emulator.
        click.echo(f"  CRM_ETL_BITRIX24_WEBHOOK={server.webhook_url}")
        click.echo(f"  data: {server.db_path}{' (temporary, removed at exit)' if db is None else ''}")
        click.echo(f"  limits: {limits}")
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        click.echo("Bitrix24 emulator stopped.")
