"""`crm-etl full SHOP`: a full load of one shop."""
from __future__ import annotations

import sys

import click

from etl.commands.common import config_options, echo_err, handle_errors, settings_from


@click.command("full")
@click.argument("shop")
@click.option("--file", "files", multiple=True, type=click.Path(dir_okay=False),
              help="Export file(s) for a file-based shop (shop-b: the SAP JSON export). Repeatable.")
@click.option("--since", help="Shop A: load companies changed since this date (default: 1 January of "
                              "the previous year).")
@click.option("--dry-run", is_flag=True, help="Extract, validate and match, but write nothing to the CRM.")
@click.option("--limit", type=click.IntRange(min=1), help="Stop after N source records (trial runs).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
@config_options
@handle_errors
def full_command(shop: str, files: tuple[str, ...], since: str | None, dry_run: bool, limit: int | None,
                 progress: bool | None, config_path: str | None, log_level: str) -> None:
    """Load every customer of SHOP into Bitrix24 (shop-a from MySQL, shop-b from --file).

    Checks INNs offline, then in EGRUL; merges duplicates within the run, across shops and with
    what the CRM already holds; writes in full `batch` calls within the portal's limits. Safe to
    rerun at any time: a rerun after a crash finishes the job and creates nothing twice.

    Exit status: 0 done; 1 done, but some records failed to write or the source was damaged
    (see `crm-etl report`); 2 configuration; 3 CRM, EGRUL or database unreachable or refusing.

    \b
    Examples:
      crm-etl full shop-a --since 2025-01-01
      crm-etl full shop-b --file export_2025.json --file export_2026.json
    """
    from etl.job import EXIT_ATTENTION, EXIT_OK, EXIT_UNAVAILABLE, run_load
    from etl.report import render_text
    from etl.state import open_state

    settings = settings_from(config_path, log_level)
    result = run_load(settings, shop, mode="full", files=list(files), since=since, dry_run=dry_run,
                      limit=limit, argv=" ".join(sys.argv), progress=progress)
    with open_state(settings.state) as state:
        run = state.get_run(result.run_id)
    click.echo(render_text(run))
    if result.fatal is not None:
        echo_err(f"crm-etl: run {result.run_id} stopped: {result.error}")
        raise SystemExit(EXIT_UNAVAILABLE)
    if result.status != "ok" or any(k.endswith(":crm_error") for k in result.counts):
        if result.error:
            echo_err(f"crm-etl: {result.error}")
        raise SystemExit(EXIT_ATTENTION)
    raise SystemExit(EXIT_OK)
