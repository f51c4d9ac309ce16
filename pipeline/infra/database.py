"""Database URLs, engines and connections for the warehouse and for Dagster's instance storage.

Users give one URL in any common spelling (``postgres://``, ``postgresql://``, with or without a driver). We use
psycopg 3 for our own connections; dagster-postgres needs ``postgresql+psycopg2`` (with SQLAlchemy 2.1 a plain
``postgresql://`` means psycopg 3 there and breaks its LISTEN/NOTIFY).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url

from pipeline.infra.embedded_server import EmbeddedPostgres
from pipeline.infra.settings import Settings

DAGSTER_SCHEMA = "dagster"
Connection = psycopg.Connection[tuple[object, ...]]
_POSTGRES_DRIVERS = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}


class DatabaseUrlError(ValueError):
    """The configured database URL is not a PostgreSQL URL."""


def parse_postgres_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with the URL in it; do not echo secrets
        raise DatabaseUrlError("the database URL cannot be parsed (expected postgresql://user@host:port/db)") from exc
    if parsed.drivername not in _POSTGRES_DRIVERS:
        raise DatabaseUrlError(f"only PostgreSQL is supported, not {parsed.drivername!r}")
    if not parsed.database:
        raise DatabaseUrlError("the database URL names no database")
    return parsed


def with_driver(url: str | URL, driver: str) -> URL:
    """The same URL with SQLAlchemy driver ``driver`` (``psycopg`` or ``psycopg2``)."""
    parsed = parse_postgres_url(url) if isinstance(url, str) else url
    return parsed.set(drivername=f"postgresql+{driver}")


def libpq_url(url: str | URL) -> str:
    """A plain ``postgresql://`` URL for psycopg.connect / psql, password included."""
    parsed = parse_postgres_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def without_password(url: URL) -> URL:
    """The same URL with no password (``URL.set(password=None)`` leaves it unchanged)."""
    return url._replace(password=None)


def redacted(url: str | URL) -> str:
    """The URL with its password masked, for logs and messages: in libpq's spelling (``postgresql://``, no SQLAlchemy
    driver), so that what a message shows can be pasted into psql once the ``***`` is dropped."""
    parsed = parse_postgres_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=True)


def warehouse_url(settings: Settings, *, start_embedded: bool = True) -> URL:
    """The warehouse database (psycopg 3 driver). Without a configured URL, the embedded server's; it is started
    when ``start_embedded`` (idempotent and cheap when it already runs)."""
    if settings.database_url is not None:
        return with_driver(settings.database_url.get_secret_value(), "psycopg")
    server = EmbeddedPostgres(settings.home, settings.embedded_port)
    status = server.start() if start_embedded else server.status()
    return with_driver(status.url("healthpipe"), "psycopg")


def dagster_storage_url(settings: Settings, warehouse: URL) -> URL:
    """Dagster's instance storage: its own URL if configured, else schema ``dagster`` of the warehouse database
    (the search_path option makes dagster-postgres create and find its tables there)."""
    if settings.dagster_database_url is not None:
        return with_driver(settings.dagster_database_url.get_secret_value(), "psycopg2")
    query = dict(warehouse.query)
    query["options"] = f"-csearch_path={DAGSTER_SCHEMA}"
    return with_driver(warehouse, "psycopg2").set(query=query)


def create_warehouse_engine(url: URL, *, pre_ping: bool = True, **kwargs: object) -> Engine:
    """Engine for our own reads and writes. ``pre_ping``: a round trip before each borrow finds connections a
    restarted server cut. Without it (the API, where that round trip is a third of a cached read), a connection
    found broken is dropped when it comes back (`psycopg_connection`): after a restart each pooled connection fails
    one request, which the API answers 503, and is then replaced."""
    return create_engine(url, pool_pre_ping=pre_ping, **kwargs)


@contextmanager
def psycopg_connection(engine: Engine) -> Iterator[Connection]:
    """A psycopg 3 connection from the engine's pool (COPY needs the driver's own API), in autocommit mode:
    callers open explicit ``conn.transaction()`` blocks. The pool gets it back as it lent it."""
    raw = engine.raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        driver.rollback()
        driver.autocommit = True
        yield driver
    finally:
        if driver.broken or driver.closed:
            raw.invalidate()  # its server went away: the pool opens a new connection next time
        else:
            driver.autocommit = False
        raw.close()
