"""Logging set-up: one line per event, secrets scrubbed, quiet unless asked."""
from __future__ import annotations

import logging
import sys
import threading
import traceback

from etl.secrets import ScrubFilter, scrub

_configured = False


def setup_logging(level: str = "INFO", stream=None) -> None:
    global _configured
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubFilter())
    if _configured:
        for h in list(root.handlers):
            if getattr(h, "_crm_etl", False):
                root.removeHandler(h)
    handler._crm_etl = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries that would print request URLs (and so webhook codes) at DEBUG stay at WARNING.
    for noisy in ("urllib3", "requests"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.excepthook = _print_scrubbed
    threading.excepthook = _print_scrubbed_thread
    _configured = True


def _print_scrubbed(exc_type, exc, tb) -> None:  # noqa: ANN001 - sys.excepthook's signature
    """An exception nobody handled (a bug) still prints its traceback, but never a secret it quotes."""
    sys.stderr.write(scrub("".join(traceback.format_exception(exc_type, exc, tb))))


def _print_scrubbed_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    sys.stderr.write(f"Exception in thread {name}:\n")
    _print_scrubbed(args.exc_type, args.exc_value, args.exc_traceback)
