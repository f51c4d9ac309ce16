"""Loading a synthetic dataset into the warehouse: users, time zone history, devices, then the samples batch by
batch in arrival order (late data lands in later batches, as it would from real devices)."""

from __future__ import annotations

from collections.abc import Callable

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
    batches = dataset.batches
    with psycopg_connection(engine) as conn:
        for number, batch in enumerate(batches):
            batch_id = create_batch(conn, None, "synthetic", f"arrival day {number}")
            counts = land_chunk(conn, batch_id, split_for_landing(batch))
            finish_batch(conn, batch_id, counts)
            total.add(counts)
            if on_progress:
                on_progress(number + 1, len(batches))
    return total
