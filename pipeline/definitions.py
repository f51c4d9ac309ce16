"""The Dagster code location (loaded by ``workspace.yaml``): each domain's definitions merged, with the resources
and the executor every domain shares.

``ASSET_KEYS`` and ``CHECK_KEYS``: what a range run materializes and checks (every user x day asset downstream of the
raw samples, ``pipeline/samples/selection.py``), resolved once against the merged asset graph, for the runs launched
from outside Dagster (``healthpipe backfill``). The sensors resolve the same selection in the code location they
run in.
"""

from __future__ import annotations

from dagster import Definitions

from pipeline.infra.executor import step_executor
from pipeline.infra.settings import Settings
from pipeline.insights.definitions import defs as insights
from pipeline.marts.definitions import defs as marts
from pipeline.resources import WarehouseResource
from pipeline.samples.definitions import defs as samples
from pipeline.samples.selection import range_run_targets

shared = Definitions(
    resources={"warehouse": WarehouseResource()},
    # in the run's own process, or on Celery workers with HEALTHPIPE_EXECUTOR=celery (pipeline/infra/executor.py)
    executor=step_executor(Settings()),
)

defs = Definitions.merge(samples, marts, insights, shared)

_RANGE_RUNS = range_run_targets(defs.resolve_asset_graph())
ASSET_KEYS = list(_RANGE_RUNS.asset_keys)
CHECK_KEYS = list(_RANGE_RUNS.check_keys)
