"""The users questions the command line and the stack ask, answered by ``pipeline.accounts``."""

from __future__ import annotations

from sqlalchemy.engine import URL

from pipeline.accounts import create_user, has_users, user_ids
from pipeline.infra.database import create_warehouse_engine, psycopg_connection


def test_an_empty_warehouse_has_no_users_and_then_lists_every_user_added(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    with psycopg_connection(engine) as conn:
        assert not has_users(conn) and user_ids(conn) == []
        create_user(conn, "anna", "Europe/Amsterdam")
        create_user(conn, "bob")

        assert has_users(conn)
        assert sorted(user_ids(conn)) == ["anna", "bob"]
    engine.dispose()
