"""`crm-etl consume SHOP`: the Kafka change-stream consumer (run by supervisord)."""
from __future__ import annotations

import os
import sys

import click

from etl.commands.common import config_options, echo_err, handle_errors, settings_from


@click.command("consume")
@click.argument("shop")
@click.option("--topic", help="Change topic (default: the shop's `topic`, or CRM_ETL_SHOP_B_TOPIC).")
@click.option("--group", help="Consumer group (default: [kafka] group).")
@click.option("--instance-id", envvar="CRM_ETL_INSTANCE",
              help="Static group membership id (supervisord: %(process_num)s via CRM_ETL_INSTANCE): a restart "
                   "does not rebalance the group.")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100000),
              help="Messages loaded (and committed) together.")
@click.option("--linger", default=1.0, show_default=True, type=click.FloatRange(0),
              help="Seconds to wait for a batch to fill once its first message arrived.")
@click.option("--max-messages", type=click.IntRange(1), help="Stop after this many messages (one-off catch-ups, tests).")
@click.option("--stop-when-idle", type=click.FloatRange(0), help="Stop after this many seconds without a message.")
@click.option("--dlq-topic", help="Dead-letter topic for messages that cannot be parsed or mapped (default: TOPIC.dlq).")
@click.option("--session-timeout-ms", default=45000, show_default=True, type=click.IntRange(1000),
              help="Group session timeout: how long a silent member keeps its partitions (static membership "
                   "lets a supervisord restart within it resume without a rebalance).")
@config_options
@handle_errors
def consume_command(shop: str, topic: str | None, group: str | None, instance_id: str | None, batch_size: int,
                    linger: float, max_messages: int | None, stop_when_idle: float | None, dlq_topic: str | None,
                    session_timeout_ms: int, config_path: str | None, log_level: str) -> None:
    """Keep SHOP's CRM cards in sync with its Kafka change topic (at least once).

    Offsets are committed only after a batch is in the CRM; a message that cannot be parsed or
    mapped becomes a reject and goes to the dead-letter topic; CRM or EGRUL outages pause and
    retry without committing. SIGTERM finishes the current batch, commits and exits (0); a
    second signal exits at once.

    Exit status: 0 stopped cleanly; 2 configuration; 3 CRM/EGRUL refused us or the broker failed.
    """
    from etl.config import ConfigError
    from etl.consumer import ConsumerOptions
    from etl.job import EXIT_OK, EXIT_UNAVAILABLE, run_consume

    settings = settings_from(config_path, log_level)
    shop_settings = settings.shop(shop)
    bootstrap = settings.kafka.bootstrap
    topic = topic or shop_settings.topic
    if not bootstrap:
        raise ConfigError("no Kafka bootstrap servers: set CRM_ETL_KAFKA_BOOTSTRAP (host:port,...)")
    if not topic:
        raise ConfigError(f"no topic for {shop}: set topic in [shops.{shop}] or CRM_ETL_SHOP_B_TOPIC or --topic")
    opts = ConsumerOptions(topic=topic, bootstrap=bootstrap, group=group or settings.kafka.group,
                           dlq_topic=dlq_topic or "", batch_size=batch_size, linger=linger,
                           max_messages=max_messages, stop_when_idle=stop_when_idle, instance_id=instance_id or "",
                           session_timeout_ms=session_timeout_ms, extra=dict(settings.kafka.extra))
    result, counts = run_consume(settings, shop, opts, argv=" ".join(sys.argv))
    summary = (f"consume {shop}: run {result.run_id} {result.status}: {counts.get('kafka_messages', 0)} messages, "
               f"{counts.get('kafka_dead_lettered', 0)} dead-lettered, "
               f"{counts.get('companies_created', 0)} companies created, "
               f"{counts.get('companies_enriched', 0) + counts.get('companies_found', 0)} enriched, "
               f"{counts.get('contacts_created', 0)} contacts created, pid {os.getpid()}")
    click.echo(summary)
    if result.fatal is not None:
        echo_err(f"crm-etl: {result.error}")
        raise SystemExit(EXIT_UNAVAILABLE)
    raise SystemExit(EXIT_OK)
