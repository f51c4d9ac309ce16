"""The ``analyst`` role (migration ``analyst_role``): reads core and marts, tables created there later included;
nothing in raw or app; writes nothing. Every check logs in as analyst (the test server trusts loopback, as the
embedded one does)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import errors
from sqlalchemy.engine import URL

from pipeline.infra.database import libpq_url
from pipeline.infra.migrations import discover_migrations, migrate
from pipeline.infra.roles import ANALYST_ROLE, role_url

DAY = dt.date(2024, 5, 1)


@pytest.fixture(scope="module")
def owner_url(make_database: Callable[[], URL]) -> URL:
    """A migrated warehouse with one row in each table the checks read, written by the owner (the migrating role)."""
    url = make_database()
    migrate(url)
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("INSERT INTO app.users (user_id, display_name) VALUES ('anna', 'Anna Example')")
        conn.execute(
            "INSERT INTO app.api_keys (prefix, key_hash, user_id) VALUES ('hp_abcdefgh', '\\x00ff'::bytea, 'anna')"
        )
        batch = conn.execute(
            "INSERT INTO app.ingest_batches (user_id, source) VALUES ('anna', 'ndjson') RETURNING batch_id"
        ).fetchone()
        conn.execute("SELECT raw.add_sample_months(ARRAY[DATE '2024-05-01'])")  # raw.samples is partitioned
        conn.execute(
            """INSERT INTO raw.samples (identity, user_id, metric, value, unit, start_utc, end_utc, source_name,
                                       device_class, batch_id)
               VALUES (gen_random_uuid(), 'anna', 'STEPS', 812, 'count', '2024-05-01 08:00Z', '2024-05-01 08:10Z',
                       'Watch', 'watch', %s)""",
            batch,
        )
        conn.execute(
            "INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count) "
            "VALUES ('anna', %s, 'STEPS', 8123, 8123, 14)",
            (DAY,),
        )
        conn.execute(
            "INSERT INTO core.source_totals (user_id, local_date, metric, source_name, device_class, raw, kept) "
            "VALUES ('anna', %s, 'STEPS', 'Watch', 'watch', 9000, 8123)",
            (DAY,),
        )
    return url


def as_analyst(url: URL) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(libpq_url(role_url(url, ANALYST_ROLE)), autocommit=True)


def test_the_analyst_reads_marts_and_core(owner_url: URL) -> None:
    with as_analyst(owner_url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (ANALYST_ROLE,)
        daily = conn.execute("SELECT user_id, local_date, value, count FROM marts.daily").fetchall()
        totals = conn.execute("SELECT source_name, raw, kept FROM core.source_totals").fetchall()

    assert daily == [("anna", DAY, 8123.0, 14)]
    assert totals == [("Watch", 9000.0, 8123.0)]


def test_the_analyst_may_keep_intermediate_results_in_temporary_tables(owner_url: URL) -> None:
    with as_analyst(owner_url) as conn:
        conn.execute("CREATE TEMPORARY TABLE steps AS SELECT user_id, value FROM marts.daily WHERE metric = 'STEPS'")
        assert conn.execute("SELECT user_id, value * 2 FROM steps").fetchall() == [("anna", 16246.0)]


@pytest.mark.parametrize(
    ("table", "schema"),
    [("app.api_keys", "app"), ("app.users", "app"), ("raw.samples", "raw"), ("raw.quarantine", "raw")],
)
def test_the_analyst_cannot_read_raw_or_app(owner_url: URL, table: str, schema: str) -> None:
    with as_analyst(owner_url) as conn, pytest.raises(errors.InsufficientPrivilege, match=f"schema {schema}"):
        conn.execute(f"SELECT * FROM {table}".encode())


def test_the_analyst_cannot_read_the_migration_record_or_dagster_s_storage(owner_url: URL) -> None:
    with as_analyst(owner_url) as conn:
        with pytest.raises(errors.InsufficientPrivilege, match="table healthpipe_migrations"):
            conn.execute("SELECT * FROM public.healthpipe_migrations")
        with pytest.raises(errors.InsufficientPrivilege, match="schema dagster"):
            conn.execute("CREATE TABLE dagster.x (a int)")  # nor look into the schema at all (no USAGE)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count) "
        "VALUES ('ben', '2024-05-01', 'STEPS', 1, 1, 1)",
        "UPDATE marts.daily SET value = 0",
        "DELETE FROM core.source_totals",
        "TRUNCATE marts.hourly",
        "CREATE TABLE marts.mine (a int)",
        "CREATE TABLE core.mine (a int)",
        "CREATE VIEW marts.mine AS SELECT 1 AS a",
        "DROP TABLE marts.daily",
        "ALTER TABLE core.slices ADD COLUMN mine int",
    ],
)
def test_the_analyst_writes_nothing_in_marts_or_core(owner_url: URL, statement: str) -> None:
    with as_analyst(owner_url) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement.encode())
    with psycopg.connect(libpq_url(owner_url)) as conn:
        assert conn.execute("SELECT value FROM marts.daily").fetchall() == [(8123.0,)]
        assert conn.execute("SELECT count(*) FROM core.source_totals").fetchone() == (1,)


def test_a_table_the_owner_creates_later_in_marts_or_core_is_readable_but_not_one_in_app(
    make_database: Callable[[], URL],
) -> None:
    url = make_database()
    migrate(url)
    with psycopg.connect(libpq_url(url)) as conn:  # as a dbt model or a later migration would, as the owner
        conn.execute("CREATE TABLE marts.weekly_later AS SELECT 'anna' AS user_id, 56861.0 AS value")
        conn.execute("CREATE VIEW core.view_later AS SELECT 42 AS answer")
        conn.execute("CREATE TABLE app.secrets_later AS SELECT 'hunter2' AS secret")

    with as_analyst(url) as conn:
        assert conn.execute("SELECT user_id, value FROM marts.weekly_later").fetchall() == [("anna", 56861)]
        assert conn.execute("SELECT answer FROM core.view_later").fetchall() == [(42,)]
        with pytest.raises(errors.InsufficientPrivilege, match="schema app"):
            conn.execute("SELECT * FROM app.secrets_later")


def test_the_migration_runs_on_every_database_of_a_server_where_the_role_exists(
    make_database: Callable[[], URL],
) -> None:
    first, second = make_database(), make_database()
    migrate(first)  # the role exists from here on (if no earlier database on this server created it already)

    migrate(second)  # the same migration where the role exists: it only grants

    for url in (first, second):
        with as_analyst(url) as conn:
            assert conn.execute("SELECT count(*) FROM marts.daily").fetchone() == (0,)
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM app.users")
    with psycopg.connect(libpq_url(first)) as conn:
        role = conn.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolpassword IS NULL FROM pg_authid "
            "WHERE rolname = %s",
            (ANALYST_ROLE,),
        ).fetchone()
    assert role == (True, False, False, False, True)  # logs in, no other powers, no password from the migration


def test_two_databases_migrating_at_once_both_succeed_when_the_role_is_new(
    make_database: Callable[[], URL], server_admin_url: URL
) -> None:
    """Both see no role and create it; the second waits for the first's commit, then its duplicate is ignored. Run
    on the migration's own SQL with a fresh role name (``analyst`` exists on this server after the first test)."""
    (migration,) = [m for m in discover_migrations() if m.name == "analyst_role"]
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    sql = migration.sql.replace("analyst", role).encode()
    first, second = make_database(), make_database()
    for url in (first, second):
        migrate(url, target=migration.version - 1)
    try:
        with psycopg.connect(libpq_url(first)) as creator, psycopg.connect(libpq_url(second)) as racer:
            creator.execute(sql)  # created, not committed yet
            racer_pid = racer.info.backend_pid
            with ThreadPoolExecutor(1) as pool:
                racing = pool.submit(racer.execute, sql)
                with psycopg.connect(libpq_url(server_admin_url), autocommit=True) as watcher:
                    waiting = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s"
                    while watcher.execute(waiting, (racer_pid,)).fetchone() != (True,):
                        assert not racing.done(), racing.exception()
                creator.commit()
                racing.result()  # no duplicate error
            racer.commit()
        for url in (first, second):
            with psycopg.connect(libpq_url(url.set(username=role))) as conn:
                assert conn.execute("SELECT count(*) FROM marts.daily").fetchone() == (0,)
    finally:
        for url in (first, second):
            with psycopg.connect(libpq_url(url), autocommit=True) as conn:
                conn.execute(f'DROP OWNED BY "{role}"'.encode())
        with psycopg.connect(libpq_url(server_admin_url), autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"'.encode())


def test_an_owner_who_may_not_create_roles_is_told_what_to_do_and_nothing_is_created(
    make_database: Callable[[], URL], server_admin_url: URL
) -> None:
    """A warehouse owned by a plain role (no CREATEROLE), as on many managed servers; the migration's SQL with a fresh
    role name (``analyst`` exists on this server after the first test)."""
    (migration,) = [m for m in discover_migrations() if m.name == "analyst_role"]
    suffix = uuid.uuid4().hex[:8]
    owner, role = f"owner_{suffix}", f"analyst_{suffix}"
    url = make_database()
    with psycopg.connect(libpq_url(server_admin_url), autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{owner}" LOGIN'.encode())
        admin.execute(f'ALTER DATABASE "{url.database}" OWNER TO "{owner}"'.encode())
    owner_url = url.set(username=owner)
    try:
        migrate(owner_url, target=migration.version - 1)
        with psycopg.connect(libpq_url(owner_url)) as conn, pytest.raises(psycopg.errors.RaiseException) as raised:
            conn.execute(migration.sql.replace("analyst", role).encode())

        assert raised.value.diag.message_primary == (  # what `healthpipe db migrate` prints
            f"role {owner} may not create roles: have an administrator run CREATE ROLE {role} LOGIN once, then "
            "migrate again"
        )
        with psycopg.connect(libpq_url(server_admin_url)) as admin:
            assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)).fetchone() == (0,)
    finally:
        with psycopg.connect(libpq_url(server_admin_url), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{url.database}" OWNER TO CURRENT_USER'.encode())
            with psycopg.connect(libpq_url(url), autocommit=True) as conn:
                conn.execute(f'REASSIGN OWNED BY "{owner}" TO CURRENT_USER'.encode())
            admin.execute(f'DROP ROLE "{owner}"'.encode())


VIEWS_READING_RAW_OR_APP = """
SELECT DISTINCT v.oid::regclass::text, t.oid::regclass::text
FROM pg_class v
JOIN pg_namespace vn ON vn.oid = v.relnamespace AND vn.nspname IN ('core', 'marts')
JOIN pg_rewrite r ON r.ev_class = v.oid
JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace AND tn.nspname IN ('raw', 'app')
WHERE v.relkind IN ('v', 'm')
  AND NOT EXISTS (SELECT FROM unnest(v.reloptions) o WHERE o ~* '^security_invoker=(true|on|yes|1)$')
ORDER BY 1, 2
"""


def test_no_view_in_core_or_marts_hands_the_analyst_rows_of_raw_or_app(make_database: Callable[[], URL]) -> None:
    """A view runs with its owner's rights: one in marts over app.users would show the analyst every name. Views
    there must read core and marts only, or be ``security_invoker`` (then the analyst's own rights apply)."""
    url = make_database()
    migrate(url)
    with psycopg.connect(libpq_url(url)) as conn:
        assert conn.execute(VIEWS_READING_RAW_OR_APP).fetchall() == []
        # the query finds such a view (so the empty answer above means something) and lets a security_invoker one be
        conn.execute("CREATE VIEW marts.names AS SELECT u.user_id, u.display_name FROM app.users u")
        conn.execute("CREATE VIEW marts.own_rights WITH (security_invoker = on) AS SELECT user_id FROM app.users")
        assert conn.execute(VIEWS_READING_RAW_OR_APP).fetchall() == [("marts.names", "app.users")]
    with as_analyst(url) as conn:
        assert conn.execute("SELECT count(*) FROM marts.names").fetchone() == (0,)  # readable: the hazard is real
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied for table users"):
            conn.execute("SELECT * FROM marts.own_rights")
