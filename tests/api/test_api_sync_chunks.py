"""A device sync checked and staged a chunk at a time (`SYNC_CHUNK_BYTES`, made small here so that a few samples
span several chunks) is still one batch: counts, duplicates across chunks, error details in the body's order,
rejects kept as sent, and all-or-nothing when a later chunk fails."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from pipeline.infra.database import psycopg_connection
from pipeline.ingest import device_sync
from pipeline.ingest.sync_body import parse_sync_body
from tests.api.test_api_sync_hostile import (
    NUL_AND_SURROGATES,
    SYNC,
    body_of,
    device_owner,
    landed_count,
    quarantined,
    steps,
    text_of,
)

CHUNK_BYTES = 300  # two samples of `steps` a chunk


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(device_sync, "SYNC_CHUNK_BYTES", CHUNK_BYTES)
    with TestClient(create_app(engine)) as test_client:
        yield test_client


def _rows(engine: Engine, user: str) -> tuple[int, int, int, int]:
    """The user's batches, samples, rejects and stored sync requests."""
    with psycopg_connection(engine) as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM app.ingest_batches WHERE user_id = %(u)s),
                      (SELECT count(*) FROM raw.samples WHERE user_id = %(u)s),
                      (SELECT count(*) FROM raw.quarantine WHERE user_id = %(u)s),
                      (SELECT count(*) FROM app.sync_requests WHERE user_id = %(u)s)""",
            {"u": user},
        ).fetchone()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def test_a_body_over_several_chunks_lands_as_one_batch(engine: Engine, client: TestClient) -> None:
    _, headers = device_owner(engine)
    unknown = text_of(steps(2) | {"type": "NOT_A_TYPE"})
    poison = text_of(steps(8, unit="count\u0000"))
    texts = [text_of(steps(m)) for m in range(2)] + [unknown] + [text_of(steps(m)) for m in range(3, 7)]
    texts += [text_of(steps(0)), poison, text_of(steps(9))]  # index 7 repeats index 0, two chunks later
    body = body_of(texts)
    assert len(list(parse_sync_body(body, 100).chunks(CHUNK_BYTES))) == 5

    response = client.post(SYNC, content=body, headers=headers)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["synced"], answer["duplicates"], answer["errors"]) == (7, 1, 2)  # 0, 1, 3..6, 9; 0 again
    assert [(d["index"], d["error"], d["sample"]) for d in answer["errorDetails"]] == [
        (2, "unknown metric type 'NOT_A_TYPE'", unknown),
        (8, NUL_AND_SURROGATES, poison),
    ]
    assert quarantined(engine, answer["batchId"]) == [
        ("unknown metric type 'NOT_A_TYPE'", unknown),
        (NUL_AND_SURROGATES, poison),
    ]
    assert landed_count(engine, answer["batchId"]) == 7
    with psycopg_connection(engine) as conn:
        counts = conn.execute(
            "SELECT read_count, landed_count, duplicate_count, rejected_count FROM app.ingest_batches "
            "WHERE batch_id = %s",
            (answer["batchId"],),
        ).fetchone()
    assert counts == (10, 7, 1, 2)


def test_error_details_stop_at_the_first_hundred_across_chunks(engine: Engine, client: TestClient) -> None:
    _, headers = device_owner(engine)
    texts = [f'{{"type": "NOT_A_TYPE", "n": {i}}}' for i in range(130)]
    answer = client.post(SYNC, content=body_of(texts), headers=headers).json()
    assert answer["errors"] == 130
    assert [d["index"] for d in answer["errorDetails"]] == list(range(100))
    assert [d["sample"] for d in answer["errorDetails"]] == texts[:100]


def test_a_failure_in_a_later_chunk_lands_nothing_and_a_retry_lands_all(
    engine: Engine, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, headers = device_owner(engine)
    headers = headers | {"Idempotency-Key": "chunks-1"}
    texts = [text_of(steps(m)) for m in range(6)] + [text_of(steps(6) | {"type": "NOT_A_TYPE"})]
    staged: list[int] = []
    real = device_sync.stage_chunk

    def fail_on_the_third(conn: Any, chunk: Any) -> None:
        staged.append(chunk.sample_count)
        if len(staged) == 3:
            raise RuntimeError("the connection broke")
        real(conn, chunk)

    monkeypatch.setattr(device_sync, "stage_chunk", fail_on_the_third)
    failed = client.post(SYNC, content=body_of(texts), headers=headers)
    assert failed.status_code == 500 and failed.json()["detail"] == "internal error"
    assert staged == [2, 2, 2]
    assert _rows(engine, user) == (0, 0, 0, 0)

    monkeypatch.setattr(device_sync, "stage_chunk", real)
    retry = client.post(SYNC, content=body_of(texts), headers=headers)
    assert retry.status_code == 200 and "Idempotent-Replayed" not in retry.headers
    assert (retry.json()["synced"], retry.json()["errors"]) == (6, 1)
    assert _rows(engine, user) == (1, 6, 1, 1)
