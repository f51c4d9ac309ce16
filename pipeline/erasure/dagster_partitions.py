"""Removing an erased user from Dagster's instance storage: their ``user`` partition key, and the asset events and
check results recorded for their user x day partitions.

The key goes through Dagster's own API (``delete_dynamic_partition``). Dagster has no API for the events of some
partitions on PostgreSQL storage (``wipe_asset_partitions`` raises NotImplementedError there), so those rows are
deleted with Dagster's own table definitions, and the assets' cached partition status is cleared for Dagster to
rebuild from what is left. Runs are not deleted: a range run covers many users, and a run records partition ranges,
not data. With ``HEALTHPIPE_USER_SHARDS`` the user dimension holds shards shared by many users: nothing in it is
the user's, and only the events stay out of reach (they name the shard).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as db
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    AssetEventTagsTable,
    AssetKeyTable,
    SqlEventLogStorageTable,
)
from dagster_postgres import PostgresEventLogStorage
from sqlalchemy.engine import URL

from pipeline.samples.partitions import USER_SHARDS, USERS_PARTITION


@dataclass(frozen=True)
class DagsterRemoval:
    partition_keys: int  # the user's key in the dynamic ``users`` dimension (0 or 1)
    events: int  # events of the user's partitions: materializations, observations, check evaluations
    check_results: int  # asset check executions of the user's partitions


def _storage(storage_url: URL) -> PostgresEventLogStorage:
    return PostgresEventLogStorage(storage_url.render_as_string(hide_password=False), should_autocreate_tables=False)


def remove_user(storage_url: URL, user_id: str) -> DagsterRemoval:
    """Remove the user's partition key and partition events; nothing to do on an instance never started (no
    tables yet)."""
    storage = _storage(storage_url)
    try:
        if not storage.has_table(SqlEventLogStorageTable.name):
            return DagsterRemoval(0, 0, 0)
        keys = 0
        if not USER_SHARDS and storage.has_dynamic_partition(USERS_PARTITION, user_id):
            storage.delete_dynamic_partition(USERS_PARTITION, user_id)
            keys = 1
        # a user x day key is "<day>|<user>" (Dagster joins the dimensions' keys in the order of their names)
        suffix = f"|{user_id}"
        with storage.index_connection() as conn:
            removed_checks, check_events = 0, []
            if storage.has_table(AssetCheckExecutionsTable.name):  # their evaluations name the partition in the event
                checks = AssetCheckExecutionsTable.c.partition.endswith(suffix, autoescape=True)
                deleted = conn.execute(
                    AssetCheckExecutionsTable.delete()
                    .where(checks)
                    .returning(AssetCheckExecutionsTable.c.evaluation_event_storage_id)
                ).fetchall()
                removed_checks = len(deleted)
                check_events = [row[0] for row in deleted if row[0] is not None]
            events = db.or_(
                SqlEventLogStorageTable.c.partition.endswith(suffix, autoescape=True),
                SqlEventLogStorageTable.c.id.in_(check_events),
            )
            event_ids = db.select(SqlEventLogStorageTable.c.id).where(events).scalar_subquery()
            conn.execute(AssetEventTagsTable.delete().where(AssetEventTagsTable.c.event_id.in_(event_ids)))
            removed_events = conn.execute(SqlEventLogStorageTable.delete().where(events)).rowcount
            if removed_events:  # the partition status Dagster cached from them: rebuilt on its next read
                conn.execute(AssetKeyTable.update().values(cached_status_data=None))
        return DagsterRemoval(keys, int(removed_events), int(removed_checks))
    finally:
        storage.dispose()


def user_partition_keys(storage_url: URL, user_id: str) -> tuple[bool, int]:
    """Whether the user is a key of the ``users`` dimension, and how many asset events name one of their
    partitions (for tests and for checking an erasure)."""
    storage = _storage(storage_url)
    try:
        if not storage.has_table(SqlEventLogStorageTable.name):
            return False, 0
        member = not USER_SHARDS and storage.has_dynamic_partition(USERS_PARTITION, user_id)
        events = SqlEventLogStorageTable.c.partition.endswith(f"|{user_id}", autoescape=True)
        with storage.index_connection() as conn:
            count = conn.execute(
                db.select(db.func.count()).select_from(SqlEventLogStorageTable).where(events)
            ).scalar_one()
        return bool(member), int(count)
    finally:
        storage.dispose()
