"""Property tests of device sync: arbitrary batches of valid samples, poison values (NaN, Infinity, 1e400, overlong
integers, NUL, lone surrogates), random keys, deep nesting and wrong types, POSTed to the app on a real database.

Whatever the batch: never a 5xx; a 200 accounts for every sample (synced + duplicates + errors), each one either in
``raw.samples`` or one row of ``raw.quarantine`` of the batch, and a retry replays the same answer."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from api.main import create_app
from pipeline.accounts import create_api_key, register_device
from pipeline.infra.database import psycopg_connection
from tests.support.helpers import new_user

SYNC = "/v1/me/devices/phone-1/sync"

POISON_TEXT = st.sampled_from(["\x00", "\ud800", "a\udfffb", "\ud83d\ude00", "x\\u0000", "\u2028", '"', "\\"])
TEXT = st.one_of(st.text(max_size=8), POISON_TEXT, st.integers(1_000, 1_100).map(lambda n: "t" * n))
NUMBER = st.one_of(
    st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(0, 20_000),
)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBER, TEXT),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(TEXT, children, max_size=3)),
    max_leaves=8,
)
TYPES = {"STEPS": "count", "HEART_RATE": "bpm", "WEIGHT": "kg", "SLEEP_ANALYSIS": "min"}
INSTANTS = [f"2024-05-01T{hour:02d}:{minute:02d}:00{zone}" for hour in (7, 8) for minute in (0, 5) for zone in "Z"]


@st.composite
def valid_samples(draw: st.DrawFn) -> dict[str, Any]:
    metric = draw(st.sampled_from(sorted(TYPES)))
    start = draw(st.sampled_from(INSTANTS))
    sample: dict[str, Any] = {
        "type": metric,
        "value": draw(st.integers(1, 5_000)),
        "unit": TYPES[metric],
        "startDate": start,
        "endDate": start,
    }
    sample.update(draw(st.dictionaries(TEXT, JSON, max_size=2)))  # may overwrite a field with anything
    if draw(st.booleans()):
        sample["metadata"] = draw(JSON)
    return sample


def literal(sample: dict[str, Any], key: str, text: str) -> str:
    """The sample's JSON with one more member written as raw JSON text (a literal json.dumps cannot write)."""
    body = json.dumps(sample)
    member = f"{json.dumps(key)}: {text}"
    return "{" + member + "}" if body == "{}" else body[:-1] + ", " + member + "}"


@st.composite
def sample_texts(draw: st.DrawFn) -> str:
    """One sample's JSON text: valid, valid with a poison literal, nested deep, or any JSON value."""
    kind = draw(st.sampled_from(["valid", "literal", "deep", "any"]))
    if kind == "any":
        return json.dumps(draw(JSON))
    sample = draw(valid_samples())
    if kind == "valid":
        return json.dumps(sample)
    if kind == "deep":
        depth = draw(st.integers(1, 400))
        return literal(sample, draw(st.sampled_from(["value", "metadata", "x"])), "[" * depth + "]" * depth)
    key = draw(st.sampled_from(["value", "metadata", "unit", "x"]))
    return literal(sample, key, draw(st.sampled_from(["NaN", "-Infinity", "1e400", "9" * 5_000, "4" * 4_000])))


def counts(engine: Engine, batch_id: int) -> tuple[int, int]:
    with psycopg_connection(engine) as conn:
        landed = conn.execute("SELECT count(*) FROM raw.samples WHERE batch_id = %s", (batch_id,)).fetchone()
        held = conn.execute("SELECT count(*) FROM raw.quarantine WHERE batch_id = %s", (batch_id,)).fetchone()
    assert landed is not None and held is not None
    return int(str(landed[0])), int(str(held[0]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(sample_texts(), max_size=12))
def test_any_batch_is_answered_accounted_for_and_replayed(engine: Engine, texts: list[str]) -> None:
    user = new_user(engine)
    with psycopg_connection(engine) as conn:
        register_device(conn, user, "phone-1", "phone", "Phone")
        key = create_api_key(conn, user, False)
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Idempotency-Key": str(uuid.uuid4()),
    }
    body = ('{"samples": [' + ", ".join(texts) + "]}").encode()
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        first = client.post(SYNC, content=body, headers=headers)
        assert first.status_code < 500, first.text
        event(f"status {first.status_code}")
        if first.status_code != 200:
            return
        answer = first.json()
        assert answer["synced"] + answer["duplicates"] + answer["errors"] == len(texts)
        landed, held = counts(engine, answer["batchId"])
        event("some landed" if landed else "none landed")
        event("some rejected" if held else "none rejected")
        assert (landed, held) == (answer["synced"], answer["errors"])
        assert len(answer.get("errorDetails", [])) == min(answer["errors"], 100)
        retry = client.post(SYNC, content=body, headers=headers)
        assert (retry.status_code, retry.json(), retry.headers["Idempotent-Replayed"]) == (200, answer, "true")
