"""One chunk of user-days: load -> derive (validate, deduplicate, shape the rows) -> replace their core rows; and the
SQL models over a chunk. No Dagster here: ``runner.py`` strings chunks together for the assets, tests and
benchmarks, and ``deduplicate_partitions`` does one chunk in one transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.catalog import CUMULATIVE_METRICS
from pipeline.samples.io import (
    ArrowConnection,
    Inputs,
    advance_staged_users,
    execute,
    load_inputs,
    replace_partitions,
    sql,
    stage_partitions,
    to_arrow,
    transaction,
)
from pipeline.transform.compute import compute, prepare_samples
from pipeline.transform.keys import pairs_isin
from pipeline.transform.local_time import hour_buckets, resolve_zones
from pipeline.transform.validate import validate

CORE_TABLES = (
    "core.rejections",
    "core.slices",
    "core.readings",
    "core.sleep_sessions",
    "core.source_totals",
    "core.partition_stats",
)
REJECTION_COLUMNS = ("user_id", "local_date", "identity", "metric", "reason")
SLICE_COLUMNS = (
    "user_id",
    "local_date",
    "metric",
    "stage",
    "slice_start_utc",
    "slice_end_utc",
    "local_hour",
    "hour_start_utc",
    "value",
    "source_name",
    "device_class",
    "identity",
    "won",
    "flagged",
)  # only the winning slices are stored: which source counts for each slice (the losers are in source_totals)
READING_COLUMNS = (
    "user_id",
    "local_date",
    "metric",
    "start_utc",
    "local_hour",
    "hour_start_utc",
    "value",
    "source_name",
    "device_class",
    "identity",
    "kept",
    "matched_identity",
    "flags",
)
SESSION_COLUMNS = ("user_id", "local_date", "session_start_utc", "session_end_utc", "asleep_minutes", "flagged_samples")
SOURCE_TOTAL_COLUMNS = ("user_id", "local_date", "metric", "source_name", "device_class", "raw", "kept")
STAT_COLUMNS = ("user_id", "local_date", "raw_rows", "rejected", "accepted", "exact_duplicates")


@dataclass
class Summary:
    partitions: int = 0
    raw_rows: int = 0
    rejected: int = 0
    accepted: int = 0
    exact_duplicates: int = 0
    slices: int = 0
    readings: int = 0
    source_shares: dict[str, float] = field(default_factory=dict)  # kept share of cumulative totals per class
    suites: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # where the time went, by phase

    def add(self, other: Summary) -> None:
        """Fold another chunk's summary into this one (shares are re-weighted by raw rows)."""
        weight_self, weight_other = self.raw_rows, other.raw_rows
        shares = {}
        for key in set(self.source_shares) | set(other.source_shares):
            total = weight_self * self.source_shares.get(key, 0.0) + weight_other * other.source_shares.get(key, 0.0)
            shares[key] = round(total / max(weight_self + weight_other, 1), 4)
        self.source_shares = shares
        for name in ("partitions", "raw_rows", "rejected", "accepted", "exact_duplicates", "slices", "readings"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for phase, seconds in other.seconds.items():
            self.seconds[phase] = round(self.seconds.get(phase, 0.0) + seconds, 3)
        for metric, suite in other.suites.items():
            mine = self.suites.setdefault(metric, {"rows": 0, "expectations": suite["expectations"], "failed_rows": {}})
            mine["rows"] += suite["rows"]
            for rule, failed in suite["failed_rows"].items():
                mine["failed_rows"][rule] = mine["failed_rows"].get(rule, 0) + failed

    @property
    def pass_rate(self) -> float:
        return (self.accepted + self.exact_duplicates) / self.raw_rows if self.raw_rows else 1.0


class Clock:
    """Seconds spent per phase (laps add up when a phase repeats)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self._last, 3)
        self._last = now


def _in(frame: pd.DataFrame, user_days: pd.DataFrame) -> np.ndarray:
    return pairs_isin(frame["user_id"], frame["local_date"], user_days["user_id"], user_days["local_date"])


@dataclass(frozen=True)
class Derived:
    """What one chunk of user-days writes: a table per core table, and its summary."""

    tables: dict[str, pa.Table]
    summary: Summary


def derive(inputs: Inputs, user_days: pd.DataFrame, clock: Clock | None = None) -> Derived:
    """Validate, deduplicate and shape the core rows of ``user_days`` from their loaded inputs. Pure: no database."""
    clock = clock or Clock()
    zones = resolve_zones(inputs.raw, inputs.users, inputs.history)  # the zone each wall clock is in
    raw = inputs.raw.assign(zone=zones)
    local_date = hour_buckets(raw["start_utc"], zones)["local_date"]  # a raw row's partition: its start's day
    report = validate(raw)
    clock.lap("validate")
    samples = prepare_samples(report.accepted, inputs.users, inputs.history, inputs.orders)
    result = compute(samples, user_days, aggregate=False)
    clock.lap("deduplicate")

    by_position = local_date.to_numpy()  # positions are the frames' identities
    rejections = report.rejected.assign(local_date=by_position[report.rejected["identity"].to_numpy()])
    rejections = rejections[_in(rejections, user_days)]
    raw = raw.assign(local_date=local_date)
    stats = _partition_stats(
        raw[_in(raw, user_days)], rejections, samples, result.duplicate_identities, user_days, by_position
    )
    ids = inputs.identities
    tables = {
        "core.rejections": to_arrow(rejections, REJECTION_COLUMNS, ids),
        "core.slices": to_arrow(result.slices[result.slices["won"]], SLICE_COLUMNS, ids),
        "core.readings": to_arrow(result.readings, READING_COLUMNS, ids),
        "core.sleep_sessions": to_arrow(
            result.sessions.rename(columns={"wake_date": "local_date"}), SESSION_COLUMNS, ids
        ),
        "core.source_totals": to_arrow(result.source_totals, SOURCE_TOTAL_COLUMNS, ids),
        "core.partition_stats": to_arrow(stats, STAT_COLUMNS, ids),
    }
    clock.lap("shape")
    summary = Summary(
        partitions=len(user_days),
        raw_rows=int(stats["raw_rows"].sum()),
        rejected=int(stats["rejected"].sum()),
        accepted=int(stats["accepted"].sum()),
        exact_duplicates=int(stats["exact_duplicates"].sum()),
        slices=len(result.slices),
        readings=len(result.readings),
        suites=report.suites,
    )
    totals = result.source_totals
    cumulative = totals[totals["metric"].isin(CUMULATIVE_METRICS)]
    if len(cumulative):
        by_class = cumulative.groupby("device_class", observed=True)["kept"].sum()
        summary.source_shares = {str(k): round(float(v / by_class.sum()), 4) for k, v in by_class.items()}
    return Derived(tables, summary)


def write(conn: ArrowConnection, derived: Derived) -> None:
    """Replace the staged partitions' rows of every core table (call inside the chunk's transaction)."""
    for table in CORE_TABLES:
        replace_partitions(conn, table, derived.tables[table])
    advance_staged_users(conn)


def deduplicate_partitions(conn: ArrowConnection, user_days: pd.DataFrame) -> Summary:
    """Recompute the core rows of ``user_days`` (user_id, local_date) from raw samples in one transaction: all of
    them change, or none."""
    clock = Clock()
    with transaction(conn):
        inputs = load_inputs(conn, user_days)
        clock.lap("load")
        derived = derive(inputs, user_days, clock)
        write(conn, derived)
        clock.lap("write")
    derived.summary.seconds = clock.laps
    return derived.summary


def _partition_stats(
    raw: pd.DataFrame,
    rejections: pd.DataFrame,
    samples: pd.DataFrame,
    duplicates: pd.Series,
    user_days: pd.DataFrame,
    local_date: np.ndarray,
) -> pd.DataFrame:
    """Row accounting per partition (by each raw row's start day), three disjoint parts: raw = accepted + rejected +
    exact duplicates. Accepted rows passed validation and are not a copy of another accepted row; they are what the
    deduplication across sources works on."""
    keys = ["user_id", "local_date"]
    accepted = samples.assign(local_date=local_date[samples["identity"].to_numpy()])
    accepted = accepted[_in(accepted, user_days)]
    is_copy = accepted["identity"].isin(duplicates) if len(duplicates) else pd.Series(False, index=accepted.index)
    dropped, accepted = accepted[is_copy], accepted[~is_copy]
    counts = [
        frame.groupby(keys, observed=True).size().rename(name)
        for name, frame in (
            ("raw_rows", raw),
            ("rejected", rejections),
            ("accepted", accepted),
            ("exact_duplicates", dropped),
        )
        if len(frame)
    ]
    frame = user_days.set_index(keys)
    for count in counts:
        frame = frame.join(count, how="left")
    frame = frame.reindex(columns=["raw_rows", "rejected", "accepted", "exact_duplicates"]).fillna(0).astype("int64")
    return frame.reset_index()[["user_id", "local_date", "raw_rows", "rejected", "accepted", "exact_duplicates"]]


def aggregate_partitions(conn: ArrowConnection, user_days: pd.DataFrame, model: str) -> int:
    """Replace the partitions' rows of marts.<model> ("hourly" or "daily") with the SQL model's; returns rows."""
    with transaction(conn):
        stage_partitions(conn, user_days)
        replace_partitions(conn, f"marts.{model}", None)
        rows = execute(conn, sql(model))  # the catalogue's strategies filled in
        advance_staged_users(conn)
        return rows
