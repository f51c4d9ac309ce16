"""What the benchmarks share: a scratch database on the configured server (embedded by default)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import URL

from pipeline.infra.database import libpq_url, warehouse_url
from pipeline.infra.migrations import migrate
from pipeline.infra.settings import Settings
from pipeline.privacy.keystore import KEYSTORE_SUFFIX


@contextmanager
def scratch_database() -> Iterator[URL]:
    """A fresh, migrated database beside the warehouse, dropped afterwards."""
    admin = warehouse_url(Settings())
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    url = admin.set(database=name)
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
            conn.execute(f'DROP DATABASE IF EXISTS "{name}{KEYSTORE_SUFFIX}" WITH (FORCE)'.encode())
