"""`crm-etl`: the command line. Each command lives in etl/commands/ (or its own package) and is
only wired here, so commands stay small and independent.

Exit codes (all commands):
  0  success
  1  the job ran but something needs attention (invalid INNs, rejects, failed records)
  2  bad usage or configuration (the message names the option or key to fix)
  3  a dependency was unreachable or refused us (CRM, EGRUL, database, broker) — rerun later
  4  another run holds the lock (delta), nothing was done
"""
from __future__ import annotations

import click

from etl import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="crm-etl")
def main() -> None:
    """Consolidate the shops' B2B customers (companies, contacts) into one Bitrix24 CRM.

    Extract from the shops (MySQL replica, SAP JSON exports, Kafka), clean and validate
    (INN offline, then EGRUL), deduplicate, and load through the Bitrix24 REST API.
    Settings: --config FILE or CRM_ETL_CONFIG; secrets and endpoints from CRM_ETL_* variables.
    """


def _register() -> None:
    from etl.commands.check_inn import check_inn_command

    main.add_command(check_inn_command)
    for module, attr in (
        ("etl.commands.full", "full_command"),
        ("etl.commands.delta", "delta_command"),
        ("etl.commands.consume", "consume_command"),
        ("etl.commands.inspect", "report_command"),
        ("etl.commands.inspect", "rejects_command"),
        ("etl.commands.inspect", "status_command"),
        ("etl.commands.emulate", "emulate"),
        ("etl.commands.generate", "generate_command"),
        ("etl.commands.demo", "demo_command"),
    ):
        try:
            mod = __import__(module, fromlist=[attr])
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue  # a command whose module is not written yet
        main.add_command(getattr(mod, attr))


_register()
