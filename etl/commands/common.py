"""Options and error handling shared by the commands."""
from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from etl.config import ConfigError, Settings, load_settings
from etl.log import setup_logging
from etl.secrets import scrub

log = logging.getLogger("crm-etl")


def config_options(f: Callable | None = None, *, log_level: str = "INFO") -> Callable:
    """--config and --log-level (commands run by cron default to WARNING: one summary line)."""
    if f is None:
        return lambda g: config_options(g, log_level=log_level)
    f = click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="CRM_ETL_CONFIG",
                     help="TOML settings file (default: $CRM_ETL_CONFIG; CRM_ETL_* variables override it).")(f)
    f = click.option("--log-level", default=log_level, show_default=True,
                     type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
                     help="How much to log (to stderr).")(f)
    return f


def settings_from(config_path: str | None, log_level: str = "INFO") -> Settings:
    setup_logging(log_level)
    return load_settings(config_path)


def fail(code: int, message: str) -> None:
    click.echo(f"crm-etl: {scrub(message)}", err=True)
    raise SystemExit(code)


def handle_errors(f: Callable) -> Callable:
    """Map known failures to the documented exit codes with a one-line message (no traceback)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from etl.job import EXIT_CONFIG, EXIT_UNAVAILABLE
        from etl.state.base import StateError
        from extractors.errors import SourceError
        from loaders.bitrix24.errors import PortalRefused, PortalUnavailable
        from validators.egrul.provider import ProviderRefused

        try:
            return f(*args, **kwargs)
        except ConfigError as e:
            fail(EXIT_CONFIG, f"configuration: {e}")
        except (PortalRefused, PortalUnavailable, ProviderRefused, SourceError, StateError) as e:
            fail(EXIT_UNAVAILABLE, f"{type(e).__name__}: {e}")

    return wrapper


def echo_err(text: str) -> None:
    click.echo(scrub(text), err=True)


def is_tty() -> bool:
    return sys.stderr.isatty()
