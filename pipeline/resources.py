"""Dagster resources shared by every asset."""

from __future__ import annotations

from functools import cached_property

from dagster import ConfigurableResource
from pydantic import PrivateAttr
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline.infra.database import create_warehouse_engine, warehouse_url
from pipeline.infra.settings import Settings


class WarehouseResource(ConfigurableResource):  # type: ignore[type-arg]
    """The warehouse PostgreSQL. Its URL comes from ``HEALTHPIPE_DATABASE_URL`` (read by `Settings`, never shown in
    the UI); without it, the embedded server under ``HEALTHPIPE_HOME``."""

    _engine: Engine | None = PrivateAttr(default=None)

    @cached_property
    def url(self) -> URL:
        return warehouse_url(Settings())

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_warehouse_engine(self.url)
        return self._engine
