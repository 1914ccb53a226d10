"""`crm-etl emulate bitrix24|egrul`: the sandbox services, in the foreground."""
from __future__ import annotations

import importlib

import click

_COMMANDS = {
    "bitrix24": ("etl.sandbox.bitrix24.cli", "bitrix24_command"),
    "egrul": ("etl.sandbox.egrul_cli", "egrul_command"),
}


class _LazyGroup(click.Group):
    """Imports a service only when it is asked for (keeps `crm-etl --help` fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS:
            return None
        module, attr = _COMMANDS[name]
        return getattr(importlib.import_module(module), attr)


@click.group("emulate", cls=_LazyGroup)
def emulate() -> None:
    """Run a local service that speaks the real protocol (for the sandbox and tests)."""
