"""A schema Citus can distribute by user, checked on plain PostgreSQL (docs/scaling.md, "Running on Citus"): in raw,
core and marts (the dbt models included) every primary and unique key includes user_id, user_id takes no NULL, a
table without user_id is a listed reference table, and no foreign key crosses users. Migration 0023 made it so
without losing a row: quarantined lines that name no user (and their sealed payloads) now hold ':unattributed'."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline.erasure.erase import CLI, ErasureError, erase_user
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.infra.distribution import (
    REFERENCE_TABLES,
    UNATTRIBUTED_USER,
    NotReadyError,
    citus_statements,
    dbt_models_with_not_null_user_id,
    readiness_problems,
)
from pipeline.infra.migrations import migrate
from pipeline.ingest.landing import split_for_landing
from pipeline.ingest.store import create_batch, prepare_chunk, write_chunk
from pipeline.privacy.keyring import keyring_for
from pipeline.privacy.reads import quarantined
from tests.support.helpers import new_user
from tests.support.marts import build_full

DOCS = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"
BEFORE_0023 = 22  # the newest migration before this change


@pytest.fixture(scope="module")
def warehouse(make_database: Callable[[], URL], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Every migration and every dbt model (``dbt build``) of an empty warehouse: all the tables there are."""
    url = make_database()
    migrate(url)
    build_full(url, tmp_path_factory.mktemp("dbt"))
    engine = create_warehouse_engine(url)
    yield engine
    engine.dispose()


def test_every_table_of_raw_core_and_marts_can_be_distributed_by_user_or_is_a_reference_table(
    warehouse: Engine,
) -> None:
    with psycopg_connection(warehouse) as conn:
        assert readiness_problems(conn) == []
        dbt_tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'marts' AND tablename IN ('weekly', 'cohort_daily')"
        ).fetchone()
    assert dbt_tables == (2,)  # the dbt models were there to be checked


def test_the_schema_before_migration_0023_was_not_ready(make_database: Callable[[], URL]) -> None:
    url = make_database()
    migrate(url, target=BEFORE_0023)
    engine = create_warehouse_engine(url)
    try:
        with psycopg_connection(engine) as conn:
            problems = readiness_problems(conn)
            with pytest.raises(NotReadyError, match="quarantine_pkey"):
                citus_statements(conn)
    finally:
        engine.dispose()
    assert problems == [
        "marts.insights: unique key insights_pkey leaves out user_id",
        "raw.quarantine.user_id may be NULL (Citus refuses NULL in the distribution column)",
        "raw.quarantine: unique key quarantine_pkey leaves out user_id",
        "raw.sealed_chunks.user_id may be NULL (Citus refuses NULL in the distribution column)",
        "raw.sealed_chunks: unique key sealed_chunks_pkey leaves out user_id",
    ]


_BREACHES = """
CREATE SCHEMA s;
CREATE SCHEMA elsewhere;
CREATE TABLE elsewhere.accounts (account_id bigint PRIMARY KEY);
CREATE TABLE s.parent (user_id text NOT NULL, id bigint NOT NULL, code text, PRIMARY KEY (user_id, id));
CREATE UNIQUE INDEX parent_code ON s.parent (code) INCLUDE (user_id);          -- user_id only as a payload column
CREATE UNIQUE INDEX parent_user_code ON s.parent (user_id, code);             -- fine
CREATE TABLE s.nullable (user_id text, note text);
CREATE TABLE s.no_user (id bigint PRIMARY KEY);
CREATE TABLE s.catalogue (code text PRIMARY KEY);                              -- listed as a reference table
CREATE TABLE s.crossing (user_id text NOT NULL, owner text NOT NULL, parent_id bigint NOT NULL,
                         code text REFERENCES s.catalogue,                     -- fine: to a reference table
                         FOREIGN KEY (owner, parent_id) REFERENCES s.parent (user_id, id));
CREATE TABLE s.paired (user_id text NOT NULL, parent_id bigint NOT NULL,
                       FOREIGN KEY (user_id, parent_id) REFERENCES s.parent (user_id, id));  -- fine
ALTER TABLE s.catalogue ADD COLUMN first_user text, ADD COLUMN first_id bigint,
    ADD FOREIGN KEY (first_user, first_id) REFERENCES s.parent (user_id, id);
CREATE TABLE s.outward (user_id text NOT NULL, account_id bigint REFERENCES elsewhere.accounts);
CREATE TABLE s.by_month (user_id text NOT NULL, at date NOT NULL, id bigint NOT NULL, UNIQUE (id, at))
    PARTITION BY RANGE (at);
CREATE TABLE s.by_month_2024 PARTITION OF s.by_month FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
"""


def test_each_kind_of_breach_is_named(make_database: Callable[[], URL]) -> None:
    """On tables made to break each rule once (and to keep it, for the ones said to be fine)."""
    engine = create_warehouse_engine(make_database())
    try:
        with psycopg_connection(engine) as conn:
            conn.execute(_BREACHES.encode())
            problems = readiness_problems(conn, ["s"], {"s.catalogue": "codes every user's rows name"})
    finally:
        engine.dispose()
    assert problems == [
        # a partitioned table is checked once, through its parent
        "s.by_month: unique key by_month_id_at_key leaves out user_id",
        "s.no_user has no user_id column and is not listed as a reference table",
        "s.nullable.user_id may be NULL (Citus refuses NULL in the distribution column)",
        "s.parent: unique key parent_code leaves out user_id",
        "s.catalogue: foreign key catalogue_first_user_first_id_fkey to s.parent goes from a reference table to "
        "a distributed table",
        "s.crossing: foreign key crossing_owner_parent_id_fkey to s.parent does not pair user_id with user_id",
        "s.outward: foreign key outward_account_id_fkey to elsewhere.accounts goes from a distributed table to "
        "a table outside the checked schemas",
    ]


def test_the_dbt_models_user_ids_are_guarded_by_not_null_tests() -> None:
    """dbt's CREATE TABLE AS declares no NOT NULL: the models' not_null tests stand in for it."""
    assert {"marts.weekly", "marts.monthly", "marts.daily_wide", "marts.source_contributions"} <= (
        dbt_models_with_not_null_user_id()
    )


def test_the_operators_statements_in_the_docs_are_the_ones_the_schema_needs(warehouse: Engine) -> None:
    with psycopg_connection(warehouse) as conn:
        statements = citus_statements(conn)
        existing = {
            f"{schema}.{name}"
            for schema, name in conn.execute("SELECT schemaname, tablename FROM pg_tables").fetchall()
        }
    documented = [line for line in DOCS.read_text(encoding="utf-8").splitlines() if line.startswith("SELECT create_")]
    # the docs may name a table a migration not in this checkout makes (its statement then stands in its place)
    assert [line for line in documented if line.split("'")[1] in existing] == statements
    assert statements[0] == "SELECT create_reference_table('marts.cohort_daily');"
    assert "SELECT create_distributed_table('raw.samples', 'user_id');" in statements
    assert "SELECT create_distributed_table('raw.quarantine', 'user_id', colocate_with => 'raw.samples');" in statements


def test_the_docs_name_every_reference_table_and_why() -> None:
    section = DOCS.read_text(encoding="utf-8").split("## Running on Citus", 1)[1]
    listed = set(re.findall(r"^\| `((?:raw|core|marts)\.[a-z_]+)` \| reference \|", section, flags=re.MULTILINE))
    assert listed == set(REFERENCE_TABLES)


def _land_a_line_naming_no_user(engine: Engine, user: str) -> int:
    """A chunk of three lines: one of ``user``, one naming no user (quarantined, payload sealed under
    ':unattributed'), one of a user who does not exist (quarantined under that name); the batch's id."""
    incoming = pd.DataFrame(
        {
            "user_id": [user, None, "nobody_here"],
            "metric": "STEPS",
            "value": [10, 20, 30],
            "unit": "count",
            "start": "2024-03-01T10:00:00Z",
            "end": "2024-03-01T10:01:00Z",
            "source_name": "Phone",
            "metadata": ['{"note": "mine"}', '{"note": "whose?"}', None],
        }
    )
    with psycopg_connection(engine) as conn:
        batch = create_batch(conn, user, "test", None)
        counts = write_chunk(conn, batch, prepare_chunk(split_for_landing(incoming), keyring_for(conn)))
    assert (counts.landed, counts.rejected) == (1, 2)
    return batch


def test_migration_0023_keeps_every_row_and_every_payload_readable(make_database: Callable[[], URL]) -> None:
    url = make_database()
    migrate(url, target=BEFORE_0023)
    engine = create_warehouse_engine(url)
    try:
        user = new_user(engine)
        batch = _land_a_line_naming_no_user(engine, user)
        with psycopg_connection(engine) as conn:
            # what the landing wrote before this change: NULL for the line naming no user and its sealed chunk
            conn.execute("UPDATE raw.quarantine SET user_id = NULL WHERE user_id = %s", (UNATTRIBUTED_USER,))
            conn.execute("UPDATE raw.sealed_chunks SET user_id = NULL WHERE user_id = %s", (UNATTRIBUTED_USER,))
            before = conn.execute(
                """SELECT (SELECT count(*) FROM raw.quarantine), (SELECT count(*) FROM raw.quarantine
                   WHERE user_id IS NULL), (SELECT count(*) FROM raw.sealed_chunks),
                   (SELECT count(*) FROM raw.sealed_chunks WHERE user_id IS NULL)"""
            ).fetchone()
        assert before == (2, 1, 3, 1)  # metadata of the landed line, two payload chunks (no user, nobody_here)

        assert migrate(url).applied[0] == BEFORE_0023 + 1

        with psycopg_connection(engine) as conn:
            after = conn.execute(
                """SELECT (SELECT count(*) FROM raw.quarantine), (SELECT count(*) FROM raw.quarantine
                   WHERE user_id = %(u)s), (SELECT count(*) FROM raw.sealed_chunks),
                   (SELECT count(*) FROM raw.sealed_chunks WHERE user_id = %(u)s)""",
                {"u": UNATTRIBUTED_USER},
            ).fetchone()
            rows = quarantined(conn, batch_id=batch)
        assert after == (2, 1, 3, 1)
        # readers still see "no user", and both payloads open with their keys
        by_reason = {row.reason: (row.user_id, json.loads(row.payload)["value"]) for row in rows}
        assert by_reason == {"missing user": (None, 20), "unknown user 'nobody_here'": ("nobody_here", 30)}
    finally:
        engine.dispose()


def test_the_landing_writes_the_placeholder_and_an_erasure_cannot_reach_it(warehouse: Engine, tmp_path: Path) -> None:
    user = new_user(warehouse)
    batch = _land_a_line_naming_no_user(warehouse, user)
    with psycopg_connection(warehouse) as conn:
        stored = conn.execute(
            "SELECT reason, user_id FROM raw.quarantine WHERE batch_id = %s ORDER BY reason", (batch,)
        ).fetchall()
        read = sorted((row.reason, row.user_id) for row in quarantined(conn, batch_id=batch))
    assert stored == [("missing user", UNATTRIBUTED_USER), ("unknown user 'nobody_here'", "nobody_here")]
    assert read == [("missing user", None), ("unknown user 'nobody_here'", "nobody_here")]
    with pytest.raises(ErasureError, match="not a user id"):
        erase_user(warehouse, UNATTRIBUTED_USER, requested_by=CLI, dagster_storage=None, dbt_home=tmp_path)
    with psycopg_connection(warehouse) as conn:
        assert conn.execute(
            "SELECT count(*) FROM raw.quarantine WHERE user_id = %s", (UNATTRIBUTED_USER,)
        ).fetchone() == (1,)
        # its key was not destroyed either: the payload still opens
        assert [
            json.loads(row.payload)["value"] for row in quarantined(conn, batch_id=batch) if row.user_id is None
        ] == [20]
