"""`crm-etl delta SHOP`: changes since the last run, from the shop's replica (run by cron)."""
from __future__ import annotations

import sys

import click

from etl.commands.common import config_options, echo_err, handle_errors, settings_from


@click.command("delta")
@click.argument("shop")
@config_options(log_level="WARNING")
@handle_errors
def delta_command(shop: str, config_path: str | None, log_level: str) -> None:
    """Load the rows of SHOP changed since the stored watermark (cron: see config/crontab).

    Reads `(updated_at, id)` past the watermark with a 2-second overlap (rows written in the same
    second are not missed; re-reading is harmless). Parked records of earlier runs are retried
    first. The watermark moves only after the run succeeded. Prints one summary line.

    Exit status: 0 done; 1 done but some records failed or the run was interrupted; 2 configuration;
    3 CRM, EGRUL or database unreachable; 4 another delta of SHOP is still running (nothing done).
    """
    from etl.job import EXIT_ATTENTION, EXIT_LOCKED, EXIT_OK, EXIT_UNAVAILABLE, LockHeld, run_delta

    settings = settings_from(config_path, log_level)
    try:
        result = run_delta(settings, shop, argv=" ".join(sys.argv))
    except LockHeld as e:
        echo_err(f"crm-etl delta {shop}: {e}")
        raise SystemExit(EXIT_LOCKED) from None
    c = result.counts
    rejected = sum(v for k, v in c.items() if k.startswith("rejected_"))
    click.echo(f"delta {shop}: run {result.run_id} {result.status} in {c.get('seconds', 0):.1f} s: "
               f"{c.get('records', 0)} records, {c.get('companies_created', 0)} companies created, "
               f"{c.get('companies_enriched', 0) + c.get('companies_found', 0)} enriched, "
               f"{c.get('contacts_created', 0)} contacts created, "
               f"{c.get('contacts_enriched', 0) + c.get('contacts_found', 0)} enriched, {rejected} rejected, "
               f"{c.get('pending_company', 0) + c.get('pending_contact', 0)} pending, "
               f"{c.get('crm_write_requests', 0)} CRM write requests")
    if result.fatal is not None:
        echo_err(f"crm-etl delta {shop}: {result.error}")
        raise SystemExit(EXIT_UNAVAILABLE)
    if result.status != "ok" or any(k.endswith(":crm_error") for k in c):
        if result.error:
            echo_err(f"crm-etl delta {shop}: {result.error}")
        raise SystemExit(EXIT_ATTENTION)
    raise SystemExit(EXIT_OK)
