"""`crm-etl generate`: the sandbox data set (both shops, EGRUL registry, CRM seed, events, truth)."""
from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path

import click

from etl.sandbox.generator import GeneratorError, ScalePlan, generate
from etl.commands.common import fail
from etl.secrets import register


def _now(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2025-06-01") from None


@click.command("generate")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write the data set into (created; earlier output there is replaced).")
@click.option("--seed", default=1, show_default=True, type=int,
              help="Random seed: the same seed, scale and --now give identical files.")
@click.option("--scale", default=0.01, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="1.0 = the reference case (shop A ~53k companies/75k contacts, "
                   "shop B ~125k partners/600k contacts); 0.01 = about 8 000 records.")
@click.option("--now", "now", callback=_now, metavar="YYYY-MM-DD",
              help="The day the data is taken (scope and dates are relative to it)  [default: today]")
@click.option("--mysql-dsn", metavar="DSN", default=None,
              help="Also fill shop A's tables into this MySQL database, e.g. "
                   "mysql://root@127.0.0.1:3306/shop_a (never printed).")
@click.option("--replace", is_flag=True, help="Drop shop A's tables in --mysql-dsn if they exist.")
@click.option("--bom", is_flag=True, help="Start shop B's export files with a UTF-8 BOM.")
def generate_command(out: Path, seed: int, scale: float, now: date | None, mysql_dsn: str | None,
                     replace: bool, bom: bool) -> None:
    """Generate sandbox data with all the shops' mess, and the ground truth of a correct load.

    Writes shop_a.sqlite (and MySQL with --mysql-dsn), shop_b/export_YYYY.json,
    shop_b/events.jsonl, egrul_registry.jsonl, crm_seed.json, truth/, truth_after_events/ and
    manifest.json into --out. Memory stays flat at any --scale.

    \b
    Example:
      crm-etl generate --out sandbox/ --seed 7 --scale 0.05 --now 2025-06-01
    """
    register(mysql_dsn)
    bar = None
    progress = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=ScalePlan(scale).companies, unit="company", desc="generating", file=sys.stderr,
                   leave=False)

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)
    try:
        manifest = generate(out, seed=seed, scale=scale, now=now, mysql_dsn=mysql_dsn, bom=bom,
                            progress=progress, replace=replace)
    except GeneratorError as e:
        fail(e.exit_code, str(e))
    finally:
        if bar is not None:
            bar.close()
    click.echo(f"{manifest.summary()} -> {out}")
