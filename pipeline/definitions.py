"""The Dagster code location (loaded by ``workspace.yaml``)."""

from __future__ import annotations

from dagster import Definitions

from pipeline.resources import WarehouseResource

defs = Definitions(
    resources={"warehouse": WarehouseResource()},
)
