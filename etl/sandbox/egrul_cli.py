"""`crm-etl emulate egrul`: the sandbox EGRUL service (DaData findById/party) in the foreground."""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from etl.sandbox.egrul import start_egrul
from etl.sandbox.faults import FaultSpec

DEFAULT_PORT = 8702


@click.command("egrul")
@click.option("--registry", required=True,
              type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
              help="JSON-lines registry file: one DaData `data` object per line.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--latency", default=0.4, show_default=True, type=click.FloatRange(min=0),
              help="Seconds each lookup takes (the reference case measured 0.4 s).")
@click.option("--rps", default=30.0, show_default=True, type=click.FloatRange(min=0),
              help="Requests per second before answering 429 (0: no limit).")
@click.option("--token", "tokens", multiple=True, envvar="CRM_ETL_EGRUL_TOKEN",
              help="Accepted API key (repeatable; default $CRM_ETL_EGRUL_TOKEN). "
                   "Without one, a random key is generated and printed once.")
@click.option("--daily-quota", type=click.IntRange(min=0), default=None,
              help="Requests per key per day before answering 403 (default: unlimited).")
@click.option("--fault-500", default=0.0, type=click.FloatRange(0, 1), help="Share of requests answered 500.")
@click.option("--fault-503", default=0.0, type=click.FloatRange(0, 1), help="Share of requests answered 503.")
@click.option("--fault-slow", default=0.0, type=click.FloatRange(0, 1),
              help="Share of requests delayed by --slow-seconds.")
@click.option("--slow-seconds", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="Delay of a slow request.")
@click.option("--fault-drop", default=0.0, type=click.FloatRange(0, 1),
              help="Share of connections closed without an answer.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible faults.")
def egrul_command(registry: Path, host: str, port: int, latency: float, rps: float,
                  tokens: tuple[str, ...], daily_quota: int | None, fault_500: float, fault_503: float,
                  fault_slow: float, slow_seconds: float, fault_drop: float, seed: int | None) -> None:
    """Serve a local EGRUL registry over DaData's findById/party protocol until SIGINT/SIGTERM.

    Point the pipeline at it with CRM_ETL_EGRUL_URL=<base URL> and CRM_ETL_EGRUL_TOKEN=<key>.
    """
    try:
        faults = FaultSpec(error_500=fault_500, error_503=fault_503, slow=fault_slow,
                           slow_seconds=slow_seconds, drop=fault_drop, seed=seed)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--fault-*") from None
    accepted = [t for t in tokens if t.strip()]
    # Signal handlers first: a SIGTERM right after the banner must still stop us cleanly.
    with stop_on_signals() as stop:
        _serve(stop, registry, host, port, latency, rps, accepted, daily_quota, faults)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM; the previous handlers come back afterwards."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(stop: threading.Event, registry: Path, host: str, port: int, latency: float, rps: float,
           accepted: list[str], daily_quota: int | None, faults: FaultSpec) -> None:
    try:
        server = start_egrul(registry, host=host, port=port, latency=latency, rps=rps or None,
                             tokens=accepted or None, daily_quota=daily_quota, faults=faults)
    except OSError as e:
        error = click.ClickException(f"cannot serve on {host}:{port} from {registry}: {e}")
        error.exit_code = 2
        raise error from None
    reg = server.registry
    for bad in reg.bad_lines[:20]:
        click.echo(f"registry {registry} line {bad.line}: {bad.reason}; skipped", err=True)
    if len(reg.bad_lines) > 20:
        click.echo(f"registry {registry}: {len(reg.bad_lines) - 20} more bad lines skipped", err=True)
    click.echo(f"EGRUL emulator (DaData findById/party) listening on {server.url}")
    click.echo(f"  registry: {reg.records} records, {reg.inns} INNs, {len(reg.bad_lines)} bad lines skipped")
    click.echo(f"  CRM_ETL_EGRUL_URL={server.base_url}")
    if not accepted:
        # The sandbox's own key, generated now: printed once so that a client can use it.
        click.echo(f"  CRM_ETL_EGRUL_TOKEN={server.token}")
    quota = "unlimited" if daily_quota is None else daily_quota
    click.echo(f"  latency {latency:g} s, rps {rps or 'unlimited'}, daily quota {quota}")

    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        click.echo("EGRUL emulator stopped")


if __name__ == "__main__":
    egrul_command()
