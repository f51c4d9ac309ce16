"""The code location: each domain's definitions merged at the root, and the range runs (sensors, ``healthpipe
backfill``) targeting every user x day asset downstream of the raw samples with its checks, so that an asset added
downstream joins them without anyone editing a list."""

from __future__ import annotations

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DagsterInstance,
    Definitions,
    SensorResult,
    asset,
    asset_check,
    build_sensor_context,
)
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph, BaseAssetNode
from sqlalchemy.engine import URL

from pipeline.accounts import create_user, register_device
from pipeline.definitions import ASSET_KEYS, CHECK_KEYS, defs
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.ingest.device_sync import sync_samples
from pipeline.insights.definitions import defs as insights_defs
from pipeline.samples.assets import daily_aggregates
from pipeline.samples.definitions import defs as samples_defs
from pipeline.samples.partitions import user_day_partitions
from pipeline.samples.selection import range_run_targets
from pipeline.samples.sensors import new_raw_batches, recompute_requests, source_priority_changes

RANGE_SENSORS = (new_raw_batches, recompute_requests, source_priority_changes)


def user_day_assets(graph: BaseAssetGraph[BaseAssetNode]) -> set[AssetKey]:
    return {node.key for node in graph.asset_nodes if node.partitions_def == user_day_partitions}


def checks_of(graph: BaseAssetGraph[BaseAssetNode], key: AssetKey) -> set[AssetCheckKey]:
    return {check for check in graph.asset_check_keys if check.asset_key == key}


@asset(partitions_def=user_day_partitions, deps=[daily_aggregates], group_name="insights")
def daily_scores() -> None:
    """A downstream asset of another domain, as insights and scores will be."""


@asset_check(asset=daily_scores, blocking=True)
def scores_within_0_and_100() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


@asset(deps=[daily_aggregates], group_name="insights")
def model_card() -> None:
    """Downstream but not partitioned by user x day: a range run (a user x day partition range) cannot hold it."""


INSIGHTS = Definitions(assets=[daily_scores, model_card], asset_checks=[scores_within_0_and_100])


def test_every_user_day_asset_is_in_the_range_runs_with_its_checks() -> None:
    graph = defs.resolve_asset_graph()
    assets = user_day_assets(graph)
    models = ("weekly", "monthly", "daily_wide", "source_contributions", "cohort_daily", "metrics")
    samples = {AssetKey("deduplicated_samples"), AssetKey("hourly_aggregates"), AssetKey("daily_aggregates")}
    assert assets == samples | {AssetKey(["marts", m]) for m in models}
    assert set(ASSET_KEYS) == assets
    assert [key for key in graph.toposorted_asset_keys if key in assets] == ASSET_KEYS  # upstream first
    for key in assets:
        assert checks_of(graph, key), f"{key.to_user_string()} has no checks"
        assert checks_of(graph, key) <= set(CHECK_KEYS)
    assert {check.asset_key for check in CHECK_KEYS} == assets
    for sensor in RANGE_SENSORS:  # what each sensor declares it targets holds them all
        assert sensor.asset_selection is not None and sensor.asset_selection.resolve(graph) >= assets


def test_the_root_merges_the_domains_definitions() -> None:
    merged = {node.key for node in defs.resolve_asset_graph().asset_nodes}
    domain = {a.key for a in samples_defs.assets or [] if isinstance(a, AssetsDefinition | AssetSpec)}
    assert domain and domain <= merged
    domains = (samples_defs, insights_defs)
    assert {s.name for s in defs.sensors or []} == {s.name for d in domains for s in d.sensors or []}
    assert {s.name for s in defs.schedules or []} == {s.name for s in insights_defs.schedules or []}
    assert set(defs.resources or {}) == {"warehouse", "dbt"}


def test_an_asset_added_downstream_joins_the_range_runs_with_its_checks() -> None:
    extended = Definitions.merge(defs, INSIGHTS)
    targets = range_run_targets(extended.resolve_asset_graph())
    assert set(targets.asset_keys) == {*ASSET_KEYS, daily_scores.key}  # model_card is not partitioned by user x day
    assert targets.asset_keys.index(daily_scores.key) > targets.asset_keys.index(daily_aggregates.key)
    assert set(targets.check_keys) == {*CHECK_KEYS, AssetCheckKey(daily_scores.key, "scores_within_0_and_100")}


def test_the_batch_sensor_launches_the_added_asset_too(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    with psycopg_connection(engine) as conn:
        create_user(conn, "u0001", "Europe/Paris")
        register_device(conn, "u0001", "watch-7", "watch", "Anna's Watch")
        sample = {"type": "STEPS", "value": 100, "unit": "count"}
        sync_samples(
            conn,
            "u0001",
            "watch-7",
            [{**sample, "startDate": "2024-03-06T08:00:00Z", "endDate": "2024-03-06T08:10:00Z"}],
            "k1",
        )
    extended = Definitions.merge(defs, INSIGHTS)
    resources = {"warehouse": defs.resources["warehouse"]}  # type: ignore[index]
    with DagsterInstance.ephemeral() as instance:
        result = new_raw_batches(build_sensor_context(instance=instance, definitions=extended, resources=resources))
    assert isinstance(result, SensorResult)
    (request,) = result.run_requests or []
    assert set(request.asset_selection or []) == {*ASSET_KEYS, daily_scores.key}
    assert AssetCheckKey(daily_scores.key, "scores_within_0_and_100") in (request.asset_check_keys or [])
    engine.dispose()
