"""The walk over the catalogue: tables with a user_id column in any schema, children before the tables their foreign
keys reference, and per-user key tables (crypto-shredding) emptied after every data row and before the rows they
reference (app.users)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from pipeline.erasure.erase import CLI, ErasureError, erase_user
from pipeline.erasure.walk import UserTable, _children_first, around_keys, user_tables
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.infra.migrations import migrate
from pipeline.privacy import KeyDestroyedError, keyring_for
from pipeline.privacy.fields import open_sealed, seal
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


PLACE = "app.users.given_name"


def test_the_data_key_is_destroyed_in_the_key_store_once_the_rows_are_gone(
    make_database: Callable[[], URL], tmp_path: Path
) -> None:
    """Crypto-shredding through the erasure: the user's data key leaves the key store (a value sealed under it, as a
    backup keeps it, can no longer be opened) while another user's key still opens theirs."""
    url = make_database()
    migrate(url)
    engine = create_warehouse_engine(url)
    user, other = new_user(engine), new_user(engine)
    land_samples(engine, user, [("STEPS", 800, "count", None, "2024-05-01 08:00", "2024-05-01 08:10", "W", "watch")])
    with psycopg_connection(engine) as conn:
        keyring = keyring_for(conn)
        sealed = {who: seal(keyring.data_key(who), PLACE, who, f"name of {who}") for who in (user, other)}

    erasure = erase_user(engine, user, requested_by=CLI, dagster_storage=None, dbt_home=tmp_path)

    assert erasure.data_key_destroyed is True
    assert erasure.rows_removed["raw.samples"] == 1 and erasure.rows_removed["app.users"] == 1
    with psycopg_connection(engine) as conn:
        keyring = keyring_for(conn)
        with pytest.raises(KeyDestroyedError):
            keyring.existing_key(user)
        assert open_sealed(keyring.existing_key(other), PLACE, other, sealed[other]) == f"name of {other}"
        recorded = conn.execute("SELECT data_key_destroyed FROM app.erasures").fetchall()
    assert recorded == [(True,)]
    # erasing the id again finds nothing left, neither rows nor key
    with pytest.raises(ErasureError):
        erase_user(engine, user, requested_by=CLI, dagster_storage=None, dbt_home=tmp_path)
    engine.dispose()
