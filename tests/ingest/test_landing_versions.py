"""A batch that lands samples advances the data version of the users whose samples it landed (the read API's summary
tells when their data last landed): the known users of a batch of several users, its own user otherwise; a batch of
repeats only, or of unknown users only, advances nobody."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine

from pipeline import data_version
from pipeline.infra.database import psycopg_connection
from pipeline.ingest.landing import split_for_landing
from pipeline.ingest.store import create_batch, finish_batch, land_chunk, sweep_abandoned
from tests.support.helpers import new_user


def _samples(*users: str, minute: int = 0) -> pd.DataFrame:
    start = f"2024-05-01T08:{minute:02d}:00Z"
    rows = [("STEPS", 100 + i, "count", start, start, "Watch", "watch", user) for i, user in enumerate(users)]
    columns = ["metric", "value", "unit", "start", "end", "source_name", "device_class", "user_id"]
    return pd.DataFrame(rows, columns=columns)


def _land(engine: Engine, batch_user: str | None, frame: pd.DataFrame) -> int:
    with psycopg_connection(engine) as conn:
        batch = create_batch(conn, batch_user, "test", None)
        counts = land_chunk(conn, batch, split_for_landing(frame))
        finish_batch(conn, batch, counts)
        return counts.landed


def _versions(engine: Engine, *users: str) -> list[int]:
    with psycopg_connection(engine) as conn:
        return [data_version.current(conn, user) for user in users]


def test_a_landing_batch_advances_exactly_the_known_users_it_landed_samples_of(engine: Engine) -> None:
    anna, ben, cleo = new_user(engine), new_user(engine), new_user(engine)
    stranger = f"nobody_{anna}"
    assert _land(engine, None, _samples(anna, ben, stranger)) == 2  # the stranger's sample is quarantined
    assert _versions(engine, anna, ben, cleo, stranger) == [1, 1, 0, 0]
    assert _land(engine, None, _samples(anna, ben)) == 0  # repeats only: nothing new to read
    assert _versions(engine, anna, ben, cleo) == [1, 1, 0]
    assert _land(engine, anna, _samples(anna, minute=5)) == 1
    assert _versions(engine, anna, ben, cleo) == [2, 1, 0]


def test_an_abandoned_import_advances_the_users_of_what_it_landed(engine: Engine) -> None:
    anna, ben = new_user(engine), new_user(engine)
    with psycopg_connection(engine) as conn:
        batch = create_batch(conn, None, "ndjson", "killed.ndjson")  # running, and no session holds its lock
        land_chunk(conn, batch, split_for_landing(_samples(anna, minute=7)))
        assert batch in sweep_abandoned(conn)
    assert _versions(engine, anna, ben) == [1, 0]
