"""Deduplicated daily totals against the synthetic generator's ground truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.ingest.landing import split_for_landing
from pipeline.synthetic.generator import SyntheticConfig, SyntheticDataset, generate
from pipeline.transform.compute import compute, prepare_samples
from pipeline.transform.dedupe import EXACT_KEY
from pipeline.transform.validate import validate
from tests.support.reference_rule import minute_rule_daily

METRIC_TRUTH = {
    "STEPS": "steps",
    "DISTANCE": "distance_m",
    "ACTIVE_ENERGY": "active_energy_kcal",
    "SLEEP_ANALYSIS": "sleep_minutes",
}


def run_pure_pipeline(dataset: SyntheticDataset) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """landing split -> validate -> zones and priorities -> dedupe and aggregate.
    Returns (daily, naive daily sums, the minute-level reference rule's daily totals)."""
    landed = split_for_landing(dataset.samples.drop(columns="arrival_day")).accepted
    # identity as the database computes it is not needed here: what matters is that retries share one
    key = landed[["user_id", "metric", "source_name", "start_utc", "end_utc", "value", "unit", "stage", "external_id"]]
    landed["identity"] = pd.util.hash_pandas_object(key.astype(str), index=False).astype(str)
    landed = landed.drop_duplicates("identity")  # what the landing's unique key does
    report = validate(landed)
    samples = prepare_samples(report.accepted, dataset.users, dataset.timezone_history)
    days = dataset.truth[["user_id", "local_date"]]
    result = compute(samples, days)
    naive_daily = (
        pd.concat([samples, _local_dates(samples)], axis=1)
        .groupby(["user_id", "metric", "local_date"])["value"]
        .sum()
        .reset_index()
    )
    unique = samples.drop_duplicates(subset=EXACT_KEY)
    reference = minute_rule_daily(unique[unique["metric"].isin(["STEPS", "DISTANCE", "ACTIVE_ENERGY"])])
    return result.daily, naive_daily, reference


def _local_dates(samples: pd.DataFrame) -> pd.Series:
    from pipeline.transform.local_time import hour_buckets

    return hour_buckets(samples["start_utc"], samples["zone"])["local_date"]


Outcome = tuple[SyntheticDataset, pd.DataFrame, pd.DataFrame, pd.Series]


@pytest.fixture(scope="module")
def outcome() -> Outcome:
    dataset = generate(SyntheticConfig(users=8, days=21, start=dt.date(2024, 3, 4), seed=21))
    return (dataset, *run_pure_pipeline(dataset))


@pytest.mark.parametrize("metric", ["STEPS", "DISTANCE", "ACTIVE_ENERGY"])
def test_cumulative_daily_totals_are_within_half_a_percent_of_the_truth(outcome: Outcome, metric: str) -> None:
    dataset, daily, naive, reference = outcome
    truth = dataset.truth.set_index(["user_id", "local_date"])[METRIC_TRUTH[metric]]
    ours = daily[daily["metric"] == metric].set_index(["user_id", "local_date"])["value"].reindex(truth.index).fillna(0)
    rule = reference.xs(metric, level="metric").reindex(truth.index).fillna(0)
    summed = naive[naive["metric"] == metric].set_index(["user_id", "local_date"])["value"].reindex(truth.index)
    positive = truth.where(truth > 0)
    implementation = ((ours - rule).abs() / positive).max()
    inherent = (rule - truth).abs() / positive
    relative = (ours - truth).abs() / positive
    naive_relative = (summed.fillna(0) - truth).abs() / positive
    print(
        f"\n{metric} over {len(truth)} user-days: vs the minute-level rule (implementation error) worst "
        f"{implementation:.2e}; vs the truth (the rule's inherent error) worst {relative.max():.3%}, mean "
        f"{relative.mean():.4%}; naive sum worst {naive_relative.max():.1%}, mean {naive_relative.mean():.1%}"
    )
    assert implementation < 1e-9
    assert inherent.max() == pytest.approx(relative.max(), abs=1e-9)
    assert relative.max() < 0.005
    assert naive_relative.mean() > 0.2  # the naive sum is far off


def test_sleep_follows_the_wake_up_day(outcome: Outcome) -> None:
    dataset, daily, _, _ = outcome
    truth = dataset.truth.set_index(["user_id", "local_date"])["sleep_minutes"]
    ours = daily[daily["metric"] == "SLEEP_ANALYSIS"].set_index(["user_id", "local_date"])["value"]
    ours = ours.reindex(truth.index).fillna(0)
    assert np.abs(ours - truth).max() <= 1.0  # minutes
