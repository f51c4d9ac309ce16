"""The marts domain's Dagster definitions: the dbt models (and their tests as checks) with the dbt resource."""

from __future__ import annotations

from dagster import Definitions

from pipeline.marts.assets import analyst_marts, dbt_resource

defs = Definitions(assets=[analyst_marts], resources={"dbt": dbt_resource()})
