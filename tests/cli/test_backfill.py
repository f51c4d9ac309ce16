"""``healthpipe backfill``: range runs launched through Dagster's GraphQL API.

The GraphQL documents go through the installed dagster-graphql schema against this project's code location, loaded
from ``workspace.yaml`` in a code server process, exactly as the webserver serves them; only the HTTP hop is left
out (the queries run in-process). Each launched run executes in its own run worker process (Dagster's default run
launcher), as under ``healthpipe up`` (there a queue in front of it lets two run at once), and really writes the
warehouse tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, instance_for_test
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster_graphql.test.utils import define_out_of_process_workspace, execute_dagster_graphql
from sqlalchemy.engine import URL

from pipeline import backfill, cli
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.samples.partitions import USERS_PARTITION
from pipeline.samples.requests import user_days
from pipeline.synthetic.generator import SyntheticConfig, generate
from pipeline.synthetic.load import load_dataset
from tests.support.helpers import GLUCOSE_AND_WEIGHT, GLUCOSE_AND_WEIGHT_DAILY, daily_values, land_samples, new_user

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dagster(warehouse_url: URL) -> Iterator[tuple[DagsterInstance, WorkspaceProcessContext]]:
    overrides = {
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
        "run_launcher": {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"},
    }
    with (
        instance_for_test(overrides=overrides) as instance,
        define_out_of_process_workspace(str(ROOT / "workspace.yaml"), None, instance) as context,
    ):
        yield instance, context


def in_process(workspace: WorkspaceProcessContext) -> backfill.GraphQL:
    def post(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        # a request context per query, as the webserver makes one per HTTP request
        return dict(execute_dagster_graphql(workspace.create_request_context(), query, variables).data)

    return post


def partition_stats(url: URL) -> list[tuple[str, str]]:
    engine = create_warehouse_engine(url)
    with psycopg_connection(engine) as conn:
        rows = conn.execute("SELECT user_id, local_date::text FROM core.partition_stats ORDER BY 1, 2").fetchall()
    engine.dispose()
    return [(str(u), str(d)) for u, d in rows]


@pytest.mark.slow
def test_backfill_launches_one_run_per_rectangle_and_waits_for_them(
    warehouse_url: URL, dagster: tuple[DagsterInstance, WorkspaceProcessContext]
) -> None:
    instance, context = dagster
    engine = create_warehouse_engine(warehouse_url)
    load_dataset(engine, generate(SyntheticConfig(users=3, days=2, start=dt.date(2024, 3, 6), seed=5)))
    instance.add_dynamic_partitions(USERS_PARTITION, ["u0002"])  # known before; the others are added after it
    pairs = user_days(engine, ["u0001", "u0002", "u0003"], dt.date(2024, 3, 6), dt.date(2024, 3, 7))
    engine.dispose()
    graphql = in_process(context)

    launched = backfill.launch(graphql, pairs, max_user_days=4)  # 3 users x 2 days, at most 4 a run: 2 runs

    assert instance.get_dynamic_partitions(USERS_PARTITION) == ["u0002", "u0001", "u0003"]
    assert [(r.keys, r.first_day, r.last_day) for r in launched.rectangles] == [
        (("u0002", "u0001"), dt.date(2024, 3, 6), dt.date(2024, 3, 7)),
        (("u0003",), dt.date(2024, 3, 6), dt.date(2024, 3, 7)),
    ]
    runs = [instance.get_run_by_id(run_id) for run_id in launched.run_ids]
    for run, rectangle in zip(runs, launched.rectangles, strict=True):
        assert run is not None and run.job_name == "__ASSET_JOB"
        assert run.tags[backfill.BACKFILL_TAG] == launched.backfill_id
        assert {k: run.tags[k] for k in rectangle.tags()} == rectangle.tags()
        selected = {k.to_user_string() for k in run.asset_selection or []}
        assert selected == {k.to_user_string() for k in backfill.ASSET_KEYS}  # the samples' and the dbt marts
        assert {"deduplicated_samples", "hourly_aggregates", "daily_aggregates", "marts/weekly"} <= selected
        # the range-run checks (8 of the samples, the dbt tests); not the freshness check of raw_samples
        assert len(run.asset_check_selection or []) == len(backfill.CHECK_KEYS) > 8
    lines: list[str] = []
    final = backfill.wait(graphql, launched.run_ids, lines.append, poll_seconds=0.5, timeout_seconds=300)
    assert final == dict.fromkeys(launched.run_ids, "SUCCESS")
    assert lines[-1].endswith("2 run(s): 2 success")
    assert partition_stats(warehouse_url) == [
        (u, d) for u in ("u0001", "u0002", "u0003") for d in ("2024-03-06", "2024-03-07")
    ]
    materialized = instance.get_materialized_partitions(backfill.ASSET_KEYS[-1])
    assert len(materialized) == 6


@pytest.mark.slow
def test_the_command_exits_non_zero_when_a_run_fails_and_zero_once_they_succeed(
    warehouse_url: URL,
    dagster: tuple[DagsterInstance, WorkspaceProcessContext],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, context = dagster
    engine = create_warehouse_engine(warehouse_url)
    load_dataset(engine, generate(SyntheticConfig(users=2, days=2, start=dt.date(2024, 3, 6), seed=6)))
    monkeypatch.setattr(backfill, "http_graphql", lambda base_url: in_process(context))
    with psycopg_connection(engine) as conn:  # a real failure: the assets cannot write their last core table
        conn.execute("ALTER TABLE core.partition_stats RENAME TO partition_stats_away")

    assert cli.main(["backfill", "--wait", "--from", "2024-03-06", "--to", "2024-03-07"]) == 1
    out, err = capsys.readouterr()
    assert "4 user-days of 2 user(s) in 1 run(s)" in out and "run(s): 1 failure" in out
    assert "1 run(s) did not succeed" in err

    with psycopg_connection(engine) as conn:
        conn.execute("ALTER TABLE core.partition_stats_away RENAME TO partition_stats")
    assert cli.main(["backfill", "--wait", "--users", "u0002,u0001", "--from", "2024-03-06", "--to", "2024-03-07"]) == 0
    out, _ = capsys.readouterr()
    assert "1 run(s): 1 success" in out
    assert partition_stats(warehouse_url) == [(u, d) for u in ("u0001", "u0002") for d in ("2024-03-06", "2024-03-07")]
    assert cli.main(["backfill", "--users", "nobody"]) == 2
    assert "no raw samples for user(s) nobody" in capsys.readouterr().err
    engine.dispose()


@pytest.mark.slow
def test_a_user_with_only_glucose_and_weight_is_computed_through_the_command(
    warehouse_url: URL,
    dagster: tuple[DagsterInstance, WorkspaceProcessContext],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, context = dagster
    engine = create_warehouse_engine(warehouse_url)
    user = new_user(engine, "UTC", prefix="glucose")
    land_samples(engine, user, GLUCOSE_AND_WEIGHT)
    monkeypatch.setattr(backfill, "http_graphql", lambda base_url: in_process(context))

    assert cli.main(["backfill", "--wait", "--users", user]) == 0
    assert "1 run(s): 1 success" in capsys.readouterr().out
    assert partition_stats(warehouse_url) == [(user, d) for d in ("2024-04-30", "2024-05-01", "2024-05-02")]
    assert daily_values(engine, user, "2024-05-01") == GLUCOSE_AND_WEIGHT_DAILY
    engine.dispose()
