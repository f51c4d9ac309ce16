"""What the range runs materialize: every asset downstream of the raw samples that is partitioned by user x day, with
all of its checks. The sensors and ``healthpipe backfill`` target this selection, not a list of assets, so an asset
added downstream (in this domain or another) joins their runs without anyone editing them.

The selection is resolved against the code location's whole asset graph (the sensors: the repository they are
evaluated in; the CLI: ``pipeline.definitions``), once per graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from dagster import AssetCheckKey, AssetKey, AssetSelection
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph, BaseAssetNode

from pipeline.samples.assets import raw_samples
from pipeline.samples.partitions import user_day_partitions

# What the sensors declare they target (shown in the UI); the runs take its user x day part.
DOWNSTREAM_OF_RAW_SAMPLES = AssetSelection.assets(raw_samples.key).downstream(include_self=False)


@dataclass(frozen=True)
class RunTargets:
    """The assets of a range run, upstream first, and their checks."""

    asset_keys: tuple[AssetKey, ...]
    check_keys: tuple[AssetCheckKey, ...]


@lru_cache(maxsize=4)
def range_run_targets(asset_graph: BaseAssetGraph[BaseAssetNode]) -> RunTargets:
    """The user x day assets downstream of ``raw_samples`` in ``asset_graph`` (a range run's partition range names
    user x day partitions, so only assets partitioned that way can be in it), and every check of theirs."""
    downstream = DOWNSTREAM_OF_RAW_SAMPLES.resolve(asset_graph)
    keys = tuple(
        key
        for key in asset_graph.toposorted_asset_keys
        if key in downstream and asset_graph.get(key).partitions_def == user_day_partitions
    )
    checks = AssetSelection.assets(*keys).resolve_checks(asset_graph)
    order = {key: at for at, key in enumerate(keys)}
    return RunTargets(keys, tuple(sorted(checks, key=lambda check: (order[check.asset_key], check.name))))
