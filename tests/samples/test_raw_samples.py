"""Where lineage starts: the raw landing as an external asset (raw_samples) upstream of the pipeline, one observation
per finished ingest batch recorded by the batch sensor, and the freshness check on those observations."""

from __future__ import annotations

import time

from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetObservation,
    AssetSelection,
    DagsterInstance,
    MetadataValue,
    RunRequest,
    SensorResult,
    SkipReason,
    build_sensor_context,
    define_asset_job,
)
from sqlalchemy.engine import URL

from pipeline.accounts import create_user, register_device
from pipeline.definitions import ASSET_KEYS, CHECK_KEYS, defs
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.ingest.device_sync import sync_samples
from pipeline.ingest.store import create_held_batch
from pipeline.samples.sensors import new_raw_batches, raw_samples_freshness

RAW = AssetKey("raw_samples")
LAST_UPDATED = "dagster/last_updated_timestamp"


def steps(value: object, start: str, end: str) -> dict[str, object]:
    return {"type": "STEPS", "value": value, "unit": "count", "startDate": start, "endDate": end}


def heart_rate(value: float, at: str) -> dict[str, object]:
    return {"type": "HEART_RATE", "value": value, "unit": "bpm", "startDate": at, "endDate": at}


def test_raw_samples_is_an_external_asset_upstream_of_deduplicated_samples_and_never_in_a_run() -> None:
    graph = defs.resolve_asset_graph()
    raw = graph.get(RAW)
    assert raw.is_external and not raw.is_materializable and not raw.is_executable
    assert graph.get(AssetKey("deduplicated_samples")).parent_keys == {RAW}
    assert graph.get(AssetKey("hourly_aggregates")).parent_keys == {AssetKey("deduplicated_samples")}
    # the range runs (sensors, healthpipe backfill) select the three assets and their checks, never raw_samples
    samples = [k.to_user_string() for k in ASSET_KEYS if not k.to_user_string().startswith("marts/")]  # + dbt marts
    assert samples == ["deduplicated_samples", "hourly_aggregates", "daily_aggregates"]
    assert all(k.asset_key != RAW for k in CHECK_KEYS)
    # ... and nor does the samples group a data engineer selects in the UI
    job = define_asset_job("samples", selection=AssetSelection.groups("samples")).resolve(asset_graph=graph)
    assert RAW not in job.asset_layer.executable_asset_keys
    # its freshness check: a warning when no rows landed for 24 hours (HEALTHPIPE_RAW_FRESHNESS_HOURS)
    (spec,) = [s for s in graph.asset_check_keys if s.asset_key == RAW]
    assert spec.name == "freshness_check"
    check_def = next(c for c in defs.asset_checks or [] if any(k.asset_key == RAW for k in c.check_keys))
    (check_spec,) = check_def.check_specs
    assert check_spec.metadata["dagster/freshness_params"].value["lower_bound_delta_seconds"] == 24 * 3600


def test_each_finished_batch_becomes_one_observation_of_raw_samples(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    with psycopg_connection(engine) as conn:
        create_user(conn, "u0001", "Europe/Paris")
        register_device(conn, "u0001", "watch-7", "watch", "Anna's Watch")
        # batch 1: three samples land, one is rejected (not a number)
        first = sync_samples(
            conn,
            "u0001",
            "watch-7",
            [
                steps(100, "2024-03-06T08:00:00Z", "2024-03-06T08:10:00Z"),
                steps(200, "2024-03-06T09:00:00Z", "2024-03-06T09:10:00Z"),
                heart_rate(61, "2024-03-06T08:05:00Z"),
                steps("many", "2024-03-06T10:00:00Z", "2024-03-06T10:10:00Z"),
            ],
            "k1",
        ).response
        # batch 2: one sample again (a duplicate), one new
        again = [steps(100, "2024-03-06T08:00:00Z", "2024-03-06T08:10:00Z"), heart_rate(70, "2024-03-06T11:00:00Z")]
        second = sync_samples(conn, "u0001", "watch-7", again, "k2").response
        # batch 3: the same two again under a new key: nothing new lands
        third = sync_samples(conn, "u0001", "watch-7", again, "k3").response
        create_held_batch(conn, "u0001", "apple_health", "export.zip")  # batch 4: still running (its import is alive)
        finished = dict(
            conn.execute("SELECT batch_id, finished_at FROM app.ingest_batches WHERE status = 'done'").fetchall()
        )
    assert (first["synced"], first["errors"], first["duplicates"]) == (3, 1, 0)
    assert (second["synced"], second["errors"], second["duplicates"]) == (1, 0, 1)
    assert (third["synced"], third["errors"], third["duplicates"]) == (0, 0, 2)

    resources = {"warehouse": defs.resources["warehouse"]}  # type: ignore[index]
    with DagsterInstance.ephemeral() as instance:
        result = new_raw_batches(build_sensor_context(instance=instance, definitions=defs, resources=resources))
        assert isinstance(result, SensorResult)
        observations = list(result.asset_events)
        assert all(isinstance(o, AssetObservation) and o.asset_key == RAW for o in observations)
        facts = [
            {k: v.value for k, v in o.metadata.items() if k not in ("last_landed_at", LAST_UPDATED)}
            for o in observations
        ]
        assert facts == [
            {"batch_id": 1, "source": "device_sync", "status": "done", "read": 4, "landed": 3, "rejected": 1,
             "duplicates": 0, "skipped": 0},
            {"batch_id": 2, "source": "device_sync", "status": "done", "read": 2, "landed": 1, "rejected": 0,
             "duplicates": 1, "skipped": 0},
            {"batch_id": 3, "source": "device_sync", "status": "done", "read": 2, "landed": 0, "rejected": 0,
             "duplicates": 2, "skipped": 0},
        ]  # fmt: skip
        # last landed: when the latest batch that landed rows finished (batch 3 landed nothing: still batch 2's)
        landed_at = [o.metadata[LAST_UPDATED].value for o in observations]
        assert landed_at == [finished[1].timestamp(), finished[2].timestamp(), finished[2].timestamp()]
        assert [o.metadata["last_landed_at"] for o in observations] == [MetadataValue.timestamp(t) for t in landed_at]
        assert not any("u0001" in str(o) or "watch-7" in str(o) or "Anna" in str(o) for o in observations)

        # the next evaluation observes only what finished since: nothing, then batch 4 once it is done
        later = new_raw_batches(
            build_sensor_context(instance=instance, definitions=defs, resources=resources, cursor=result.cursor)
        )
        assert isinstance(later, SensorResult) and not later.asset_events
        with psycopg_connection(engine) as conn:
            conn.execute("UPDATE app.ingest_batches SET status = 'failed', finished_at = now() WHERE batch_id = 4")
        last = new_raw_batches(
            build_sensor_context(instance=instance, definitions=defs, resources=resources, cursor=later.cursor)
        )
        assert isinstance(last, SensorResult)
        (failed,) = last.asset_events
        assert failed.metadata["batch_id"].value == 4 and failed.metadata["status"].value == "failed"
        assert failed.metadata["source"].value == "apple_health" and failed.metadata["landed"].value == 0
        assert failed.metadata[LAST_UPDATED].value == finished[2].timestamp()
    engine.dispose()


def hours_ago(hours: float) -> float:
    return time.time() - hours * 3600


def observe(instance: DagsterInstance, landed: float) -> None:
    """What the sensor daemon records for one finished batch when rows last landed at ``landed``."""
    instance.report_runless_asset_event(
        AssetObservation(asset_key=RAW, metadata={LAST_UPDATED: MetadataValue.timestamp(landed)})
    )


def test_the_freshness_check_warns_after_a_day_without_landed_rows_and_its_sensor_reevaluates_it() -> None:
    graph = defs.resolve_asset_graph()
    job = define_asset_job("freshness", selection=AssetSelection.checks_for_assets(RAW)).resolve(asset_graph=graph)

    def evaluate(instance: DagsterInstance) -> tuple[bool, AssetCheckSeverity]:
        (evaluation,) = job.execute_in_process(instance=instance).get_asset_check_evaluations()
        return evaluation.passed, evaluation.severity

    def sensor(instance: DagsterInstance) -> RunRequest | SkipReason:
        result = raw_samples_freshness(build_sensor_context(instance=instance, definitions=defs))
        assert isinstance(result, (RunRequest, SkipReason))
        return result

    with DagsterInstance.ephemeral() as instance:
        first = sensor(instance)  # never evaluated
        assert isinstance(first, RunRequest) and [k.name for k in first.asset_check_keys or []] == ["freshness_check"]
        day_old = hours_ago(25)
        observe(instance, day_old)
        assert evaluate(instance) == (False, AssetCheckSeverity.WARN)
        assert isinstance(sensor(instance), SkipReason)  # failed, and nothing landed since
        observe(instance, day_old)  # a batch of duplicates only: rows last landed when they did
        assert isinstance(sensor(instance), SkipReason)
        observe(instance, hours_ago(1))  # new rows landed: evaluate again
        assert isinstance(sensor(instance), RunRequest)
        assert evaluate(instance) == (True, AssetCheckSeverity.WARN)
        assert isinstance(sensor(instance), SkipReason)  # fresh for another 23 hours: nothing to evaluate

    with DagsterInstance.ephemeral() as instance:
        observe(instance, hours_ago(24 - 1 / 3600))  # fresh for one more second
        assert isinstance(sensor(instance), RunRequest)
        assert evaluate(instance) == (True, AssetCheckSeverity.WARN)
        assert isinstance(sensor(instance), SkipReason)
        time.sleep(1.5)
        assert isinstance(sensor(instance), RunRequest)  # it can be overdue now
        assert evaluate(instance) == (False, AssetCheckSeverity.WARN)
