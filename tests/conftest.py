"""Test fixtures: a real PostgreSQL for every database test.

By default a throwaway embedded server is started for the session. Set ``HEALTHPIPE_TEST_DATABASE_URL`` to an
external server's maintenance database (e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``) to run the same
tests there instead; each test database is created fresh and dropped afterwards, so the server is left as found.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline.infra.database import create_warehouse_engine, libpq_url, parse_postgres_url, with_driver
from pipeline.infra.embedded_server import EmbeddedPostgres
from pipeline.infra.migrations import migrate
from pipeline.privacy.keystore import KEYSTORE_SUFFIX

# shared fixtures: `world` and `client` (the read API's warehouse), taken by the modules that do not define their own
pytest_plugins = ("tests.support.read_api",)

EXTERNAL_URL_ENV = "HEALTHPIPE_TEST_DATABASE_URL"
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
_OWN_BASETEMP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """As root, give this test session a temporary folder of its own instead of one under pytest's shared
    ``/tmp/pytest-of-root``: every pytest session that starts closes that folder to its owner (mode 0700), and the
    embedded servers' OS user, whose data folders live below it, would then lose its data mid-run (the servers
    crash, ``initdb`` fails) whenever another suite of the same user starts beside this one."""
    # one master key for the session's warehouses (each test database gets its own key store, `<name>_keys`); set
    # in the environment, so that servers and Dagster runs started by the tests share it
    os.environ.setdefault("HEALTHPIPE_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    if config.option.basetemp is None and os.geteuid() == 0 and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="healthpipe-pytest-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(scope="session")
def server_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    """A URL to a maintenance database on the server the tests use."""
    external = os.environ.get(EXTERNAL_URL_ENV)
    if external:
        yield parse_postgres_url(external)
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("embedded") / "home")
    status = server.start()
    try:
        yield parse_postgres_url(status.url("postgres"))
    finally:
        server.stop()


@pytest.fixture(scope="session")
def make_database(server_admin_url: URL) -> Iterator[Callable[[], URL]]:
    """Factory of fresh, empty databases on the test server; all dropped at the end of the session."""
    created: list[str] = []

    def create() -> URL:
        name = f"hp_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(libpq_url(server_admin_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        created.append(name)
        return with_driver(server_admin_url.set(database=name), "psycopg")

    yield create
    with psycopg.connect(libpq_url(server_admin_url), autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
            conn.execute(f'DROP DATABASE IF EXISTS "{name}{KEYSTORE_SUFFIX}" WITH (FORCE)'.encode())


@pytest.fixture(scope="session")
def migrated_url(make_database: Callable[[], URL]) -> URL:
    """One migrated database shared by the tests that only read the schema or own their rows."""
    url = make_database()
    migrate(url)
    return url


@pytest.fixture
def warehouse_url(make_database: Callable[[], URL], monkeypatch: pytest.MonkeyPatch) -> Iterator[URL]:
    """A fresh migrated database that the code under test finds as its warehouse (``HEALTHPIPE_DATABASE_URL``), as
    Dagster assets, sensors and run workers do."""
    url = make_database()
    migrate(url)
    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", url.render_as_string(hide_password=False))
    yield url


@pytest.fixture(scope="session")
def engine(migrated_url: URL) -> Iterator[Engine]:
    engine = create_warehouse_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def unreachable_engine() -> Iterator[Engine]:
    """An engine whose server never answers (nothing listens on port 1): a database outage."""
    nowhere = create_warehouse_engine(with_driver("postgresql://nobody@127.0.0.1:1/nothing", "psycopg"))
    yield nowhere
    nowhere.dispose()
