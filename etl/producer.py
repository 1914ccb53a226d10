"""Extraction and transformation in a process of their own, handing records on in chunks.

Parsing and transforming a record costs about as much CPU as validating, merging and loading it;
in one process both halves share one interpreter lock, so a second core sits idle. The
extraction process is forked from the pipeline's process at the start of a run: it inherits the
record iterator as it is (files not yet opened, a SQL cursor not yet run), iterates it, applies a
`prepare` function to each record (the offline checks) and sends chunks through a pipe. The
pipeline takes them in order, exactly as it took them from its extraction thread before.

- Memory stays flat: the pipe holds little, and the sender blocks while the pipeline is busy.
- A failure of the source (damaged file, lost database) arrives as the exception itself, after
  the records read before it.
- `stop()` asks the extraction to end at the next record; it then sends what it has and says
  done. SIGINT/SIGTERM delivered to the extraction process itself (a terminal's Ctrl-C reaches
  the whole process group) do the same, and `signalled` then tells the pipeline that the source
  was not read to its end because of a signal.
- If the pipeline's process dies, the extraction process's next send fails and it exits.
- Callbacks the source calls while it is read (a progress bar's byte count) run in the
  extraction process unless wrapped with `relay`: then they run in the pipeline's process.

Records cross the pipe pickled; a DTO is pickled as its field values and rebuilt by
`etl.dto.BUILD`, which sets its slots directly (the generic pickling of a frozen dataclass goes
through a Python-level `__setstate__`, and its `__init__` through `object.__setattr__` per field:
two to three times slower).
"""
from __future__ import annotations

import copyreg
import gc
import io
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from etl.dto import BUILD, VALUES, BankAccount, Company, Contact, Phone, Reject

log = logging.getLogger(__name__)

POLL_S = 0.2          # how often a waiting receiver looks at its stop condition
_ASKED, _SIGNALLED = 1, 2  # values of the shared stop flag
GRACE_S = 5.0         # how long `close` waits for the extraction process to end by itself
GC_YOUNGEST = 20_000  # allocations between collections of the youngest generation (default 700)


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


@contextmanager
def tuned_collector() -> Iterator[None]:
    """The cyclic garbage collector set for a long batch run, restored afterwards.

    A load allocates millions of small, short-lived, acyclic objects. With the default thresholds
    the collector runs thousands of times and, in its full passes, walks every object that lives
    for the whole run (settings, the EGRUL index, phonenumbers' metadata, the per-run maps): a
    quarter of a full load's CPU time. What exists before the run is frozen out of collection
    (`gc.freeze`, which also keeps a forked child from copying those pages) and the youngest
    generation is collected less often. Cycles are still collected, only later."""
    if not gc.isenabled():
        yield
        return
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(GC_YOUNGEST, thresholds[0]), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


# --- pickling DTOs ---------------------------------------------------------------------------

def _by_fields(cls: type) -> Callable[[Any], tuple]:
    build, values = BUILD[cls], VALUES[cls]
    return lambda obj: (build, values(obj))


_DISPATCH = copyreg.dispatch_table.copy()
for _cls in (Company, Contact, Reject, Phone, BankAccount):
    _DISPATCH[_cls] = _by_fields(_cls)


def dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(obj)
    return buf.getvalue()


def _portable(e: BaseException) -> tuple:
    """An exception as something the other process can rebuild, type and attributes included
    (a plain pickle fails for exceptions whose __init__ takes other arguments than their args)."""
    state = dict(getattr(e, "__dict__", {}))
    try:
        pickle.dumps((type(e), e.args, state))
    except Exception:  # noqa: BLE001 - attributes that do not pickle are left out
        state = {}
        try:
            pickle.dumps((type(e), e.args))
        except Exception:  # noqa: BLE001
            return (RuntimeError, (f"{type(e).__name__}: {e}",), {}, str(e))
    return (type(e), e.args, state, f"{type(e).__name__}: {e}")


def _rebuild(cls: type, args: tuple, state: dict, text: str) -> BaseException:
    try:
        e = cls.__new__(cls, *args)
        e.args = args
        e.__dict__.update(state)
        return e
    except Exception:  # noqa: BLE001 - a type that cannot be rebuilt still says what happened
        return RuntimeError(text)


class ExtractionDied(Exception):
    """The extraction process ended without saying done (killed, out of memory, crashed)."""


# --- callbacks run in the pipeline's process ------------------------------------------------

_relays: weakref.WeakValueDictionary[int, Relay] = weakref.WeakValueDictionary()
_relay_keys = itertools.count(1)
_to_pipeline: Callable[[tuple], None] | None = None   # set in the extraction process only


class Relay:
    """A callback that runs in the pipeline's process even when the extraction process calls it."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.key = next(_relay_keys)
        _relays[self.key] = self

    def __call__(self, *args: Any) -> Any:
        send = _to_pipeline
        if send is None:
            return self.fn(*args)
        send(("call", (self.key, args)))
        return None


def relay(fn: Callable[..., Any]) -> Relay:
    """Wrap a callback the source calls while it is read (e.g. a progress bar's byte count)."""
    return fn if isinstance(fn, Relay) else Relay(fn)


# --- the process -----------------------------------------------------------------------------

class _PipelineGone(Exception):
    pass


class ExtractionProcess:
    """Iterates `items` in a forked process; `chunks()` yields lists of `prepare(item)`."""

    def __init__(self, items: Iterable[Any], *, prepare: Callable[[Any], Any], chunk_size: int,
                 limit: int | None = None) -> None:
        self._items = items
        self._prepare = prepare
        self._chunk_size = chunk_size
        self._limit = limit
        ctx = multiprocessing.get_context("fork")
        self._reader, self._writer = ctx.Pipe(duplex=False)
        self._stop = ctx.RawValue("b", 0)   # shared memory: read between records at no cost
        self._proc = ctx.Process(target=self._main, name="crm-etl-extract", daemon=True)
        self._done = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def signalled(self) -> bool:
        """The extraction stopped early because it received SIGINT/SIGTERM itself."""
        return self._stop.value == _SIGNALLED

    # -- pipeline side --------------------------------------------------------------------------
    def start(self) -> None:
        self._proc.start()
        self._writer.close()  # ours: with it closed, a dead child reads as end of file

    def stop(self) -> None:
        """Ask the extraction to end at the next record (it then sends what it has and done)."""
        if not self._stop.value:
            self._stop.value = _ASKED

    def chunks(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[list[Any]]:
        """The prepared records in order, a chunk at a time; raises the extraction's exception
        after the chunks read before it. `should_stop` is asked while waiting."""
        while True:
            while not self._reader.poll(POLL_S):
                if should_stop():
                    self.stop()
            try:
                kind, payload = pickle.loads(self._reader.recv_bytes())
            except EOFError:
                self._proc.join(1)
                raise ExtractionDied(f"the extraction process ended without finishing (exit code "
                                     f"{self._proc.exitcode}); rerun the load") from None
            if kind == "chunk":
                yield payload
            elif kind == "call":
                key, args = payload
                target = _relays.get(key)
                if target is not None:
                    try:
                        target.fn(*args)
                    except Exception:  # noqa: BLE001 - a progress display must not stop the load
                        log.warning("callback from the extraction process failed", exc_info=True)
            elif kind == "done":
                self._done = True
                return
            else:  # "error"
                self._done = True
                raise _rebuild(*payload)

    def close(self) -> None:
        """Stop the extraction process and wait for it (killed if it does not end in time)."""
        self.stop()
        self._proc.join(GRACE_S if self._done else POLL_S)
        if self._proc.is_alive():
            self._proc.kill()   # blocked on a full pipe nobody reads any more
            self._proc.join(GRACE_S)
        self._reader.close()

    # -- extraction side ------------------------------------------------------------------------
    def _send(self, message: tuple) -> None:
        try:
            self._writer.send_bytes(dumps(message))
        except OSError as e:   # the pipeline's process is gone
            raise _PipelineGone() from e

    def _main(self) -> None:
        global _to_pipeline
        self._reader.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        gc.freeze()
        gc.set_threshold(max(GC_YOUNGEST, gc.get_threshold()[0]), *gc.get_threshold()[1:])
        _to_pipeline = self._send
        code = 0
        chunk: list[Any] = []
        try:
            try:
                n = 0
                for item in self._items:
                    if self._stop.value:
                        break
                    chunk.append(self._prepare(item))
                    n += 1
                    if len(chunk) >= self._chunk_size:
                        self._send(("chunk", chunk))
                        chunk = []
                    if self._limit and n >= self._limit:
                        break
            except _PipelineGone:
                raise
            except BaseException as e:  # noqa: BLE001 - the source's failure, reported by the pipeline
                log.debug("extraction failed", exc_info=True)
                if chunk:
                    self._send(("chunk", chunk))
                self._send(("error", _portable(e)))
            else:
                if chunk:
                    self._send(("chunk", chunk))
                self._send(("done", None))
        except _PipelineGone:
            code = 1
        finally:
            # nothing of the parent's (atexit handlers, open stores, buffered output) runs here
            os._exit(code)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self._stop.value:
            self._stop.value = _SIGNALLED
