"""Device sync fuzzed with near-valid samples (real metric names and units, hostile values, dates, zones and
metadata) rather than the arbitrary JSON the schema allows: whatever a client sends, the answer is 200 with every
sample counted (synced + duplicates + errors = samples sent), or a documented 4xx; never a 5xx."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from api.main import create_app
from pipeline.accounts import create_api_key, register_device
from pipeline.catalog import METRICS
from pipeline.infra.database import psycopg_connection
from tests.support.helpers import new_user

METRIC_NAMES = sorted(METRICS)
# Any character, NUL and unpaired surrogates included: a sample holding one is rejected alone, never the batch.
TEXT = st.characters()
UNITS = ["count", "bpm", "kg", "lb", "mg/dL", "mmol/L", "km", "m", "kcal", "kJ", "%", "min", "", "COUNT", "ms"]
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 1e16, 2**63, -(2**63)]),
)
VALUES = st.one_of(NUMBERS, st.text(TEXT, max_size=20), st.none(), st.booleans(), st.lists(st.integers(), max_size=2))
INSTANTS = st.one_of(
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(
        [
            "2024-05-01T08:00:00Z",
            "2024-05-01T08:00:00+14:00",
            "2024-05-01T08:00:00-12:00",
            "2024-03-31T02:30:00+02:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
            "2024-05-01",
            "2024-05-01T08:00:00",
            "yesterday",
            "",
        ]
    ),
    st.text(TEXT, max_size=30),
)
ZONES = st.one_of(st.none(), st.sampled_from(["Europe/Amsterdam", "Pacific/Kiritimati", "+05:45", "Mars/Olympus", ""]))
SAMPLE = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(METRIC_NAMES), st.text(TEXT, max_size=10)), "value": VALUES},
    optional={
        "unit": st.one_of(st.sampled_from(UNITS), st.text(TEXT, max_size=10)),
        "startDate": INSTANTS,
        "endDate": INSTANTS,
        "sourceDevice": st.one_of(
            st.sampled_from(["apple_watch", "iphone", "Anna's Watch"]), st.text(TEXT, max_size=50)
        ),
        "sourceApp": st.text(TEXT, max_size=20),
        "deviceClass": st.one_of(st.sampled_from(["watch", "manual", "toaster"]), st.text(TEXT, max_size=8)),
        "timezone": ZONES,
        "stage": st.one_of(st.sampled_from(["deep", "rem", "awake", "core", "in_bed"]), st.text(TEXT, max_size=8)),
        "metadata": st.dictionaries(
            st.text(TEXT, max_size=8), st.one_of(st.text(TEXT, max_size=8), NUMBERS), max_size=3
        ),
        "userId": st.text(TEXT, max_size=8),
        "id": st.text(TEXT, max_size=8),
    },
)
BODIES = st.lists(st.one_of(SAMPLE, SAMPLE, SAMPLE, st.none(), st.integers(), st.text(TEXT, max_size=5)), max_size=12)


@pytest.fixture(scope="module")
def client_and_key(engine: Engine) -> Any:
    user = new_user(engine, timezone="America/New_York")
    with psycopg_connection(engine) as conn:
        register_device(conn, user, "watch-1", "watch", "Fuzzed watch")
        key = create_api_key(conn, user, False)
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        yield client, key


@given(samples=BODIES)
@settings(
    max_examples=int(os.environ.get("SYNC_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_any_near_valid_batch_is_counted_sample_by_sample_never_a_5xx(client_and_key: Any, samples: list[Any]) -> None:
    client, key = client_and_key
    # Python's JSON writes NaN and Infinity bare, as many clients do; the API reads them
    body = json.dumps({"samples": samples}, allow_nan=True)
    response = client.post(
        "/v1/me/devices/watch-1/sync",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        answer = response.json()
        assert answer["synced"] + answer["duplicates"] + answer["errors"] == len(samples)
