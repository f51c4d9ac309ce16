"""Versioned SQL migrations from ``dbt_like_sql/migrations`` (``NNNN_name.sql``), applied in order, once each.

- Each migration runs in its own transaction together with its row in the version table, so a failure leaves the
  database at the previous version.
- A session advisory lock serialises concurrent runs (the API and the Dagster code location may both migrate).
- A database whose recorded version is newer than the newest file here is refused: older code must not write to it.
- A recorded checksum that no longer matches its file is refused: applied migrations are immutable.
- A migration may have a Python step (`_run_python_step`) run after its SQL in the same transaction: 0018 encrypts
  the values existing rows hold.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from pipeline.infra.database import libpq_url, psycopg_connection

VERSION_TABLE = "public.healthpipe_migrations"
_LOCK_KEY = 0x4845_414C  # "HEAL": any constant shared by every migrating process
_FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The database cannot be brought to this code's schema version; the message says why."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationReport:
    applied: tuple[int, ...]
    version: int


def _run_python_step(conn: psycopg.Connection[tuple[object, ...]], version: int) -> None:
    """What a migration's SQL cannot do (encrypting existing values needs the keys), run in its transaction."""
    if version == 18:
        from pipeline.privacy.migration import seal_plain_columns  # the key store is needed only here

        seal_plain_columns(conn)


def discover_migrations() -> list[Migration]:
    folder = resources.files("dbt_like_sql") / "migrations"
    migrations = []
    for entry in folder.iterdir():
        match = _FILE_PATTERN.match(entry.name)
        if match:
            migrations.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    migrations.sort(key=lambda m: m.version)
    expected = list(range(1, len(migrations) + 1))
    if [m.version for m in migrations] != expected:
        raise MigrationError(f"migration versions must be 1..N without gaps, found {[m.version for m in migrations]}")
    return migrations


def current_version(url: URL) -> int:
    """The version recorded in the database, 0 for a database never migrated."""
    with psycopg.connect(libpq_url(url)) as conn:
        return _recorded_version(conn)


def _recorded_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSION_TABLE,)).fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}").fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def probe_schema_version(engine: Engine) -> int | None:
    """The version recorded in the database, or None when it cannot be reached or was never migrated (no version
    table): what a health probe reports, so every failure is an answer rather than an exception."""
    try:
        with psycopg_connection(engine) as conn:
            row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}").fetchone()
    except (SQLAlchemyError, psycopg.Error):
        return None
    return int(row[0]) if row else None  # type: ignore[call-overload]


def migrate(url: URL, target: int | None = None) -> MigrationReport:
    """Bring the database to the newest migration (or to ``target``, to test a migration on the rows of the schema
    before it). Idempotent: a second call applies nothing."""
    migrations = discover_migrations()
    if target is not None:
        migrations = [m for m in migrations if m.version <= target]
    newest = migrations[-1].version if migrations else 0
    applied: list[int] = []
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version integer PRIMARY KEY, name text NOT NULL, "
                "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            recorded = {int(v): str(c) for v, c in conn.execute(f"SELECT version, checksum FROM {VERSION_TABLE}")}
            database_version = max(recorded, default=0)
            if database_version > newest:
                raise MigrationError(
                    f"the database is at schema version {database_version}, newer than this code's {newest}; "
                    "upgrade healthpipe before running it against this database (nothing was changed)"
                )
            for migration in migrations:
                if migration.version in recorded:
                    if recorded[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{migration.name} was edited after it was applied; "
                            "add a new migration instead (nothing was changed)"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    _run_python_step(conn, migration.version)
                    conn.execute(
                        f"INSERT INTO {VERSION_TABLE} (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return MigrationReport(tuple(applied), max(newest, 0))
