"""Removing an erased user from a real Dagster instance on PostgreSQL (schema ``dagster`` of the warehouse, as
``healthpipe up`` sets it): the user's key leaves the ``users`` dimension and their partitions' materializations and
check results leave the event log; another user's stay, including one whose id differs only where a LIKE pattern
would have matched anything (``_``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dagster import AssetCheckEvaluation, AssetKey, AssetMaterialization, DagsterInstance
from pydantic import SecretStr
from sqlalchemy.engine import URL

from pipeline.erasure.dagster_partitions import remove_user, user_partition_keys
from pipeline.infra.dagster_home import dagster_environment, write_dagster_yaml
from pipeline.infra.database import dagster_storage_url, libpq_url
from pipeline.infra.settings import Settings
from pipeline.samples.partitions import USERS_PARTITION

DAILY = AssetKey("daily_aggregates")
ERASED, KEPT, LOOKALIKE = "ann_1", "ben", "annx1"


@pytest.fixture
def instance(
    warehouse_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DagsterInstance, URL]]:
    settings = Settings(database_url=SecretStr(warehouse_url.render_as_string(hide_password=False)))
    storage = dagster_storage_url(settings, warehouse_url)
    home = tmp_path / "dagster_home"
    write_dagster_yaml(home, max_concurrent_runs=1)
    for key, value in dagster_environment(home, storage).items():
        monkeypatch.setenv(key, value)
    with DagsterInstance.get() as opened:
        yield opened, storage


def record(instance: DagsterInstance, user: str, day: str) -> None:
    partition = f"{day}|{user}"
    instance.report_runless_asset_event(AssetMaterialization(asset_key=DAILY, partition=partition))
    instance.report_runless_asset_event(
        AssetCheckEvaluation(asset_key=DAILY, check_name="kept_never_above_raw_sum", passed=True, partition=partition)
    )


def test_the_users_key_and_partition_events_are_removed_and_no_one_elses(
    instance: tuple[DagsterInstance, URL],
) -> None:
    dagster, storage = instance
    dagster.add_dynamic_partitions(USERS_PARTITION, [ERASED, KEPT, LOOKALIKE])
    for user in (ERASED, KEPT, LOOKALIKE):
        for day in ("2024-05-01", "2024-05-02"):
            record(dagster, user, day)
    assert user_partition_keys(storage, ERASED) == (True, 2)
    assert len(events_naming(storage, ERASED)) == 4  # 2 materializations, 2 check evaluations

    removed = remove_user(storage, ERASED)

    assert (removed.partition_keys, removed.events, removed.check_results) == (1, 4, 2)
    assert user_partition_keys(storage, ERASED) == (False, 0)
    assert events_naming(storage, ERASED) == []
    assert sorted(dagster.get_dynamic_partitions(USERS_PARTITION)) == [LOOKALIKE, KEPT]
    assert dagster.get_materialized_partitions(DAILY) == {
        f"{day}|{user}" for user in (KEPT, LOOKALIKE) for day in ("2024-05-01", "2024-05-02")
    }
    assert user_partition_keys(storage, LOOKALIKE) == (True, 2)
    # a second erasure of the same id finds nothing left
    again = remove_user(storage, ERASED)
    assert (again.partition_keys, again.events, again.check_results) == (0, 0, 0)


def test_an_instance_never_started_has_nothing_to_remove(warehouse_url: URL) -> None:
    settings = Settings(database_url=SecretStr(warehouse_url.render_as_string(hide_password=False)))
    removed = remove_user(dagster_storage_url(settings, warehouse_url), ERASED)
    assert (removed.partition_keys, removed.events, removed.check_results) == (0, 0, 0)


def events_naming(storage: URL, user: str) -> list[str]:
    """Dagster event rows whose serialized event names a partition of ``user``."""
    with psycopg.connect(libpq_url(storage)) as conn:
        rows = conn.execute(
            "SELECT dagster_event_type FROM event_logs WHERE strpos(event, %s) > 0 ORDER BY id", (f'|{user}"',)
        ).fetchall()
    return [str(row[0]) for row in rows]
