"""The Dagster code location (loaded by ``workspace.yaml``)."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from pipeline.resources import WarehouseResource
from pipeline.samples.assets import daily_aggregates, deduplicated_samples, hourly_aggregates, raw_samples
from pipeline.samples.checks import CHECKS, RAW_FRESHNESS_CHECKS
from pipeline.samples.requests import request_recompute
from pipeline.samples.sensors import (
    new_raw_batches,
    raw_samples_freshness,
    recompute_requests,
    source_priority_changes,
)

defs = Definitions(
    assets=[raw_samples, deduplicated_samples, hourly_aggregates, daily_aggregates],
    asset_checks=[*CHECKS, *RAW_FRESHNESS_CHECKS],
    jobs=[request_recompute],
    sensors=[new_raw_batches, recompute_requests, source_priority_changes, raw_samples_freshness],
    resources={"warehouse": WarehouseResource()},
    # Steps run in the run's own process: each step already handles a whole set of partitions, and a process per
    # step would re-import pandas, Dagster and Great Expectations (seconds) nine times per run.
    executor=in_process_executor,
)
