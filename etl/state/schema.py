"""The state store's schema, as an ordered list of migrations shared by every backend.

A store records the versions applied in its `schema_version` table; opening it applies the
missing ones in order, inside one transaction. Add a table or column by appending a Migration;
never edit one that has shipped (stores in the field already ran it).

Statements are portable SQL with type placeholders that each backend fills in:

  {id}     auto-increment integer primary key
  {key}    indexable text, up to 255 characters (identities, source ids, contact key values)
  {name}   short indexable text, up to 64 characters (sources, kinds, statuses, INNs)
  {hash}   payload hash text, up to 128 characters
  {text}   long text (JSON documents, details; raw records are capped at 64 K characters)
  {bigint} 64-bit integer
  {ts}     UTC timestamp (stored by the codec as 'YYYY-MM-DD HH:MM:SS.ffffff')
  {table}  table options after the closing parenthesis (MySQL: engine, utf8mb4, binary
           collation, so keys compare byte-exactly as in SQLite)

Uniqueness lives in the database (primary keys and UNIQUE constraints), so concurrent writers
cannot create two rows for one identity, source record, contact key or lock.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


SCHEMA_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER NOT NULL PRIMARY KEY,"
    " description {text} NOT NULL,"
    " applied_at {ts} NOT NULL"
    "){table}"
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, entities, source map, watermarks, EGRUL cache, rejects, pending", (
        "CREATE TABLE runs ("
        " run_id {id},"
        " mode {name} NOT NULL,"
        " source {name} NOT NULL,"
        " status {name} NOT NULL,"
        " argv {text} NOT NULL,"
        " host {key} NOT NULL,"
        " pid INTEGER NOT NULL,"
        " started_at {ts} NOT NULL,"
        " finished_at {ts},"
        " counts {text}"
        "){table}",
        "CREATE INDEX runs_by_source ON runs (source, run_id)",

        "CREATE TABLE entities ("
        " identity {key} NOT NULL PRIMARY KEY,"
        " entity_type {name} NOT NULL,"
        " bitrix_id {bigint},"
        " status {name} NOT NULL,"
        " payload_hash {hash},"
        " intent_hash {hash},"
        " run_id {bigint},"
        " created_at {ts} NOT NULL,"
        " updated_at {ts} NOT NULL"
        "){table}",

        "CREATE TABLE source_map ("
        " source {name} NOT NULL,"
        " kind {name} NOT NULL,"
        " source_id {key} NOT NULL,"
        " identity {key} NOT NULL,"
        " updated_at {ts} NOT NULL,"
        " PRIMARY KEY (source, kind, source_id)"
        "){table}",

        "CREATE TABLE watermarks ("
        " name {key} NOT NULL PRIMARY KEY,"
        " value {text} NOT NULL,"
        " updated_at {ts} NOT NULL"
        "){table}",

        "CREATE TABLE egrul_cache ("
        " inn {name} NOT NULL PRIMARY KEY,"
        " status {name} NOT NULL,"
        " payload {text},"
        " checked_at {ts} NOT NULL"
        "){table}",

        "CREATE TABLE rejects ("
        " reject_id {id},"
        " source {name} NOT NULL,"
        " kind {name} NOT NULL,"
        " source_id {key} NOT NULL,"
        " reason {key} NOT NULL,"
        " detail {text} NOT NULL,"
        " raw {text},"
        " run_id {bigint} NOT NULL,"
        " first_run_id {bigint} NOT NULL,"
        " run_count INTEGER NOT NULL,"
        " first_rejected_at {ts} NOT NULL,"
        " rejected_at {ts} NOT NULL,"
        " UNIQUE (source, kind, source_id)"
        "){table}",
        "CREATE INDEX rejects_by_run ON rejects (run_id)",
        "CREATE INDEX rejects_by_reason ON rejects (reason)",

        "CREATE TABLE pending ("
        " pending_id {id},"
        " source {name} NOT NULL,"
        " kind {name} NOT NULL,"
        " source_id {key} NOT NULL,"
        " reason {key} NOT NULL,"
        " detail {text} NOT NULL,"
        " raw {text},"
        " attempts INTEGER NOT NULL,"
        " run_id {bigint} NOT NULL,"
        " first_parked_at {ts} NOT NULL,"
        " last_tried_at {ts} NOT NULL,"
        " UNIQUE (source, kind, source_id)"
        "){table}",
    )),
    Migration(2, "contact match index and run locks", (
        "CREATE TABLE contact_keys ("
        " company_inn {name} NOT NULL,"
        " kind {name} NOT NULL,"
        " value {key} NOT NULL,"
        " identity {key} NOT NULL,"
        " created_at {ts} NOT NULL,"
        " PRIMARY KEY (company_inn, kind, value)"
        "){table}",

        "CREATE TABLE locks ("
        " name {key} NOT NULL PRIMARY KEY,"
        " holder {key} NOT NULL,"
        " pid INTEGER NOT NULL,"
        " host {key} NOT NULL,"
        " acquired_at {ts} NOT NULL,"
        " heartbeat_at {ts} NOT NULL"
        "){table}",
    )),
    Migration(3, "contact names (to tell persons apart who share a key, across runs)", (
        "CREATE TABLE contact_names ("
        " identity {key} NOT NULL PRIMARY KEY,"
        " last_name {key} NOT NULL,"
        " first_name {key} NOT NULL,"
        " middle_name {key} NOT NULL,"
        " updated_at {ts} NOT NULL"
        "){table}",
    )),
)

LATEST_VERSION = MIGRATIONS[-1].version


def render(statement: str, types: Mapping[str, str]) -> str:
    """Fill a statement's type placeholders with one backend's types."""
    return statement.format_map(types)
