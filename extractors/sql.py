"""The generic SQL source: one small interface over the shop databases, chosen by DSN.

`open_sql_source("mysql://user:pass@host:port/db")` gives a MySQL/MariaDB source (the shop's
replica); `open_sql_source("sqlite:///path")` (or a plain path) gives the SQLite stand-in used by
the sandbox. Both stream rows as dicts, return text columns as the exact stored `bytes` (the
transformer repairs the encoding), and take queries with `%(name)s` placeholders. Shop-specific
SQL lives with the shop's transformer, not here.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from etl.secrets import Secret, redact_url, register
from extractors.errors import SourceError

__all__ = ["SourceError", "SqlSource", "ClosingSource", "open_sql_source", "pyformat_to_named"]


@runtime_checkable
class SqlSource(Protocol):
    def iter_rows(self, query: str, params: Mapping[str, Any] | None = None, *,
                  table: str | None = None) -> Iterator[dict[str, Any]]:
        """Stream the rows of `query` as dicts (plus `"_table": table` when given)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class ClosingSource:
    """Context-manager plumbing shared by the SQL sources."""

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


MYSQL_SCHEMES = ("mysql", "mariadb", "mysql+pymysql")


def open_sql_source(dsn: str | Secret) -> SqlSource:
    """Open the source a DSN names: `mysql://user:pass@host:port/db[?connect_timeout=S&read_timeout=S]`,
    `sqlite:///path` or a plain SQLite file path. Raises `SourceError` (never showing the password)."""
    text = dsn.reveal() if isinstance(dsn, Secret) else str(dsn or "")
    text = text.strip()
    register(text)  # its password part is hidden from every log line and message from now on
    if not text:
        raise SourceError("no database DSN configured: set CRM_ETL_SHOP_A_DSN "
                          "(mysql://user:pass@host:port/db, or sqlite:///path in the sandbox)")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in MYSQL_SCHEMES:
        from extractors.mysql import MySqlSource

        return MySqlSource.from_dsn(text)
    if scheme in ("sqlite", ""):
        from extractors.sqlite import SqliteSource

        return SqliteSource.from_dsn(text)
    raise SourceError(f"unsupported DSN scheme {scheme!r} in {redact_url(text)}: "
                      "use mysql://user:pass@host:port/db or sqlite:///path")


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%|%")


def pyformat_to_named(query: str) -> str:
    """Translate `%(name)s` placeholders to sqlite3's `:name` (`%%` is a literal `%`).

    A lone `%` is refused, as pymysql refuses it, so a query behaves the same on both backends.
    """

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return ":" + m.group(1)
        if m.group(0) == "%%":
            return "%"
        raise ValueError(f"lone '%' at position {m.start()} in query (write %% for a literal percent)")

    return _PLACEHOLDER.sub(repl, query)
