"""The walk over the catalogue: tables with a user_id column in any schema, children before the tables their foreign
keys reference, and per-user key tables (crypto-shredding) emptied after every data row and before the rows they
reference (app.users)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import URL

from pipeline.erasure.erase import CLI, erase_user
from pipeline.erasure.walk import UserTable, _children_first, around_keys, user_tables
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.infra.migrations import migrate
from tests.support.helpers import land_samples, new_user


def table(name: str, *children: str) -> UserTable:
    schema, _, short = name.partition(".")
    return UserTable(schema, short, children)


def test_referencing_tables_come_first_and_key_tables_split_the_order() -> None:
    tables = [
        table("app.users", "app.devices", "app.user_keys"),
        table("app.devices", "app.device_notes"),
        table("app.device_notes"),
        table("app.user_keys"),
        table("raw.samples"),
    ]
    ordered = [t.qualified for t in _children_first(tables)]
    assert ordered.index("app.device_notes") < ordered.index("app.devices") < ordered.index("app.users")
    assert ordered.index("app.user_keys") < ordered.index("app.users")
    before, keys, after = around_keys(_children_first(tables))
    assert [t.qualified for t in keys] == ["app.user_keys"]
    assert [t.qualified for t in after] == ["app.users"]  # referenced by the key table: outlives the key
    assert {t.qualified for t in before} == {"app.device_notes", "app.devices", "raw.samples"}


def test_the_walk_finds_every_migrated_table_with_a_user_id_and_a_new_one(make_database: Callable[[], URL]) -> None:
    url = make_database()
    migrate(url)
    engine = create_warehouse_engine(url)
    with psycopg_connection(engine) as conn:
        found = {t.qualified for t in user_tables(conn)}
        assert {"app.users", "app.api_keys", "app.shares", "raw.samples", "raw.quarantine", "core.slices"} <= found
        assert {"marts.daily", "marts.hourly", "marts.insights", "marts.health_scores"} <= found
        assert "app.erasures" not in found  # it names no user
        conn.execute("CREATE SCHEMA later; CREATE TABLE later.things (user_id varchar(64), n int)")
        assert "later.things" in {t.qualified for t in user_tables(conn)}
    engine.dispose()


def test_the_data_key_is_destroyed_after_every_data_row_and_before_the_user_row(
    make_database: Callable[[], URL], tmp_path: Path
) -> None:
    """A key table as per-user encryption would add it; a trigger records, as each key row goes, how many rows of its
    user are still in raw.samples, marts.daily and app.users."""
    url = make_database()
    migrate(url)
    engine = create_warehouse_engine(url)
    user, other = new_user(engine), new_user(engine)
    land_samples(engine, user, [("STEPS", 800, "count", None, "2024-05-01 08:00", "2024-05-01 08:10", "W", "watch")])
    with psycopg_connection(engine) as conn:
        conn.execute(
            """CREATE TABLE app.user_keys (user_id text PRIMARY KEY REFERENCES app.users ON DELETE CASCADE,
                                           wrapped bytea NOT NULL);
               CREATE TABLE public.key_deletions (samples bigint, users bigint);
               CREATE FUNCTION public.seen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                   INSERT INTO public.key_deletions SELECT
                       (SELECT count(*) FROM raw.samples WHERE user_id = OLD.user_id),
                       (SELECT count(*) FROM app.users WHERE user_id = OLD.user_id);
                   RETURN OLD; END $$;
               CREATE TRIGGER seen BEFORE DELETE ON app.user_keys FOR EACH ROW EXECUTE FUNCTION public.seen()"""
        )
        conn.execute("INSERT INTO app.user_keys VALUES (%s, '\\x01'), (%s, '\\x02')", (user, other))

    erasure = erase_user(engine, user, requested_by=CLI, dagster_storage=None, dbt_home=tmp_path)

    assert erasure.data_key_destroyed is True
    assert "app.user_keys" not in erasure.rows_removed  # the key is counted as destroyed, not as a data row
    assert erasure.rows_removed["raw.samples"] == 1 and erasure.rows_removed["app.users"] == 1
    with psycopg_connection(engine) as conn:
        assert conn.execute("SELECT samples, users FROM public.key_deletions").fetchall() == [(0, 1)]
        keys = conn.execute("SELECT user_id FROM app.user_keys").fetchall()
        assert keys == [(other,)]
    engine.dispose()
