"""The dbt models of the analyst marts as Dagster assets (dagster-dbt), partitioned by user x day like the sample
assets and downstream of them (the dbt sources map to ``deduplicated_samples``, ``hourly_aggregates`` and
``daily_aggregates``), so the range runs the sensors and ``healthpipe backfill`` launch carry on through dbt: one
``dbt build`` per run, whatever its size, recomputing only what the run's user-days touch. Each dbt test is an asset
check of the model it tests."""

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from pipeline.infra.settings import Settings
from pipeline.marts.project import (
    RUN_ID_ENV,
    dbt_environment,
    dbt_executable,
    dbt_vars,
    keep_parse,
    prepare_manifest,
    project_dir,
    reuse_parse,
)
from pipeline.marts.scope import advance_run_users, one_build_at_a_time, run_scope
from pipeline.resources import WarehouseResource
from pipeline.samples.assets import BACKFILL, run_user_days
from pipeline.samples.partitions import user_day_partitions

DBT_HOME = Settings().resolved_dagster_home / "dbt"  # target/ (the parsed manifest) and runs/ (each build's artifacts)
MANIFEST = prepare_manifest(DBT_HOME / "target")


class MartsTranslator(DagsterDbtTranslator):
    """Models keep their default keys (``marts/weekly``...) in group ``marts``; sources take the asset keys their
    YAML names (``meta.dagster.asset_key``: the sample assets that write them)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_group_name(dbt_resource_props)
        return "marts"


def dbt_resource() -> DbtCliResource:
    directory = str(project_dir())
    return DbtCliResource(project_dir=directory, profiles_dir=directory, dbt_executable=dbt_executable())


@dbt_assets(
    manifest=MANIFEST,
    name="analyst_marts",
    partitions_def=user_day_partitions,
    backfill_policy=BACKFILL,
    dagster_dbt_translator=MartsTranslator(),
)
def analyst_marts(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource) -> Iterator[Any]:
    user_days = run_user_days(context, warehouse)
    context.log.info(f"dbt build of the marts for {len(user_days)} user-days of {user_days['user_id'].nunique()} users")
    # profiles.yml reads the connection from these, the models the run id; dagster-dbt hands dbt this process's
    # environment (a run is a process of its own)
    run_id = context.run.run_id
    os.environ.update({**dbt_environment(warehouse.url), RUN_ID_ENV: run_id})
    target = DBT_HOME / "runs" / run_id
    reuse_parse(DBT_HOME / "target", target)
    engine = warehouse.engine()
    with run_scope(engine, run_id, user_days), one_build_at_a_time(engine):
        try:
            invocation = dbt.cli(["build", "--vars", json.dumps(dbt_vars())], context=context, target_path=target)
            yield from invocation.stream()
        finally:  # a failed build too: the models built before the failure are committed
            advance_run_users(engine, run_id)
    keep_parse(target, DBT_HOME / "target")
    shutil.rmtree(target, ignore_errors=True)  # kept when the build failed, for its logs
