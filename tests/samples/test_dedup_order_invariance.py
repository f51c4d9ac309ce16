"""Deduplication does not depend on arrival order: the same samples landed in two different orders and batch splits,
into two databases, give the same kept core rows and the same hourly and daily marts (property-based, Hypothesis).

The samples are made to be hard: two users (one in UTC, one in Amsterdam, whose evening samples fall on the next
local day), overlapping step slices from three device classes, exact duplicates, and discrete readings (heart rate,
glucose in both units, weight) whose values and times sit just inside and just outside the matching tolerances.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline.accounts import create_user
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.infra.migrations import migrate
from pipeline.samples.runner import aggregate_user_days, deduplicate_user_days
from tests.support.helpers import land_samples
from tests.support.warehouse_tables import checksums

pytestmark = pytest.mark.slow

DAY = dt.datetime(2024, 5, 1, 16, 0)  # samples from 16:00 UTC: Amsterdam's evening, past midnight there
SOURCES = [("Anna's Watch", "watch"), ("Anna's iPhone", "phone"), ("Fitbit", "wearable"), ("Scale", "scale_or_app")]
# values at, just inside and just outside each metric's value tolerance (1 bpm, 1.8 mg/dL, 0.1 kg)
DISCRETE = {
    "HEART_RATE": ("bpm", [70, 70.5, 71, 71.0001, 72.01, 55]),
    "BLOOD_GLUCOSE": ("mg/dL", [100, 101.8, 101.81, 98.2, 150]),
    "WEIGHT": ("kg", [70.0, 70.1, 70.1001, 69.95, 71.0]),
}


def _instant(seconds: int) -> str:
    return (DAY + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


@st.composite
def sample(draw: st.DrawFn) -> tuple[Any, ...]:
    source, device_class = draw(st.sampled_from(SOURCES))
    # near each other: within 2 h, on 30 s steps with a few odd seconds (tolerances are 30 s to 10 min)
    start = draw(st.integers(0, 240)) * 30 + draw(st.sampled_from([0, 0, 1, 29, 31]))
    if draw(st.booleans()):
        minutes = draw(st.integers(1, 20))
        value = draw(st.integers(0, 400))
        return ("STEPS", value, "count", None, _instant(start), _instant(start + 60 * minutes), source, device_class)
    metric = draw(st.sampled_from(sorted(DISCRETE)))
    unit, values = DISCRETE[metric]
    value = draw(st.sampled_from(values))
    if metric == "BLOOD_GLUCOSE" and draw(st.booleans()):
        unit, value = "mmol/L", round(value / 18.0156, 1)
    return (metric, value, unit, None, _instant(start), _instant(start), source, device_class)


@st.composite
def landings(draw: st.DrawFn) -> tuple[list[tuple[int, tuple[Any, ...]]], list[list[int]], list[list[int]]]:
    """Samples (user index, row) with exact duplicates, and two arrival orders split into batches."""
    distinct = draw(st.lists(st.tuples(st.integers(0, 1), sample()), min_size=2, max_size=25))
    repeats = draw(st.lists(st.sampled_from(distinct), max_size=6))
    rows = distinct + repeats
    orders = []
    for _ in range(2):
        order = draw(st.permutations(range(len(rows))))
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(rows) - 1)), max_size=4)))
        bounds = [0, *cuts, len(rows)]
        orders.append([order[a:b] for a, b in itertools.pairwise(bounds) if a < b])
    return rows, orders[0], orders[1]


def land_in_order(
    engine: Engine, users: list[str], rows: list[tuple[int, tuple[Any, ...]]], batches: list[list[int]]
) -> None:
    for batch in batches:
        for index, user in enumerate(users):
            mine = [rows[i][1] for i in batch if rows[i][0] == index]
            if mine:
                land_samples(engine, user, mine)


def recompute(engine: Engine, users: list[str]) -> None:
    days = [dt.date(2024, 4, 30), dt.date(2024, 5, 1), dt.date(2024, 5, 2)]
    user_days = pd.DataFrame([(u, d) for u in users for d in days], columns=["user_id", "local_date"])
    deduplicate_user_days(engine.url, user_days)
    aggregate_user_days(engine.url, user_days, "hourly")
    aggregate_user_days(engine.url, user_days, "daily")


@pytest.fixture(scope="module")
def two_warehouses(make_database: Callable[[], URL]) -> Any:
    urls = [make_database(), make_database()]
    for url in urls:
        migrate(url)
    engines = [create_warehouse_engine(url) for url in urls]
    yield list(zip(urls, engines, strict=True))
    for engine in engines:
        engine.dispose()


@given(landings())
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_arrival_order_and_batching_do_not_change_kept_rows_or_marts(two_warehouses: Any, landing: Any) -> None:
    rows, first, second = landing
    users = [f"inv_{uuid.uuid4().hex[:10]}", f"inv_{uuid.uuid4().hex[:10]}"]  # the same ids in both warehouses
    fingerprints = []
    for (url, engine), batches in zip(two_warehouses, (first, second), strict=True):
        with psycopg_connection(engine) as conn:
            create_user(conn, users[0], "UTC")
            create_user(conn, users[1], "Europe/Amsterdam")
        land_in_order(engine, users, rows, batches)
        recompute(engine, users)
        fingerprints.append(
            {key: md5 for key, md5 in checksums(url, with_computed_at=False).items() if key[1] in users}
        )
    assert fingerprints[0] == fingerprints[1]
    assert any(table == "marts.daily" for table, _, _ in fingerprints[0])  # something was computed
