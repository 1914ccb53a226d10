"""Assembling a run from settings: state store, CRM client, registry provider, gate, loader, source.

Commands (`full`, `delta`, `consume`, `demo`) call `run_load`; each part is built from the
settings here, so the commands stay thin and every part stays replaceable in tests.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from etl.config import ConfigError, Settings, ShopSettings
from etl.pipeline import Pipeline, RunResult
from etl.producer import relay
from etl.secrets import scrub
from etl.state import open_state
from etl.state.base import StateStore
from extractors.errors import SourceUnavailable
from loaders.bitrix24.client import Bitrix24Client
from loaders.crm_loader import CrmLoader
from transformers.base import load_transformer
from transformers.cleaning import names_conflict, normalize_name
from validators.egrul.breaker import OutageBreaker
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
    max_updated_at: datetime | None = None   # SQL sources: the newest change at the start (next watermark)


def sql_records(shop: ShopSettings, queries_attr: str, params: dict[str, Any]) -> SourceSpec:
    """The shop's queries (declared in its transformer module) streamed from its database, and the
    newest `updated_at` at the start of the run (`SQL_WATERMARK`): where the next delta starts."""
    from extractors.sql import open_sql_source

    module = importlib.import_module(shop.transformer)
    queries = getattr(module, queries_attr, None)
    if not queries:
        raise ConfigError(f"[shops.{shop.name}] extractor = {shop.extractor!r} needs {queries_attr} "
                          f"in {shop.transformer}")
    source = open_sql_source(shop.dsn)
    newest: datetime | None = None
    for _table, sql in getattr(module, "SQL_WATERMARK", ()):
        for row in source.iter_rows(sql):
            ts = row.get("updated_at")
            if isinstance(ts, datetime) and (newest is None or ts > newest):
                newest = ts

    def rows() -> Iterator[dict]:
        for table, sql in queries:
            yield from source.iter_rows(sql, params, table=table)

    return SourceSpec(rows(), None, "rec", source, max_updated_at=newest)


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
    egrul = settings.egrul
    return OutageBreaker(DadataProvider.from_settings(egrul, max_retries=egrul.retries, backoff=egrul.backoff))


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
                                          # the file is read in the extraction process: relay the
                                          # byte count back to the bar in this one
                                          progress=relay(lambda done, total: bar_holder and
                                                         bar_holder[0].bytes(done, total)))
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
                if isinstance(result.source_error, SourceUnavailable):
                    result.fatal = result.source_error  # the database is gone, not damaged: exit 3
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
            elif isinstance(v, dict):  # retries by cause
                counts.update({f"http_{k}_{cause}": n for cause, n in v.items()})
        counts["egrul_not_asked_down"] = provider.not_asked
        counts["seconds"] = round(time.monotonic() - t0, 3)
        egrul_trouble = gate.refused or provider.outage   # records are parked: rerun later (exit 3)
        if egrul_trouble is not None and result.status == "ok" and result.fatal is None:
            what = "refused" if gate.refused is not None else "unavailable"
            result.status, result.fatal = "failed", egrul_trouble
            result.error = scrub(f"EGRUL {what}: {egrul_trouble}; {counts.get('pending_company', 0)} companies "
                                 f"and {counts.get('pending_contact', 0)} contacts parked as pending, "
                                 "loaded by the next run")
        if mode == "full" and result.status == "ok" and not dry_run and limit is None \
                and source is not None and source.max_updated_at is not None:
            write_watermark(state, shop_name, source.max_updated_at)  # where the next delta starts
        state.finish_run(run_id, result.status, {**dict(counts), "error": result.error})
        return result


# --- delta from the replica (cron) ---------------------------------------------------------------

WATERMARK = "{shop}:delta"
DELTA_OVERLAP_S = 2.0      # re-read rows this close to the watermark (same second, late commits)
LOCK_STALE_S = 3600.0      # a lock whose holder stopped heartbeating this long ago is taken over


@dataclass
class LockHeld(Exception):
    holder: str
    host: str
    pid: int
    since: datetime

    def __str__(self) -> str:
        return (f"another run holds the lock: {self.holder} (pid {self.pid} on {self.host}, "
                f"since {self.since:%Y-%m-%d %H:%M:%S} UTC); nothing was done")


def read_watermark(state: StateStore, shop: str) -> tuple[datetime, int] | None:
    raw = state.get_watermark(WATERMARK.format(shop=shop))
    if not raw:
        return None
    data = json.loads(raw)
    return datetime.fromisoformat(data["ts"]), int(data.get("id", 0))


def write_watermark(state: StateStore, shop: str, ts: datetime) -> None:
    state.set_watermark(WATERMARK.format(shop=shop), json.dumps({"ts": ts.isoformat(sep=" "), "id": 0}))


@contextmanager
def run_lock(state: StateStore, name: str) -> Iterator[None]:
    """Hold the named lock for the whole run, heartbeating; refuse (LockHeld) if it is taken."""
    host, pid = socket.gethostname(), os.getpid()
    holder = f"{host}:{pid}:{uuid.uuid4().hex[:8]}"
    held = state.acquire_lock(name, holder, pid, host, LOCK_STALE_S)
    if held is not None:
        raise LockHeld(held.holder, held.host, held.pid, held.acquired_at)
    done = threading.Event()

    def beat() -> None:
        while not done.wait(60):
            try:
                state.heartbeat_lock(name, holder)
            except Exception:  # noqa: BLE001 - a missed heartbeat only makes the lock look older
                log.warning("could not refresh the lock heartbeat", exc_info=True)

    t = threading.Thread(target=beat, name="lock-heartbeat", daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        state.release_lock(name, holder)


def run_delta(settings: Settings, shop_name: str, *, argv: str = "") -> RunResult:
    """Rows changed since the watermark (with an overlap), loaded like a full load; the watermark
    moves to the newest row seen only after the run succeeded. Refuses to overlap another delta."""
    shop = settings.shop(shop_name)
    if shop.extractor not in ("mysql", "sqlite", "sql"):
        raise ConfigError(f"[shops.{shop_name}] extractor = {shop.extractor!r}: `delta` reads an SQL replica; "
                          f"file/Kafka shops use `full --file` or `consume`")
    with open_state(settings.state) as state, run_lock(state, f"delta:{shop_name}"):
        mark = read_watermark(state, shop_name)
        if mark is None:
            start = parse_since(None, shop)
            log.warning("%s: no watermark yet (no full load recorded): reading changes since %s", shop_name,
                        start.date())
        else:
            start = mark[0] - timedelta(seconds=DELTA_OVERLAP_S)
        source = sql_records(shop, "SQL_DELTA", {"ts": start, "id": 0})
        result = run_load(settings, shop_name, mode="delta", source=source, argv=argv, progress=False,
                          state=state)
        if result.status == "ok" and result.fatal is None and source.max_updated_at is not None:
            write_watermark(state, shop_name, source.max_updated_at)
        return result


# --- the Kafka consumer (supervisord) ---------------------------------------------------------------

def run_consume(settings: Settings, shop_name: str, opts, *, argv: str = "") -> tuple[RunResult, Counter]:
    """Consume the shop's change topic until stopped; every batch goes through the pipeline."""
    from etl.consumer import ChangeConsumer, Transient
    from etl.state.base import StateError
    from loaders.bitrix24.errors import OutcomeUnknown, PortalUnavailable
    from validators.egrul.provider import ProviderRefused

    shop = settings.shop(shop_name)
    transformer = load_transformer(shop)
    if not callable(getattr(transformer, "transform_event", None)):
        raise ConfigError(f"[shops.{shop_name}] transformer {shop.transformer} has no transform_event(event): "
                          f"it cannot read a change stream")
    with ExitStack() as stack:
        state = stack.enter_context(open_state(settings.state))
        client = build_client(settings)
        stack.callback(client.close)
        provider = build_provider(settings)
        stack.callback(provider.close)
        run_id = state.start_run("consume", shop_name, scrub(argv))
        counts: Counter = Counter()
        result = RunResult(run_id, counts)
        gate = EgrulGate(provider, state, cache_days=settings.egrul.cache_days,
                         concurrency=settings.egrul.concurrency)
        stack.callback(gate.close)
        loader = CrmLoader(client, state, run_id, counts=counts, senders=settings.bitrix24.concurrency,
                           normalize=normalize_name, conflict=names_conflict)
        stack.callback(loader.close)
        prepared = []

        def pipeline() -> Pipeline:
            if not prepared:
                loader.prepare(expected_companies=None)
                prepared.append(True)
            # a fresh pipeline per batch: its per-run memory (company outcomes) must not grow forever
            return Pipeline(source=shop_name, state=state, gate=gate, loader=loader, run_id=run_id,
                            counts=counts, normalize=normalize_name, conflict=names_conflict)

        def guarded(work):
            gate.forget_failures()  # each batch asks again: what failed earlier may have recovered
            try:
                work()
            except (PortalUnavailable, OutcomeUnknown, StateError, OSError) as e:
                raise Transient(f"{type(e).__name__}: {e}") from e
            if gate.refused is not None:
                # the registry refuses us (quota, key): what was looked up is parked, nothing is
                # lost; wait before the next batch rather than parking the whole stream
                err, gate.refused = gate.refused, None
                raise Transient(f"EGRUL refused: {err}")

        def process_batch(items: list) -> Counter:
            guarded(lambda: pipeline().process(items))
            return Counter()

        def retry_pending() -> None:
            """Records parked earlier (EGRUL was down, company pending) get another go."""
            again = pipeline()
            items = list(again.pending_items())
            if items:
                guarded(lambda: again.process(items))

        with graceful_stop() as stop:
            consumer = ChangeConsumer(opts, source=shop_name, transformer=transformer,
                                      process_batch=process_batch, retry_pending=retry_pending, stop=stop)
            try:
                msg_counts = consumer.run()
            except ProviderRefused as e:
                result.status, result.error, result.fatal = "failed", scrub(str(e)), e
                msg_counts = consumer.counts
            except Exception as e:  # noqa: BLE001 - recorded, then the CLI maps it to an exit code
                result.status, result.error, result.fatal = "failed", scrub(f"{type(e).__name__}: {e}"), e
                msg_counts = consumer.counts
            if stop.is_set() and result.status == "ok":
                result.status = "stopped"
        counts.update({f"kafka_{k}": v for k, v in msg_counts.items()})
        counts.update({f"egrul_{k}": v for k, v in gate.stats.items()})
        state.finish_run(run_id, result.status, {**dict(counts), "error": result.error})
        return result, counts
