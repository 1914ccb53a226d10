"""`crm-etl demo`: the whole job on the sandbox, compared with the ground truth."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from etl.commands.common import echo_err, handle_errors


@click.command("demo")
@click.option("--dir", "workdir", default="sandbox-data", show_default=True, type=click.Path(file_okay=False),
              help="Where the generated data, the emulators' databases and the state store go (recreated).")
@click.option("--scale", default=0.003, show_default=True, type=click.FloatRange(min=0.0001, max=1.0),
              help="Size of the generated data as a share of the reference case (1.0 = ~850 000 records).")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the data generator.")
@click.option("--rate", default=2.0, show_default=True, type=float, help="Sandbox portal: requests per second.")
@click.option("--burst", default=50, show_default=True, type=int, help="Sandbox portal: leaky-bucket size.")
@click.option("--egrul-latency", default=0.4, show_default=True, type=float,
              help="Sandbox EGRUL: seconds per lookup (0.4 s is what the reference case measured).")
@click.option("--webhook-code", envvar="CRM_ETL_SANDBOX_WEBHOOK_CODE",
              help="Webhook code of the sandbox portal (default: random; $CRM_ETL_SANDBOX_WEBHOOK_CODE).")
@click.option("--egrul-token", envvar="CRM_ETL_SANDBOX_EGRUL_TOKEN",
              help="API key the sandbox EGRUL accepts and the loads use (default: random; "
                   "$CRM_ETL_SANDBOX_EGRUL_TOKEN).")
@click.option("--keep-running", is_flag=True, help="Keep both emulators up afterwards (Ctrl-C to stop).")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: only on a terminal).")
@handle_errors
def demo_command(workdir: str, scale: float, seed: int, rate: float, burst: int, egrul_latency: float,
                 webhook_code: str | None, egrul_token: str | None, keep_running: bool,
                 progress: bool | None) -> None:
    """Generate data for both shops, start the local Bitrix24 and EGRUL, load both shops in full,
    and compare the CRM and the rejects with the generator's ground truth.

    Exit status 0 when the CRM holds exactly the expected companies and contacts and every
    rejected record has its expected reason; 1 otherwise.
    """
    from etl.config import load_settings
    from etl.job import run_load
    from etl.log import setup_logging
    from etl.report import render_text
    from etl.sandbox.bitrix24 import start_bitrix24
    from etl.sandbox.egrul import start_egrul
    from etl.sandbox.generator import generate
    from etl.sandbox.seed import apply_seed
    from etl.sandbox.truth import compare_crm_with_truth, compare_rejects
    from etl.state import open_state

    setup_logging("WARNING")
    if webhook_code is not None and (not webhook_code or "/" in webhook_code):
        raise click.BadParameter("must be non-empty and contain no '/'", param_hint="--webhook-code")
    out = Path(workdir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    click.echo(f"1/5 generating sandbox data in {out}/ (seed {seed}, scale {scale})")
    manifest = generate(out, seed=seed, scale=scale)
    click.echo("    " + manifest.summary())

    bitrix = start_bitrix24(db=out / "bitrix24.sqlite", rate=rate, burst=burst, code=webhook_code or None)
    egrul = start_egrul(out / "egrul_registry.jsonl", latency=egrul_latency,
                        tokens=[egrul_token] if egrul_token else None)
    try:
        click.echo(f"2/5 sandbox Bitrix24 at {bitrix.url} ({rate:g} req/s, burst {burst}); "
                   f"EGRUL at {egrul.url} ({egrul_latency:g} s per lookup)")
        seeded = apply_seed(bitrix.webhook_url, out / "crm_seed.json", rate=rate, burst=burst)
        click.echo(f"    the CRM already holds {seeded['companies']} companies and {seeded['contacts']} contacts")
        settings = load_settings(None, env={
            "CRM_ETL_BITRIX24_WEBHOOK": bitrix.webhook_url,
            "CRM_ETL_EGRUL_URL": egrul.base_url,
            "CRM_ETL_EGRUL_TOKEN": egrul.token,
            "CRM_ETL_SHOP_A_DSN": f"sqlite:///{(out / 'shop_a.sqlite').resolve()}",
            "CRM_ETL_STATE": str(out / "state.sqlite"),
        })
        settings = _with_portal_limits(settings, rate, burst)
        exports = sorted(str(p) for p in (out / "shop_b").glob("export_*.json"))
        results = []
        for step, shop, kwargs in ((3, "shop-a", {"since": manifest.since}), (4, "shop-b", {"files": exports})):
            click.echo(f"{step}/5 full load of {shop}")
            result = run_load(settings, shop, mode="full", argv=f"crm-etl demo ({shop})", progress=progress, **kwargs)
            results.append(result)
            with open_state(settings.state) as state:
                click.echo(_indent(render_text(state.get_run(result.run_id))))
        click.echo("5/5 comparing the CRM and the rejects with the ground truth")
        crm = compare_crm_with_truth(bitrix.webhook_url, out / "truth", rate=rate, burst=burst)
        with open_state(settings.state) as state:
            rej = compare_rejects(((r.source, r.kind, r.source_id, r.reason) for r in state.iter_rejects()),
                                  out / "truth")
        click.echo(_indent(crm.summary()))
        click.echo(_indent(rej.summary()))
        ok = crm.ok and rej.ok and all(r.status == "ok" for r in results)
        click.echo(("demo OK: the CRM matches the ground truth" if ok else "demo FAILED: see the differences above")
                   + f"; inspect with: crm-etl report / rejects / status (CRM_ETL_STATE={out / 'state.sqlite'})")
        if keep_running:
            click.echo(f"emulators still running; webhook: {bitrix.webhook_url}  (Ctrl-C to stop)")
            try:
                bitrix.thread.join()
            except KeyboardInterrupt:
                pass
    finally:
        bitrix.stop()
        egrul.stop()
    if not ok:
        echo_err("crm-etl demo: the result differs from the ground truth")
        sys.exit(1)


def _with_portal_limits(settings, rate: float, burst: int):
    from dataclasses import replace

    return replace(settings, bitrix24=replace(settings.bitrix24, rate=rate, burst=burst))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
