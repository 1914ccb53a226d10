"""Assembling a run from settings: state store, CRM client, registry provider, gate, loader, source.

Commands (`full`, `delta`, `consume`, `demo`) call `run_load`; each part is built from the
settings here, so the commands stay thin and every part stays replaceable in tests.
"""
from __future__ import annotations

import importlib
import itertools
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from etl.config import ConfigError, Settings, ShopSettings
from etl.pipeline import Pipeline, RunResult
from etl.secrets import scrub
from etl.state import open_state
from etl.state.base import StateStore
from loaders.bitrix24.client import Bitrix24Client
from loaders.crm_loader import CrmLoader
from transformers.base import load_transformer
from transformers.cleaning import names_conflict, normalize_name
from validators.egrul.dadata import DadataProvider
from validators.gate import EgrulGate

log = logging.getLogger(__name__)

# exit codes (documented in etl/cli.py and README)
EXIT_OK, EXIT_ATTENTION, EXIT_CONFIG, EXIT_UNAVAILABLE, EXIT_LOCKED = 0, 1, 2, 3, 4


def default_since(today: date | None = None) -> date:
    """Start of the previous year: the shops load their "current and previous years"."""
    today = today or date.today()
    return date(today.year - 1, 1, 1)


def parse_since(value: str | None, shop: ShopSettings) -> datetime:
    text = value or shop.since
    if not text:
        d = default_since()
        return datetime(d.year, d.month, d.day)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since {text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS") from None


@dataclass
class SourceSpec:
    """Where a run's raw records come from."""

    records: Iterable[Any]
    total: int | None = None        # bytes (files) or rows, if known, for the progress bar
    unit: str = "rec"
    closer: Any = None


def sql_records(shop: ShopSettings, queries_attr: str, params: dict[str, Any]) -> SourceSpec:
    from extractors.sql import open_sql_source

    module = importlib.import_module(shop.transformer)
    queries = getattr(module, queries_attr, None)
    if not queries:
        raise ConfigError(f"[shops.{shop.name}] extractor = {shop.extractor!r} needs {queries_attr} "
                          f"in {shop.transformer}")
    source = open_sql_source(shop.dsn)

    def rows() -> Iterator[dict]:
        for table, sql in queries:
            yield from source.iter_rows(sql, params, table=table)

    return SourceSpec(rows(), None, "rec", source)


def json_records(shop: ShopSettings, files: list[str], progress=None) -> SourceSpec:
    from extractors.jsonfile import JsonFileSource

    if not files:
        raise ConfigError(f"{shop.name}: give the export file(s) with --file PATH (repeatable)")
    for f in files:
        if not os.path.isfile(f):
            raise ConfigError(f"--file {f}: no such file")
    src = JsonFileSource(files, item_path=shop.item_path, progress=progress)
    return SourceSpec(src.records(), src.total_bytes, "B")


class Progress:
    """A progress bar with rate and ETA on a TTY; one log line every 10 s otherwise."""

    def __init__(self, total: int | None, unit: str, desc: str, enabled: bool | None = None) -> None:
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.total, self.unit, self.desc = total, unit, desc
        self.done = 0
        self.records = 0
        self._last = time.monotonic()
        self._t0 = self._last
        self._bar = None
        if self.tty:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=unit, unit_scale=unit == "B", desc=desc, dynamic_ncols=True,
                             smoothing=0.1)

    def bytes(self, done: int, total: int | None = None) -> None:
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
        self.done = done

    def records_done(self, n: int) -> None:
        self.records += n
        if self._bar is not None and self.unit != "B":
            self._bar.update(n)
        now = time.monotonic()
        if not self.tty and now - self._last >= 10:
            self._last = now
            rate = self.records / max(now - self._t0, 1e-9)
            pct = f" ({100 * self.done / self.total:.0f}% of input)" if self.total and self.unit == "B" else ""
            log.info("%s: %d records, %.0f rec/s%s", self.desc, self.records, rate, pct)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextmanager
def graceful_stop() -> Iterator[threading.Event]:
    """First SIGTERM/SIGINT: finish the current chunk and stop. Second: exit at once."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {}

    def handler(signum, frame):  # noqa: ANN001
        if stop.is_set():
            log.warning("second signal: exiting now")
            os._exit(130)
        log.warning("signal %d: finishing the current batch, then stopping (again to exit at once)", signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


def build_provider(settings: Settings):
    if not settings.egrul.token:
        raise ConfigError("no EGRUL/DaData token: set CRM_ETL_EGRUL_TOKEN")
    return DadataProvider.from_settings(settings.egrul)


def build_client(settings: Settings) -> Bitrix24Client:
    if not settings.bitrix24.webhook:
        raise ConfigError("no Bitrix24 webhook: set CRM_ETL_BITRIX24_WEBHOOK (https://portal/rest/1/CODE/)")
    return Bitrix24Client.from_settings(settings.bitrix24)


def run_load(settings: Settings, shop_name: str, *, mode: str, source: SourceSpec | None = None,
             files: list[str] | None = None, since: str | None = None, dry_run: bool = False,
             limit: int | None = None, argv: str = "", progress: bool | None = None,
             state: StateStore | None = None) -> RunResult:
    """Run one load of one shop and record it in the state store. Returns the run's result."""
    shop = settings.shop(shop_name)
    transformer = load_transformer(shop)
    with ExitStack() as stack:
        if state is None:
            state = open_state(settings.state)
            stack.callback(state.close)
        client = build_client(settings)
        stack.callback(client.close)
        provider = build_provider(settings)
        stack.callback(provider.close)
        run_id = state.start_run(mode, shop_name, scrub(argv))
        counts: Counter = Counter()
        bar: Progress | None = None
        result = RunResult(run_id, counts)
        t0 = time.monotonic()
        gate = EgrulGate(provider, state, cache_days=settings.egrul.cache_days,
                         concurrency=settings.egrul.concurrency)
        stack.callback(gate.close)
        try:
            if source is None:
                if shop.extractor in ("mysql", "sqlite", "sql"):
                    source = sql_records(shop, "SQL_FULL", {"since": parse_since(since, shop)})
                elif shop.extractor == "jsonfile":
                    bar_holder: list[Progress] = []
                    source = json_records(shop, files or [],
                                          progress=lambda done, total: bar_holder and bar_holder[0].bytes(done, total))
                else:
                    raise ConfigError(f"[shops.{shop_name}] extractor = {shop.extractor!r}: full loads read "
                                      f"'mysql', 'sqlite' or 'jsonfile'")
            if source.closer is not None:
                stack.callback(source.closer.close)
            bar = Progress(source.total, source.unit, f"{mode} {shop_name}", progress)
            if shop.extractor == "jsonfile" and source.unit == "B":
                bar_holder.append(bar)  # type: ignore[possibly-undefined]
            loader = CrmLoader(client, state, run_id, counts=counts, dry_run=dry_run,
                               senders=settings.bitrix24.concurrency,
                               normalize=normalize_name, conflict=names_conflict)
            stack.callback(loader.close)
            loader.prepare(expected_companies=None if mode == "delta" else 10 ** 9)
            with graceful_stop() as stop:
                pipeline = Pipeline(source=shop_name, state=state, gate=gate, loader=loader, run_id=run_id,
                                    counts=counts, normalize=normalize_name, conflict=names_conflict,
                                    stop=stop, progress=bar.records_done)
                result = pipeline.run(transformer.transform(source.records), limit=limit)
            if result.source_error is not None:
                result.status, result.error = "failed", scrub(str(result.source_error))
        except ConfigError:
            state.finish_run(run_id, "failed", dict(counts))
            raise
        except Exception as e:  # noqa: BLE001 - recorded, then re-raised for the CLI to map to an exit code
            result.status, result.error, result.fatal = "failed", scrub(f"{type(e).__name__}: {e}"), e
        finally:
            if bar is not None:
                bar.close()
        counts.update({f"egrul_{k}": v for k, v in gate.stats.items()})
        for k, v in client.stats.as_dict().items():
            if isinstance(v, (int, float)):
                counts[f"http_{k}"] = v
        counts["seconds"] = round(time.monotonic() - t0, 3)
        if gate.refused is not None and result.status == "ok":
            result.status, result.error = "failed", scrub(f"EGRUL refused: {gate.refused}")
        state.finish_run(run_id, result.status, {**dict(counts), "error": result.error})
        return result
