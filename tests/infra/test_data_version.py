"""Per-user data versions: absent is 0, each advance adds one per named user (duplicates count once), others keep
theirs, and a rolled-back write leaves the version where it was."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine

from pipeline import data_version
from pipeline.infra.database import psycopg_connection


def test_advance_counts_each_write_once_per_user_and_rolls_back_with_its_transaction(engine: Engine) -> None:
    anna, ben, cleo = (f"dv-{name}-{uuid.uuid4().hex[:6]}" for name in ("anna", "ben", "cleo"))
    with psycopg_connection(engine) as conn:
        assert data_version.current(conn, anna) == 0
        with conn.transaction():
            data_version.advance(conn, [anna, ben, anna])
        with conn.transaction():
            data_version.advance(conn, [ben])
        data_version.advance(conn, [])  # nothing to do, no statement
        assert [data_version.current(conn, user) for user in (anna, ben, cleo)] == [1, 2, 0]

        class AbortedError(Exception):
            pass

        try:
            with conn.transaction():
                data_version.advance(conn, [anna, cleo])
                assert data_version.current(conn, anna) == 2
                raise AbortedError
        except AbortedError:
            pass
        assert [data_version.current(conn, user) for user in (anna, ben, cleo)] == [1, 2, 0]
