"""The transformer interface (raw source records -> DTOs) and loading a shop's transformer by name.

A shop is one module (its config section names it: `transformer = "transformers.shop_a"`) with
`create(shop: ShopSettings) -> Transformer`, plus whatever its extraction needs declared as data
(shop A: `SQL_FULL`, `SQL_DELTA`). Adding a shop means writing one such module and one
`[shops.NAME]` section; nothing else knows shop formats.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from etl.config import ConfigError, ShopSettings
from etl.dto import Company, Contact, Reject

Output = Company | Contact | Reject


@runtime_checkable
class Transformer(Protocol):
    """Maps one shop's raw records to Company / Contact DTOs or Rejects.

    Contract: never raises on bad input (a record that cannot be mapped becomes a `bad_record`
    Reject naming the field); yields lazily (one raw record in memory at a time, plus whatever
    small per-run index the shop needs, e.g. company id -> INN).
    """

    source: str

    def transform(self, records: Iterable[Mapping[str, Any]]) -> Iterator[Output]: ...


def load_transformer(shop: ShopSettings) -> Transformer:
    """Import `shop.transformer` and return its `create(shop)`; a ConfigError says what is wrong."""
    where = f"[shops.{shop.name}] transformer = {shop.transformer!r}"
    try:
        module = importlib.import_module(shop.transformer)
    except ModuleNotFoundError as e:
        if e.name and shop.transformer.startswith(e.name):
            raise ConfigError(f"{where}: no module named {e.name!r}; give a module path on sys.path "
                              f"(e.g. \"transformers.shop_a\")") from None
        raise ConfigError(f"{where}: the module failed to import: {e}") from e
    except Exception as e:  # noqa: BLE001 - any import-time error is a broken shop module
        raise ConfigError(f"{where}: the module failed to import: {type(e).__name__}: {e}") from e
    create = getattr(module, "create", None)
    if not callable(create):
        raise ConfigError(f"{where}: the module has no create(shop) function; define "
                          f"`def create(shop: ShopSettings) -> Transformer`")
    transformer = create(shop)
    if not callable(getattr(transformer, "transform", None)):
        raise ConfigError(f"{where}: create(shop) returned {type(transformer).__name__}, "
                          f"which has no transform(records) method")
    return transformer
