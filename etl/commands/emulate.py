"""`crm-etl emulate bitrix24|egrul`: the sandbox services, in the foreground."""
from __future__ import annotations

import click

from etl.sandbox.bitrix24.cli import bitrix24_command
from etl.sandbox.egrul_cli import egrul_command


@click.group("emulate")
def emulate() -> None:
    """Run a local service that speaks the real protocol (for the sandbox and tests)."""


emulate.add_command(bitrix24_command)
emulate.add_command(egrul_command)
