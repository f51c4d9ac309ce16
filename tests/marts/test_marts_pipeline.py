"""The marts in the pipeline: one real range run (samples -> hourly -> daily -> every dbt model, dbt tests as asset
checks) over synthetic users whose days cross the EU DST change and a month end, their weekly and monthly rows
against the ground truth and an independent roll-up of marts.daily; a late batch rebuilds only the user-weeks,
user-months and days it touches, and a full refresh gives the same tables as the incremental runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline.catalog import METRICS, Strategy
from pipeline.infra.database import create_warehouse_engine
from pipeline.infra.migrations import migrate
from pipeline.synthetic.generator import SyntheticConfig, SyntheticDataset, generate
from pipeline.synthetic.load import load_dataset
from tests.support.marts import table
from tests.support.range_run import execute_range

FIRST, DAYS = dt.date(2024, 3, 27), 8  # 27 Mar .. 3 Apr: the EU DST change (31 Mar) and the month end
MODELS = ("weekly", "monthly", "daily_wide", "source_contributions", "cohort_daily", "metrics")


@pytest.fixture(scope="module")
def ranged(make_database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, SyntheticDataset, list]]:  # type: ignore[no-untyped-def, type-arg]
    url: URL = make_database()
    migrate(url)
    engine = create_warehouse_engine(url)
    dataset = generate(SyntheticConfig(users=3, days=DAYS, start=FIRST, seed=11))
    load_dataset(engine, dataset)
    users = dataset.users["user_id"].tolist()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEALTHPIPE_DATABASE_URL", url.render_as_string(hide_password=False))
        results = execute_range(users, FIRST, FIRST + dt.timedelta(days=DAYS - 1), marts=True)
    yield engine, dataset, results
    engine.dispose()


def test_one_range_run_materializes_every_user_day_of_every_asset_and_runs_the_dbt_tests_as_checks(
    ranged: tuple[Engine, SyntheticDataset, list],  # type: ignore[type-arg]
) -> None:
    _, dataset, results = ranged
    (result,) = results
    assert result.success
    materialized: dict[AssetKey, set[str]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        materialized.setdefault(materialization.asset_key, set()).add(str(materialization.partition))
    user_days = len(dataset.users) * DAYS
    expected = ["deduplicated_samples", "hourly_aggregates", "daily_aggregates"] + [f"marts/{m}" for m in MODELS]
    assert {key.to_user_string(): len(keys) for key, keys in materialized.items()} == dict.fromkeys(expected, user_days)
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    dbt_checks = {key: passed for key, passed in checks.items() if key[0].startswith("marts/")}
    assert ("marts/weekly", "weekly_sums_match_daily") in dbt_checks
    assert ("marts/weekly", "weeks_within_data_range") in dbt_checks
    assert ("marts/weekly", "unique_combination_weekly_user_id__metric__week_start") in dbt_checks
    assert ("marts/metrics", "accepted_values_metrics_aggregation__sum__average__latest") in dbt_checks
    assert {model for model, _ in dbt_checks} == {f"marts/{m}" for m in MODELS}
    assert all(dbt_checks.values()), [key for key, passed in dbt_checks.items() if not passed]
    assert len(dbt_checks) >= 50
    events = {e.event_type for e in result.all_events}
    assert DagsterEventType.STEP_FAILURE not in events


def independent_rollup(daily: pd.DataFrame, period: str) -> pd.DataFrame:
    """marts.daily rolled up in pandas: weeks (W-SUN periods start on Mondays) or months."""
    frame = daily.copy()
    frame["start"] = (
        pd.to_datetime(frame["local_date"]).dt.to_period("W-SUN" if period == "week" else "M").dt.start_time.dt.date
    )
    grouped = frame.groupby(["user_id", "metric", "start"])
    out = grouped.agg(
        sum=("sum", "sum"),
        count=("count", "sum"),
        min=("min", "min"),
        max=("max", "max"),
        days=("local_date", "nunique"),
    )
    strategy = {name: m.strategy for name, m in METRICS.items()}
    frame["unflagged"] = frame["flagged_count"] < frame["count"]  # the latest unflagged day wins, as in SQL
    latest = frame.sort_values(["unflagged", "latest_at", "local_date"]).groupby(["user_id", "metric", "start"])
    latest = latest["latest_value"].last()
    out["latest_value"] = latest
    aggregation = out.index.get_level_values("metric").map(strategy)
    out["value"] = out["latest_value"].where(aggregation == Strategy.LATEST, out["sum"])
    out["value"] = out["value"].where(aggregation != Strategy.AVERAGE, out["sum"] / out["count"])
    return out


def test_weekly_and_monthly_match_the_ground_truth_and_an_independent_rollup(
    ranged: tuple[Engine, SyntheticDataset, list],  # type: ignore[type-arg]
) -> None:
    engine, dataset, _ = ranged
    daily = table(engine, "marts.daily")
    for name, start, period in [("marts.weekly", "week_start", "week"), ("marts.monthly", "month_start", "month")]:
        ours = table(engine, name).set_index(["user_id", "metric", start]).sort_index()
        ours.index = ours.index.set_names(["user_id", "metric", "start"])
        theirs = independent_rollup(daily, period).sort_index()
        assert ours.index.equals(theirs.index), name
        for column in ("sum", "value", "min", "max"):
            pd.testing.assert_series_equal(ours[column], theirs[column], check_names=False, rtol=1e-12)
        assert (ours["count"] == theirs["count"]).all() and (ours["days_with_data"] == theirs["days"]).all()
        # the ground truth: what the devices saw, per local day, summed over the period
        truth = dataset.truth.copy()
        truth["start"] = (
            pd.to_datetime(truth["local_date"]).dt.to_period("W-SUN" if period == "week" else "M").dt.start_time.dt.date
        )
        truth = truth.groupby(["user_id", "start"])[["steps", "sleep_minutes"]].sum()
        steps = ours.xs("STEPS", level="metric")["value"]
        relative = (steps.reindex(truth.index) - truth["steps"]).abs() / truth["steps"]
        assert relative.max() < 0.005, name
        sleep = ours.xs("SLEEP_ANALYSIS", level="metric")["value"].reindex(truth.index).fillna(0)
        assert (sleep - truth["sleep_minutes"]).abs().max() <= DAYS, name  # within a minute a day
    weeks = sorted(table(engine, "marts.weekly")["week_start"].unique())
    assert weeks == [dt.date(2024, 3, 25), dt.date(2024, 4, 1)]  # the DST week and the next
