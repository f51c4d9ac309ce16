"""Reading the inputs of a set of user-days and replacing their outputs atomically.

Through ADBC's PostgreSQL driver: binary COPY both ways between the server and Arrow, with no Python per row.
(psycopg's COPY hands Python one row at a time; at a million rows that loop was a third of the pipeline's time.)
The run's partitions go into a temporary table first, so every statement joins them set-based.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TypeAlias

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from adbc_driver_manager.dbapi import Connection
from sqlalchemy.engine import URL

from pipeline.data_version import advance_sql
from pipeline.infra.database import libpq_url
from pipeline.samples.catalog_sql import catalog_fragments

ArrowConnection: TypeAlias = Connection
PARTITIONS_TABLE = "run_partitions"  # temporary, per connection: the (user_id, local_date) pairs being computed
WORK_MEM = "256MB"
# The dbt marts build (pipeline/marts) holds this advisory lock exclusively while it builds and tests; every
# transaction that replaces partitions of core or marts takes it shared first. So another run's daily write never
# lands between a build's models and its tests (a weekly sum checked against daily rows that changed meanwhile),
# and partition writes of different runs still go on side by side.
MARTS_BUILD_LOCK = 0x4D41_5254  # "MART"
_PLACEHOLDER = re.compile(r"/\* ([a-z][a-z ]*) \*/")
_CATEGORICAL = ("user_id", "metric", "unit", "stage", "timezone", "source_name", "device_class", "source_app")


@cache
def _sql_file(name: str) -> str:
    return (resources.files("pipeline.samples") / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def sql(name: str, fragments: Mapping[str, str] | None = None) -> str:
    """The statement in ``sql/<name>.sql`` with its ``/* name */`` placeholders filled: the catalogue's lists
    (``catalog_sql.py``), and ``fragments`` given by the caller (SQL it composes, never user input: values are bound
    as parameters). A placeholder left unfilled is an error, not a comment."""
    values = {**catalog_fragments(), **(fragments or {})}

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KeyError(f"sql/{name}.sql: nothing fills the placeholder /* {match.group(1)} */")
        return values[match.group(1)]

    return _PLACEHOLDER.sub(fill, _sql_file(name))


@contextmanager
def arrow_connection(url: URL) -> Iterator[ArrowConnection]:
    """An ADBC connection to the warehouse; statements run in a transaction until ``commit``/``rollback``."""
    conn = adbc.connect(libpq_url(url))
    try:
        with conn.cursor() as cursor:  # sorts and hashes of a chunk's million rows stay in memory
            cursor.execute(f"SET work_mem = '{WORK_MEM}'")
        conn.commit()
        yield conn
    finally:
        conn.close()


@contextmanager
def transaction(conn: ArrowConnection) -> Iterator[None]:
    """Commit what the block did, or roll all of it back."""
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def fetch(conn: ArrowConnection, query: str) -> pa.Table:
    with conn.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetch_arrow_table()


def execute(conn: ArrowConnection, statement: str) -> int:
    with conn.cursor() as cursor:
        cursor.execute(statement)
        return int(cursor.rowcount)


def stage_partitions(conn: ArrowConnection, user_days: pd.DataFrame) -> None:
    """Put ``user_days`` (user_id, local_date) into the connection's temporary partitions table."""
    table = pa.table(
        {
            "user_id": pa.array(user_days["user_id"].astype(str).tolist(), pa.string()),
            "local_date": pa.array(pd.to_datetime(user_days["local_date"]).dt.date.tolist(), pa.date32()),
        }
    )
    with conn.cursor() as cursor:
        cursor.adbc_ingest(PARTITIONS_TABLE, table, mode="replace", temporary=True)
    # A temporary table has no statistics until analyzed (autovacuum never sees it): the planner would guess ~2,000
    # rows and pick scans of whole core tables for a 60-row run. Analyzing it takes about a millisecond.
    execute(conn, f"ANALYZE {PARTITIONS_TABLE}")


@dataclass(frozen=True)
class Inputs:
    """``raw``: identity, user_id, metric, value, unit, stage, start_utc, end_utc, timezone, source_name,
    device_class, source_app. Its ``identity`` is the row's position in the load order (user, start, uuid), which
    sorts exactly like the uuid within a user and is cheap to carry; ``identities[position]`` is the sample's uuid."""

    raw: pd.DataFrame
    identities: pa.Array  # uuid per position
    users: pd.DataFrame  # user_id, home_timezone
    history: pd.DataFrame  # user_id, valid_from, timezone
    orders: dict[str, list[str]]  # users' own source priority


def _categorical(column: pa.ChunkedArray) -> pd.Categorical:
    """Dictionary-encode in Arrow, then sort the categories, so that ordering by the column is lexical."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    dictionary = np.array(encoded.dictionary.to_pylist(), dtype=object)
    order = np.argsort(dictionary, kind="stable")
    rank = np.empty(len(order) + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank[-1] = -1  # nulls
    indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return pd.Categorical.from_codes(rank[indices], categories=pd.Index(dictionary[order]))


def _frame(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas with repeated strings as categoricals (a million rows hold a few dozen distinct values)."""
    return pd.DataFrame(
        {
            name: _categorical(table.column(name)) if name in _CATEGORICAL else table.column(name).to_pandas()
            for name in table.column_names
        }
    )


def _in_key_order(table: pa.Table) -> pa.Table:
    """Rows in the primary key's order (user, start, identity): a deterministic input, hence deterministic sums and
    tie-breaks. (Sorting here is several times cheaper than an ORDER BY on the server.)"""
    identity = table.column("identity").combine_chunks()
    keys = pa.table(
        {
            "user_id": table.column("user_id"),
            "start_utc": table.column("start_utc"),
            "identity": identity.storage if isinstance(identity, pa.ExtensionArray) else identity,  # uuid: 16 bytes
        }
    )
    order = pc.sort_indices(
        keys, sort_keys=[("user_id", "ascending"), ("start_utc", "ascending"), ("identity", "ascending")]
    )
    return table.take(order)


def load_window_sql(user_days: pd.DataFrame) -> str:
    """The raw samples of the staged user-days' padded windows (``sql/load_window.sql``), with the first and the last
    of ``user_days`` as date constants: raw.samples is partitioned by month, and constant bounds let the planner
    leave out every month the run does not need."""
    days = pd.to_datetime(pd.Series(user_days["local_date"]))
    first, last = (days.min(), days.max()) if len(days) else (pd.Timestamp("1970-01-01"),) * 2
    return sql("load_window", {"first run day": f"DATE '{first:%Y-%m-%d}'", "last run day": f"DATE '{last:%Y-%m-%d}'"})


def load_inputs(conn: ArrowConnection, user_days: pd.DataFrame) -> Inputs:
    """Stage the partitions, then read the raw samples of their padded windows and the users' zones and orders."""
    stage_partitions(conn, user_days)
    table = _in_key_order(fetch(conn, load_window_sql(user_days)))
    identities = table.column("identity").combine_chunks()
    raw = _frame(table.drop_columns(["identity"]))
    raw.insert(0, "identity", np.arange(len(raw), dtype=np.int64))
    users = fetch(conn, sql("partition_users")).to_pandas()
    history = fetch(conn, sql("partition_timezones")).to_pandas()
    orders = {str(u): list(p) for u, p in zip(users["user_id"], users["source_priority"], strict=True) if p is not None}
    return Inputs(raw, identities, users[["user_id", "home_timezone"]], history, orders)


def replace_partitions(conn: ArrowConnection, table: str, rows: pa.Table | None) -> None:
    """Delete the staged partitions' rows of ``table``, then COPY the new ones. Call inside a transaction: all
    tables of an asset change together or not at all. Waits while a marts build runs (`MARTS_BUILD_LOCK`)."""
    execute(conn, f"SELECT pg_advisory_xact_lock_shared({MARTS_BUILD_LOCK})")
    execute(
        conn,
        f"DELETE FROM {table} t USING {PARTITIONS_TABLE} p WHERE t.user_id = p.user_id AND t.local_date = p.local_date",
    )
    if rows is None or rows.num_rows == 0:
        return
    schema, name = table.split(".")
    with conn.cursor() as cursor:
        cursor.adbc_ingest(name, rows, mode="append", db_schema_name=schema)


def advance_staged_users(conn: ArrowConnection) -> None:
    """Advance the data version of the staged partitions' users (`pipeline.data_version`): the last statement of a
    transaction that replaced their rows, so the read API's ETags and cached answers of those users move with it."""
    execute(conn, advance_sql(f"SELECT user_id FROM {PARTITIONS_TABLE}"))


def _arrow_column(series: pd.Series, identities: pa.Array | None) -> pa.Array:
    """One output column as Arrow in the table's type: categoricals decoded, positions turned back into uuids,
    dates as date32, instants as microseconds."""
    if series.name in ("identity", "matched_identity") and identities is not None:
        positions = pa.array(series.to_numpy(dtype="float64", na_value=np.nan), from_pandas=True).cast(pa.int64())
        return identities.take(positions)
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = pa.array(series.cat.categories.astype(str).tolist(), pa.string())
        codes = pa.array(series.cat.codes.to_numpy(), mask=series.cat.codes.to_numpy() < 0)
        return categories.take(codes)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return pa.array(series.dt.tz_convert("UTC").astype("datetime64[us, UTC]"), pa.timestamp("us", tz="UTC"))
    if pd.api.types.is_datetime64_dtype(series.dtype):
        if series.name == "local_date":
            return pa.array(series.astype("datetime64[s]"), pa.timestamp("s")).cast(pa.date32())
        return pa.array(series.astype("datetime64[us]"), pa.timestamp("us"))
    return pa.array(series, from_pandas=True)  # datetime.date objects become date32


def to_arrow(frame: pd.DataFrame, columns: tuple[str, ...], identities: pa.Array | None = None) -> pa.Table:
    """The ``columns`` of ``frame`` as an Arrow table for ``replace_partitions`` (missing columns become nulls)."""
    arrays = [
        _arrow_column(frame[name], identities) if name in frame else pa.nulls(len(frame), pa.string())
        for name in columns
    ]
    return pa.table(arrays, names=list(columns))
