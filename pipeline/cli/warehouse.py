"""The warehouse as the data commands use it."""

from __future__ import annotations

from sqlalchemy import Engine

from pipeline.infra.database import create_warehouse_engine, warehouse_url
from pipeline.infra.migrations import migrate
from pipeline.infra.settings import Settings


def migrated_engine(settings: Settings) -> Engine:
    """The warehouse, its schema brought up to date first (idempotent, and cheap once current): a data command on a
    fresh database must not fail on missing tables."""
    url = warehouse_url(settings)
    migrate(url)
    return create_warehouse_engine(url)
