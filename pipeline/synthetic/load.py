"""Loading a synthetic dataset into the warehouse: users, time zone history, devices, then the samples batch by
batch in arrival order (late data lands in later batches, as it would from real devices).

A large dataset is loaded a chunk of users at a time (`load_chunks` over `generate_chunks`): each chunk's arrival
days land in order, then the next chunk's. A user's late data still lands after their on-time data; only the
interleaving of different users' batches differs from one whole-dataset load, and no table depends on it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from pipeline.accounts import DISPLAY_NAME
from pipeline.infra.database import psycopg_connection
from pipeline.ingest.landing import split_for_landing
from pipeline.ingest.store import BatchCounts, create_batch, finish_batch, land_chunk
from pipeline.privacy.fields import device_place, seal
from pipeline.privacy.keyring import keyring_for
from pipeline.synthetic.generator import SyntheticDataset


def load_accounts(engine: Engine, dataset: SyntheticDataset) -> None:
    """Users, zones and devices; names encrypted with each user's key (a loop over users, not samples)."""
    with psycopg_connection(engine) as conn:
        keys = keyring_for(conn)
        users = [
            (user_id, zone, seal(keys.data_key(user_id), DISPLAY_NAME, user_id, name))
            for user_id, zone, name in dataset.users.itertuples(index=False, name=None)
        ]
        devices = [
            (user_id, device_id, device_class, seal(keys.data_key(user_id), device_place(device_id), user_id, name))
            for user_id, device_id, device_class, name in dataset.devices.itertuples(index=False, name=None)
        ]
    with psycopg_connection(engine) as conn, conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            """INSERT INTO app.users (user_id, home_timezone, display_name) VALUES (%s, %s, %s)
                   ON CONFLICT (user_id) DO NOTHING""",
            users,
        )
        cursor.executemany(
            """INSERT INTO app.user_timezones (user_id, valid_from, timezone) VALUES (%s, %s, %s)
                   ON CONFLICT DO NOTHING""",
            [(u, v.to_pydatetime(), z) for u, v, z in dataset.timezone_history.itertuples(index=False)],
        )
        cursor.executemany(
            """INSERT INTO app.devices (user_id, device_id, device_class, name) VALUES (%s, %s, %s, %s)
                   ON CONFLICT DO NOTHING""",
            devices,
        )


def load_dataset(
    engine: Engine, dataset: SyntheticDataset, on_progress: Callable[[int, int], None] | None = None
) -> BatchCounts:
    """Load everything; idempotent (re-loading lands only duplicates). Returns the summed batch counts."""
    load_accounts(engine, dataset)
    total = BatchCounts()
    batches = dataset.samples.groupby("arrival_day", sort=True)
    users = dataset.users["user_id"]
    who = users.iloc[0] if len(users) == 1 else f"{users.iloc[0]}..{users.iloc[-1]}"
    with psycopg_connection(engine) as conn:
        for number, (day, batch) in enumerate(batches):
            batch_id = create_batch(conn, None, "synthetic", f"arrival day {day} of {who}")
            counts = land_chunk(conn, batch_id, split_for_landing(batch.drop(columns="arrival_day")))
            finish_batch(conn, batch_id, counts)
            total.add(counts)
            if on_progress:
                on_progress(number + 1, batches.ngroups)
    return total


def load_chunks(
    engine: Engine,
    chunks: Iterable[SyntheticDataset],
    on_chunk: Callable[[SyntheticDataset, BatchCounts], None] | None = None,
) -> BatchCounts:
    """Load each chunk (`load_dataset`) before the next is made, so only one chunk is in memory at a time.
    ``on_chunk`` gets each chunk with its counts once it has landed. Returns the counts of all chunks."""
    total = BatchCounts()
    for chunk in chunks:
        counts = load_dataset(engine, chunk)
        total.add(counts)
        if on_chunk:
            on_chunk(chunk, counts)
    return total
