from __future__ import annotations

import click

from validators.inn import INN_REASONS, check_inn


@click.command("check-inn")
@click.argument("inns", nargs=-1, required=True)
def check_inn_command(inns: tuple[str, ...]) -> None:
    """Check INNs offline: length, digits and control digits (no network).

    Prints one line per INN: `valid` or the reject reason code and what it means.
    Exit status 0 only if every INN is valid, 1 otherwise.

    \b
    Example:
      crm-etl check-inn 7707083893 "7707 083 894" 123456789047
    """
    bad = 0
    for raw in inns:
        inn, reason = check_inn(raw)
        if reason is None:
            click.echo(f"{raw}\tvalid\t{inn}")
        else:
            bad += 1
            click.echo(f"{raw}\t{reason}\t{INN_REASONS.get(reason, '')}")
    raise SystemExit(1 if bad else 0)
