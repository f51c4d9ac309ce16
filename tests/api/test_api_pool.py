"""The API's connection pool: a request holds one connection from its key lookup to its answer, and a burst wider
than the pool waits for a free connection instead of opening (and then closing) connections of its own."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool

from api.main import create_api_engine, create_app
from tests.support.read_api import ReadWorld
from tests.support.read_api import bearer as auth

POOL = 2
BURST = 12  # requests at once, six times the pool


@pytest.fixture
def small_pool(world: ReadWorld) -> Iterator[tuple[Engine, list[int]]]:
    engine = create_api_engine(world.engine.url, POOL)
    opened: list[int] = []
    event.listen(engine, "connect", lambda dbapi_connection, record: opened.append(id(dbapi_connection)))
    yield engine, opened
    engine.dispose()


def test_a_burst_wider_than_the_pool_is_answered_on_the_pools_connections_only(
    world: ReadWorld, small_pool: tuple[Engine, list[int]]
) -> None:
    engine, opened = small_pool
    with TestClient(create_app(engine)) as client, ThreadPoolExecutor(BURST) as threads:
        answers = list(
            threads.map(
                lambda n: (
                    client.get(
                        "/v1/me/summary", params={"date": f"2024-05-0{1 + n % 2}"}, headers=auth(world.user_key)
                    ).status_code
                ),
                range(BURST),
            )
        )
    assert answers == [200] * BURST
    # every request borrowed a connection, and no more than the pool's two were ever opened
    assert 1 <= len(opened) <= POOL
    pool = engine.pool
    assert isinstance(pool, QueuePool) and pool.checkedout() == 0  # all given back
