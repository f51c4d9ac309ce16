"""Every combination of metric kinds runs, none at all included: a user-day may hold only discrete readings (glucose
and weight), only sleep, only steps, or nothing, and still gets its core rows and marts."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import Engine

from pipeline.infra.database import psycopg_connection
from pipeline.samples.io import Inputs
from pipeline.samples.process import derive
from pipeline.samples.runner import aggregate_user_days, deduplicate_user_days
from pipeline.transform.compute import compute, prepare_samples
from pipeline.transform.validate import validate
from tests.support.helpers import GLUCOSE_AND_WEIGHT, GLUCOSE_AND_WEIGHT_DAILY, daily_values, land_samples, new_user

DAY = dt.date(2024, 5, 1)
# (metric, value, unit, stage, start, end, source, device class); instants in UTC, the users' home zone
KINDS: dict[str, list[tuple]] = {
    "cumulative": [("STEPS", 1200, "count", None, "2024-05-01 10:00", "2024-05-01 10:30", "Watch", "watch")],
    "discrete": GLUCOSE_AND_WEIGHT,
    "sleep": [  # a night that starts the day before and ends on DAY: 360 + 90 asleep minutes count for DAY
        ("SLEEP_ANALYSIS", 360, "min", "core", "2024-04-30 23:00", "2024-05-01 05:00", "Watch", "watch"),
        ("SLEEP_ANALYSIS", 90, "min", "rem", "2024-05-01 05:00", "2024-05-01 06:30", "Watch", "watch"),
    ],
}
# DAY's daily values: steps summed; glucose averaged, weight the latest (helpers); sleep the night's minutes
DAILY = {
    "cumulative": {"STEPS": 1200.0},
    "discrete": GLUCOSE_AND_WEIGHT_DAILY,
    "sleep": {"SLEEP_ANALYSIS": 450.0},
}
STARTED_ON_DAY = {"cumulative": 1, "discrete": 4, "sleep": 1}  # raw rows whose start falls on DAY
COMBINATIONS = [c for n in range(4) for c in itertools.combinations(KINDS, n)]


def _ids(combination: tuple[str, ...]) -> str:
    return "+".join(combination) or "none"


def _expected(combination: tuple[str, ...]) -> dict[str, float]:
    return {metric: value for kind in combination for metric, value in DAILY[kind].items()}


def raw_inputs(combination: tuple[str, ...], user: str = "u") -> Inputs:
    """What ``load_inputs`` reads for the user's padded window: positions as identities, strings as categoricals."""
    rows = [r for kind in combination for r in KINDS[kind]]
    columns = ["metric", "value", "unit", "stage", "start_utc", "end_utc", "source_name", "device_class"]
    raw = pd.DataFrame(rows, columns=columns).astype({"value": "float64", "stage": object})
    raw = raw.assign(
        user_id=user,
        timezone=None,
        start_utc=pd.to_datetime(raw["start_utc"]).dt.tz_localize("UTC"),
        end_utc=pd.to_datetime(raw["end_utc"]).dt.tz_localize("UTC"),
    )
    for column in ("user_id", "metric", "unit", "stage", "timezone", "source_name", "device_class"):
        raw[column] = raw[column].astype("category")
    raw.insert(0, "identity", range(len(raw)))
    return Inputs(
        raw=raw,
        identities=pa.array([str(uuid.uuid4()) for _ in range(len(raw))], pa.string()),
        users=pd.DataFrame({"user_id": [user], "home_timezone": ["UTC"]}),
        history=pd.DataFrame({"user_id": [], "valid_from": [], "timezone": []}),
        orders={},
    )


@pytest.mark.parametrize("combination", COMBINATIONS, ids=_ids)
def test_compute_gives_each_kinds_daily_values_whatever_else_is_there(combination: tuple[str, ...]) -> None:
    inputs = raw_inputs(combination)
    samples = prepare_samples(validate(inputs.raw).accepted, inputs.users, inputs.history)
    days = pd.DataFrame({"user_id": ["u"], "local_date": [DAY]})
    daily = compute(samples, days).daily
    got = {str(m): float(v) for m, v in zip(daily.get("metric", []), daily.get("value", []), strict=True)}
    assert got == pytest.approx(_expected(combination))


@pytest.mark.parametrize("combination", COMBINATIONS, ids=_ids)
def test_derive_writes_every_core_table_whatever_kinds_are_there(combination: tuple[str, ...]) -> None:
    user_days = pd.DataFrame({"user_id": ["u"], "local_date": [DAY]})
    derived = derive(raw_inputs(combination), user_days)
    tables = {name: table.to_pandas() for name, table in derived.tables.items()}
    stats = tables["core.partition_stats"]
    started = sum(STARTED_ON_DAY[kind] for kind in combination)
    assert stats[["raw_rows", "accepted", "rejected", "exact_duplicates"]].values.tolist() == [[started, started, 0, 0]]
    slices = tables["core.slices"]
    steps = slices.loc[slices["metric"] == "STEPS", "value"].sum() if len(slices) else 0.0
    assert steps == pytest.approx(1200.0 if "cumulative" in combination else 0.0)
    assert len(tables["core.readings"]) == (4 if "discrete" in combination else 0)
    assert tables["core.readings"]["kept"].tolist() == [True] * len(tables["core.readings"])
    sessions = tables["core.sleep_sessions"]
    assert sessions["asleep_minutes"].tolist() == ([450.0] if "sleep" in combination else [])
    assert derived.summary.raw_rows == started


@pytest.mark.parametrize("combination", COMBINATIONS, ids=_ids)
def test_the_database_path_gives_each_kinds_daily_values_whatever_else_is_there(
    engine: Engine, combination: tuple[str, ...]
) -> None:
    user = new_user(engine, "UTC", prefix="kinds")
    land_samples(engine, user, [r for kind in combination for r in KINDS[kind]])
    user_days = pd.DataFrame({"user_id": [user, user], "local_date": [DAY - dt.timedelta(days=1), DAY]})
    summary = deduplicate_user_days(engine.url, user_days)
    assert summary.raw_rows == len([r for kind in combination for r in KINDS[kind]])
    aggregate_user_days(engine.url, user_days, "hourly")
    aggregate_user_days(engine.url, user_days, "daily")
    with psycopg_connection(engine) as conn:
        stats = conn.execute(
            "SELECT raw_rows FROM core.partition_stats WHERE user_id = %s AND local_date = %s", (user, DAY)
        ).fetchone()
    assert daily_values(engine, user, str(DAY)) == pytest.approx(_expected(combination))
    assert stats == (sum(STARTED_ON_DAY[kind] for kind in combination),)
