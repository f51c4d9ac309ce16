"""User x local day partitions (DESIGN §7), built in one place.

The ``user`` dimension is dynamic: the sensor adds users as their data lands. Past Dagster's recommended 100,000
partitions per asset, set ``HEALTHPIPE_USER_SHARDS`` (e.g. 256): the user dimension then holds hash shards of users
(``shard-017``), static, and the same assets expand a shard into its users at run time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence

import pandas as pd
from dagster import (
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)

from pipeline.infra.settings import Settings

USERS_PARTITION = "users"
# Read once, when the partitions are defined (Dagster builds them at import): from the environment or a .env file.
_SETTINGS = Settings()
DAY_START = _SETTINGS.partitions_start.isoformat()
USER_SHARDS = _SETTINGS.user_shards


def shard_of(user_id: str, shards: int = USER_SHARDS) -> str:
    digest = hashlib.blake2b(user_id.encode(), digest_size=4).digest()
    return f"shard-{int.from_bytes(digest, 'big') % shards:03d}"


def _user_dimension() -> DynamicPartitionsDefinition | StaticPartitionsDefinition:
    if USER_SHARDS > 0:
        return StaticPartitionsDefinition([f"shard-{i:03d}" for i in range(USER_SHARDS)])
    return DynamicPartitionsDefinition(name=USERS_PARTITION)


user_day_partitions = MultiPartitionsDefinition(
    {"user": _user_dimension(), "day": DailyPartitionsDefinition(start_date=DAY_START, end_offset=1)}
)


def partition_days() -> tuple[dt.date, dt.date]:
    """The first and the last day of the ``day`` dimension: its start, and tomorrow (a day still open somewhere).
    Requests for other days are not partitions and are left out."""
    return dt.date.fromisoformat(DAY_START), dt.date.today() + dt.timedelta(days=1)


def partition_key(user_or_shard: str, day: dt.date | str) -> MultiPartitionKey:
    return MultiPartitionKey({"user": user_or_shard, "day": str(day)})


def keys_to_frame(keys: Iterable[str], users_of_shard: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """(user_id, local_date) pairs of a run's partition keys; shards expand to their users."""
    rows: list[tuple[str, dt.date]] = []
    for key in keys:
        parsed = key if isinstance(key, MultiPartitionKey) else user_day_partitions.get_partition_key_from_str(key)
        parts = parsed.keys_by_dimension
        day = dt.date.fromisoformat(parts["day"])
        members: Sequence[str] = (users_of_shard or {}).get(parts["user"], []) if USER_SHARDS else [parts["user"]]
        rows.extend((user, day) for user in members)
    return pd.DataFrame(rows, columns=["user_id", "local_date"]).drop_duplicates()
