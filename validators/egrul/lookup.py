"""Many INN lookups at once, through any `RegistryProvider`, with flat memory.

`lookup_many` keeps at most `2 * concurrency` lookups queued or running, pulls INNs from the
iterable only as slots free up (so a generator of 100k+ INNs is never materialised), and yields
`(inn, result)` as each lookup completes (not in input order):

- `result` is a `LookupResult` (found or NOT_FOUND) or a `LookupFailed` (transient: park it).
  An unexpected exception inside a provider is logged and yielded as `LookupFailed` too, so no
  INN is ever dropped silently.
- `ProviderRefused` is fatal for the run: no new lookups start, queued ones are cancelled, the
  ones already running are drained and their results yielded, and then the first
  `ProviderRefused` is **raised**. INNs that got no yielded result were not (successfully)
  looked up: the caller parks them as pending.

It knows nothing about caching: the caller decides which INNs need asking.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from validators.egrul.provider import LookupFailed, LookupResult, ProviderRefused, RegistryProvider

log = logging.getLogger(__name__)
_END = object()


def lookup_many(inns: Iterable[str], provider: RegistryProvider, concurrency: int | None = None,
                ) -> Iterator[tuple[str, LookupResult | LookupFailed]]:
    """Look every INN up with `concurrency` threads (default: the provider's `concurrency`, else 8;
    DadataProvider sizes its connection pool for its own `concurrency`, so keep the two equal)."""
    workers = concurrency or getattr(provider, "concurrency", None) or 8
    if workers < 1:
        raise ValueError(f"concurrency must be >= 1, got {workers}")
    window = 2 * workers
    source = iter(inns)
    refused: ProviderRefused | None = None
    pending: dict[Future[LookupResult], str] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="egrul-lookup") as pool:
        try:
            exhausted = False
            while True:
                while not exhausted and refused is None and len(pending) < window:
                    inn = next(source, _END)
                    if inn is _END:
                        exhausted = True
                    else:
                        pending[pool.submit(provider.lookup, inn)] = inn
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    inn = pending.pop(future)
                    if future.cancelled():
                        continue
                    try:
                        result: LookupResult | LookupFailed = future.result()
                    except ProviderRefused as e:
                        if refused is None:
                            refused = e
                            for queued in pending:
                                queued.cancel()  # only those not yet running; the rest drain
                        continue
                    except LookupFailed as e:
                        result = e
                    except Exception as e:  # noqa: BLE001 - a provider bug must not lose the INN
                        log.exception("EGRUL lookup of INN %s raised unexpectedly", inn)
                        result = LookupFailed(inn, f"unexpected error {type(e).__name__}: {e}")
                    yield inn, result
        finally:
            for future in pending:
                future.cancel()
    if refused is not None:
        raise refused
