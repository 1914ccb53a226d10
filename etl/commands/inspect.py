"""`crm-etl report`, `crm-etl rejects`, `crm-etl status`: what happened, what was refused, where things stand."""
from __future__ import annotations

import csv
import json
import sys

import click

from etl.commands.common import config_options, fail, handle_errors, settings_from


@click.command("report")
@click.option("--run", "run_id", type=int, help="Run id (default: the latest run).")
@click.option("--source", help="Latest run of this shop (with no --run).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@config_options
@handle_errors
def report_command(run_id: int | None, source: str | None, fmt: str, config_path: str | None, log_level: str) -> None:
    """Per-stage funnel of a run: extracted, rejected by reason, merged, EGRUL lookups (looked up /
    cached), created, enriched, unchanged, pending, CRM requests."""
    from etl.report import funnel, render_text  # noqa: F401
    from etl.state import open_state

    settings = settings_from(config_path, log_level)
    with open_state(settings.state) as state:
        run = state.get_run(run_id) if run_id else state.last_run(source=source)
    if run is None:
        fail(1, f"no run {run_id}" if run_id else "no runs recorded yet")
    click.echo(json.dumps(funnel(run), ensure_ascii=False, indent=2) if fmt == "json" else render_text(run))


@click.command("rejects")
@click.option("--reason", help="Only this reason code (e.g. inn_checksum, inactive:LIQUIDATED, crm_error).")
@click.option("--source", help="Only this shop (shop-a, shop-b, ...).")
@click.option("--kind", type=click.Choice(["company", "contact", "record"]), help="Only companies or contacts.")
@click.option("--run", "run_id", type=int, help="Only records rejected (last) by this run.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="csv for spreadsheets, json (one object per line) for tools.")
@click.option("--raw/--no-raw", default=True, show_default=True, help="Include the raw source record.")
@config_options
@handle_errors
def rejects_command(reason: str | None, source: str | None, kind: str | None, run_id: int | None, fmt: str,
                    raw: bool, config_path: str | None, log_level: str) -> None:
    """The records that were not loaded and why — for the people who fix the source data.

    One row per source record (its latest rejection); records that loaded later are not listed.
    """
    from etl.report import funnel, render_text  # noqa: F401
    from etl.state import open_state

    settings = settings_from(config_path, log_level)
    cols = ["source", "kind", "source_id", "reason", "detail", "run_id", "rejected_at"] + (["raw"] if raw else [])
    writer = csv.writer(sys.stdout) if fmt == "csv" else None
    if writer:
        writer.writerow(cols)
    with open_state(settings.state) as state:
        for r in state.iter_rejects(run_id=run_id, reason=reason, source=source, kind=kind):
            row = {"source": r.source, "kind": r.kind, "source_id": r.source_id, "reason": r.reason,
                   "detail": r.detail, "run_id": r.run_id, "rejected_at": r.rejected_at.isoformat()}
            if raw:
                row["raw"] = r.raw
            if writer:
                writer.writerow([json.dumps(row[c], ensure_ascii=False, default=str) if c == "raw" else row[c]
                                 for c in cols])
            else:
                click.echo(json.dumps(row, ensure_ascii=False, default=str))


@click.command("status")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@config_options
@handle_errors
def status_command(fmt: str, config_path: str | None, log_level: str) -> None:
    """Where things stand: recent runs, current rejects and pending records by reason."""
    from etl.report import funnel, render_text  # noqa: F401
    from etl.state import open_state
    from etl.state.base import shown_status

    settings = settings_from(config_path, log_level)
    with open_state(settings.state) as state:
        runs = state.list_runs(limit=10)
        data = {
            "state": state.location,
            "runs": [{"run": r.run_id, "mode": r.mode, "source": r.source, "status": shown_status(r),
                      "started_at": r.started_at.isoformat(),
                      "finished_at": r.finished_at.isoformat() if r.finished_at else None} for r in runs],
            "rejects": state.count_rejects(),
            "pending": state.count_pending(),
        }
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"state store: {data['state']}")
    click.echo("recent runs:" if runs else "no runs yet")
    for r in data["runs"]:
        click.echo(f"  {r['run']:>5} {r['mode']:<8} {r['source']:<8} {r['status']:<12} {r['started_at']}")
    click.echo(f"current rejects: {sum(data['rejects'].values())}")
    for reason, n in sorted(data["rejects"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {n:>8} {reason}")
    click.echo(f"pending: {sum(data['pending'].values())}")
    for reason, n in sorted(data["pending"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {n:>8} {reason}")
