"""The samples domain's Dagster definitions: its assets, checks, job and sensors, merged with the other domains' by
``pipeline/definitions.py`` (the shared resources and the executor are the root's)."""

from __future__ import annotations

from dagster import Definitions

from pipeline.samples.assets import daily_aggregates, deduplicated_samples, hourly_aggregates, raw_samples
from pipeline.samples.checks import CHECKS, RAW_FRESHNESS_CHECKS
from pipeline.samples.requests import request_recompute
from pipeline.samples.sensors import new_raw_batches, raw_samples_freshness, recompute_requests, source_priority_changes

defs = Definitions(
    assets=[raw_samples, deduplicated_samples, hourly_aggregates, daily_aggregates],
    asset_checks=[*CHECKS, *RAW_FRESHNESS_CHECKS],
    jobs=[request_recompute],
    sensors=[new_raw_batches, recompute_requests, source_priority_changes, raw_samples_freshness],
)
