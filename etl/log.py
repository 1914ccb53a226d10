"""Logging set-up: one line per event, secrets scrubbed, quiet unless asked."""
from __future__ import annotations

import logging
import sys

from etl.secrets import ScrubFilter

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
    _configured = True
