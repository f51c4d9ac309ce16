"""A user's own source priority, set from the command line or the API, changes what the pipeline keeps,
and a change makes the sensor ``source_priority_changes`` recompute that user's days."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from dagster import DagsterInstance, PartitionKeyRange, SensorResult, SkipReason, build_sensor_context
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from fastapi.testclient import TestClient
from sqlalchemy.engine import URL

from api.main import create_app
from pipeline import cli
from pipeline.accounts import create_api_key, set_source_priority
from pipeline.definitions import defs
from pipeline.infra.database import create_warehouse_engine, libpq_url
from pipeline.ingest.importer import import_file
from pipeline.samples.partitions import USERS_PARTITION, user_day_partitions
from pipeline.samples.requests import user_days
from pipeline.samples.runner import aggregate_user_days, deduplicate_user_days
from pipeline.samples.sensors import PRIORITY_TAG, source_priority_changes
from pipeline.synthetic.generator import SyntheticConfig, generate
from pipeline.synthetic.load import load_dataset

USER = "anna"
DAY = dt.date(2024, 5, 1)
# The watch and the phone both counted the same ten minutes, differently: one of them must be dropped.
OVERLAP = [
    {"type": "STEPS", "value": 1000, "unit": "count", "sourceDevice": "Anna's Apple Watch"},
    {"type": "STEPS", "value": 800, "unit": "count", "sourceDevice": "Anna\u2019s iPhone"},
]


def daily_steps(url: URL) -> float:
    user_days = pd.DataFrame({"user_id": [USER], "local_date": [DAY]})
    deduplicate_user_days(url, user_days)
    aggregate_user_days(url, user_days, "hourly")
    aggregate_user_days(url, user_days, "daily")
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT value FROM marts.daily WHERE user_id = %s AND local_date = %s AND metric = 'STEPS'", (USER, DAY)
        ).fetchone()
    assert row is not None
    return float(row[0])


def test_the_users_order_decides_which_source_counts(
    warehouse_url: URL, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_warehouse_engine(warehouse_url)
    assert cli.main(["users", "add", USER, "--timezone", "Europe/Amsterdam"]) == 0
    samples = tmp_path / "overlap.ndjson"
    times = {"startDate": "2024-05-01T10:00:00+02:00", "endDate": "2024-05-01T10:10:00+02:00"}
    samples.write_text("\n".join(json.dumps({**s, **times}) for s in OVERLAP) + "\n", encoding="utf-8")
    import_file(engine, samples, USER)

    assert daily_steps(warehouse_url) == 1000.0  # the default: watch above phone

    capsys.readouterr()
    assert cli.main(["users", "priority", USER, "phone"]) == 0
    assert capsys.readouterr().out.strip() == f"{USER}: phone > watch > tablet > wearable > scale_or_app > manual"
    assert daily_steps(warehouse_url) == 800.0  # recomputed: the phone's count wins

    assert cli.main(["users", "priority", USER, "--default"]) == 0
    assert daily_steps(warehouse_url) == 1000.0
    assert cli.main(["users", "priority", USER, "laptop"]) == 2  # not a device class: refused, nothing changed
    assert "unknown device class(es) 'laptop'" in capsys.readouterr().err
    engine.dispose()


def test_the_api_reads_and_sets_only_the_callers_own_order(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    assert cli.main(["users", "add", USER]) == 0 and cli.main(["users", "add", "bob"]) == 0
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        anna, bob = create_api_key(conn, USER), create_api_key(conn, "bob")
    url = "/v1/me/source-priority"
    with TestClient(create_app(engine)) as client:
        assert client.get(url).status_code == 401
        default = client.get(url, headers={"Authorization": f"Bearer {anna}"})
        assert default.json() == {
            "order": ["watch", "phone", "tablet", "wearable", "scale_or_app", "manual"],
            "custom": False,
        }
        changed = client.put(url, json={"order": ["wearable", "phone"]}, headers={"Authorization": f"Bearer {anna}"})
        assert changed.status_code == 200
        assert changed.json() == {
            "order": ["wearable", "phone", "watch", "tablet", "scale_or_app", "manual"],
            "custom": True,
        }
        for bad in ({"order": ["laptop"]}, {"order": []}, {"order": ["phone", "phone"]}):
            assert client.put(url, json=bad, headers={"Authorization": f"Bearer {anna}"}).status_code == 422
        assert client.get(url, headers={"Authorization": f"Bearer {bob}"}).json()["custom"] is False  # bob's own
        reset = client.delete(url, headers={"Authorization": f"Bearer {anna}"})
        assert reset.json() == default.json()
    engine.dispose()


def test_a_changed_priority_makes_the_sensor_recompute_exactly_that_users_days(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    # starting the day before the day dimension does (2024-01-01): those days are not partitions and must be left out
    dataset = generate(SyntheticConfig(users=2, days=3, start=dt.date(2023, 12, 31), seed=4))
    load_dataset(engine, dataset)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(USERS_PARTITION, ["u0001", "u0002"])

        def evaluate(cursor: str | None) -> SensorResult | SkipReason:
            context = build_sensor_context(
                instance=instance, definitions=defs, resources={"warehouse": defs.resources["warehouse"]}, cursor=cursor
            )  # type: ignore[index]
            return source_priority_changes(context)

        assert isinstance(evaluate(None), SkipReason)  # nothing changed yet
        with psycopg.connect(libpq_url(warehouse_url)) as conn:
            set_source_priority(conn, "u0002", ["phone"])
            set_source_priority(conn, "u0002", ["phone"])  # the same order again: not a change
            changes = conn.execute("SELECT count(*) FROM app.source_priority_changes").fetchone()
            assert changes == (1,)
            assert isinstance(evaluate(None), SkipReason)  # too fresh: its transaction's neighbours may still commit
            conn.execute("UPDATE app.source_priority_changes SET changed_at = changed_at - interval '1 minute'")

        result = evaluate(None)
        assert isinstance(result, SensorResult) and result.cursor == "1"
        (request,) = result.run_requests or []
        assert request.tags[PRIORITY_TAG] == "1-1"
        start, end = request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]
        keys = user_day_partitions.get_partition_keys_in_range(
            PartitionKeyRange(start, end), dynamic_partitions_store=instance
        )
        covered = {(k.keys_by_dimension["user"], dt.date.fromisoformat(k.keys_by_dimension["day"])) for k in keys}
        assert covered == set(user_days(engine, ["u0002"], None, None))  # u0002's days with data, one either side
        assert min(day for _, day in covered) == dt.date(2024, 1, 1)  # ... from the first day that is a partition
        assert {user for user, _ in covered} == {"u0002"}
        assert isinstance(evaluate(result.cursor), SkipReason)  # dealt with
    engine.dispose()
