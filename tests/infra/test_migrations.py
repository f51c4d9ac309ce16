from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from sqlalchemy.engine import URL

from pipeline.infra.database import libpq_url
from pipeline.infra.migrations import (
    VERSION_TABLE,
    MigrationError,
    current_version,
    discover_migrations,
    migrate,
)

CATALOG_SNAPSHOT = """
SELECT n.nspname, c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname IN ('raw', 'core', 'marts', 'app', 'dagster', 'public')
ORDER BY 1, 2, 4
"""


def catalog(url: URL) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq_url(url)) as conn:
        schemas = [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace ORDER BY 1")]
        return [("schemas", *schemas), *conn.execute(CATALOG_SNAPSHOT).fetchall()]


def test_migrations_apply_once_and_a_second_run_changes_nothing(make_database: Callable[[], URL]) -> None:
    url = make_database()
    newest = len(discover_migrations())
    assert current_version(url) == 0

    first = migrate(url)
    assert first.applied == tuple(range(1, newest + 1))
    assert current_version(url) == newest
    after_first = catalog(url)
    assert {"raw", "core", "marts", "app", "dagster"} <= set(after_first[0][1:])

    second = migrate(url)
    assert second.applied == ()
    assert catalog(url) == after_first
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(f"SELECT count(*) FROM {VERSION_TABLE}").fetchone()
    assert rows == (newest,)


def test_a_database_with_a_newer_schema_is_refused_untouched(make_database: Callable[[], URL]) -> None:
    url = make_database()
    migrate(url)
    newest = len(discover_migrations())
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(f"INSERT INTO {VERSION_TABLE} (version, name, checksum) VALUES (%s, 'future', 'x')", (newest + 1,))
    before = catalog(url)
    with pytest.raises(MigrationError, match=rf"schema version {newest + 1}, newer than this code's {newest}"):
        migrate(url)
    assert catalog(url) == before


def test_an_edited_migration_is_refused(make_database: Callable[[], URL]) -> None:
    url = make_database()
    migrate(url)
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(MigrationError, match="0001_layer_schemas was edited after it was applied"):
        migrate(url)


def test_migration_files_are_numbered_without_gaps() -> None:
    versions = [m.version for m in discover_migrations()]
    assert versions == list(range(1, len(versions) + 1))
    assert versions[0] == 1


def test_0005_moves_old_partition_stats_to_the_disjoint_accounting(make_database: Callable[[], URL]) -> None:
    """Rows written before exact duplicates were their own term (raw = accepted + rejected, copies inside
    accepted) are rewritten; rows already disjoint, or without copies, are left alone."""
    url = make_database()
    migrate(url)
    (migration,) = [m for m in discover_migrations() if m.version == 5]
    rows = [  # user, raw_rows, rejected, accepted, exact_duplicates
        ("old", 100, 5, 95, 7),  # old meaning: 95 accepted include the 7 copies -> 88
        ("new", 100, 5, 88, 7),  # already disjoint: 88 + 5 + 7
        ("none", 50, 2, 48, 0),  # no copies: both meanings agree
    ]
    with psycopg.connect(libpq_url(url)) as conn:
        for user, raw, rejected, accepted, copies in rows:
            conn.execute(
                "INSERT INTO core.partition_stats "
                "(user_id, local_date, raw_rows, rejected, accepted, exact_duplicates) "
                "VALUES (%s, '2024-03-06', %s, %s, %s, %s)",
                (user, raw, rejected, accepted, copies),
            )
        conn.execute(migration.sql.encode())
        conn.execute(migration.sql.encode())  # and running it again changes nothing more
        after = dict(conn.execute("SELECT user_id, accepted FROM core.partition_stats").fetchall())
        unbalanced = conn.execute(
            "SELECT count(*) FROM core.partition_stats WHERE raw_rows <> accepted + rejected + exact_duplicates"
        ).fetchone()
    assert after == {"old": 88, "new": 88, "none": 48}
    assert unbalanced == (0,)
