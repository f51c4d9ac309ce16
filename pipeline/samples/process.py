"""Deduplicating a set of user-days: load -> validate -> deduplicate -> replace their core rows. No Dagster here: the
asset calls it, and so do tests and benchmarks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipeline.ingest.store import Connection
from pipeline.samples.io import load_inputs, replace_partitions
from pipeline.transform.compute import compute, prepare_samples
from pipeline.transform.dedupe import EXACT_KEY
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
        return self.accepted / self.raw_rows if self.raw_rows else 1.0


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self._last, 3)
        self._last = now


def _partition_of(raw: pd.DataFrame, users: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """The local date of each raw row's start, in the zone the row's wall clock is in."""
    zones = resolve_zones(raw, users, history)
    return hour_buckets(raw["start_utc"], zones)["local_date"]


def _in(frame: pd.DataFrame, user_days: pd.DataFrame) -> pd.Series:
    wanted = pd.MultiIndex.from_frame(user_days[["user_id", "local_date"]])
    return pd.Series(pd.MultiIndex.from_arrays([frame["user_id"], frame["local_date"]]).isin(wanted), index=frame.index)


def deduplicate_partitions(conn: Connection, user_days: pd.DataFrame) -> Summary:
    """Recompute the core rows of ``user_days`` (user_id, local_date) from raw samples, atomically."""
    clock = _Clock()
    inputs = load_inputs(conn, user_days)
    clock.lap("load")
    raw = (
        inputs.raw.assign(local_date=_partition_of(inputs.raw, inputs.users, inputs.history))
        if len(inputs.raw)
        else inputs.raw.assign(local_date=pd.Series(dtype=object))
    )
    report = validate(inputs.raw) if len(inputs.raw) else None
    clock.lap("validate")
    accepted = report.accepted if report else inputs.raw.assign(flags=None)
    samples = prepare_samples(accepted, inputs.users, inputs.history, inputs.orders)
    result = compute(samples, user_days, aggregate=False)
    clock.lap("deduplicate")

    partition_by_identity = raw.set_index("identity")["local_date"]
    rejections = report.rejected if report else pd.DataFrame(columns=["identity", "user_id", "metric", "reason"])
    rejections = rejections.assign(local_date=rejections["identity"].map(partition_by_identity))
    rejections = rejections[_in(rejections, user_days)] if len(rejections) else rejections

    stats = _partition_stats(
        raw[_in(raw, user_days)] if len(raw) else raw, rejections, samples, user_days, partition_by_identity
    )
    with conn.transaction():
        replace_partitions(
            conn, "core.rejections", user_days, rejections[["user_id", "local_date", "identity", "metric", "reason"]]
        )
        replace_partitions(conn, "core.slices", user_days, _slices_rows(result.slices))
        replace_partitions(conn, "core.readings", user_days, _readings_rows(result.readings))
        replace_partitions(
            conn,
            "core.sleep_sessions",
            user_days,
            result.sessions.rename(columns={"wake_date": "local_date"})[
                ["user_id", "local_date", "session_start_utc", "session_end_utc", "asleep_minutes"]
            ],
        )
        replace_partitions(
            conn,
            "core.source_totals",
            user_days,
            result.source_totals[["user_id", "local_date", "metric", "source_name", "device_class", "raw", "kept"]],
        )
        replace_partitions(conn, "core.partition_stats", user_days, stats)
    clock.lap("write")

    summary = Summary(
        partitions=len(user_days),
        raw_rows=int(stats["raw_rows"].sum()),
        rejected=int(stats["rejected"].sum()),
        accepted=int(stats["accepted"].sum()),
        exact_duplicates=int(stats["exact_duplicates"].sum()),
        slices=len(result.slices),
        readings=len(result.readings),
        suites=report.suites if report else {},
        seconds=clock.laps,
    )
    totals = result.source_totals
    cumulative = totals[totals["metric"].isin(["STEPS", "DISTANCE", "ACTIVE_ENERGY"])]
    if len(cumulative):
        by_class = cumulative.groupby("device_class")["kept"].sum()
        summary.source_shares = {str(k): round(float(v / by_class.sum()), 4) for k, v in by_class.items()}
    return summary


def _partition_stats(
    raw: pd.DataFrame,
    rejections: pd.DataFrame,
    samples: pd.DataFrame,
    user_days: pd.DataFrame,
    partition_by_identity: pd.Series,
) -> pd.DataFrame:
    keys = ["user_id", "local_date"]
    accepted = samples.assign(local_date=samples["identity"].map(partition_by_identity))
    accepted = accepted[_in(accepted, user_days)] if len(accepted) else accepted
    unique = accepted.drop_duplicates(subset=EXACT_KEY) if len(accepted) else accepted
    counts = [
        raw.groupby(keys).size().rename("raw_rows") if len(raw) else None,
        rejections.groupby(keys).size().rename("rejected") if len(rejections) else None,
        accepted.groupby(keys).size().rename("accepted") if len(accepted) else None,
        unique.groupby(keys).size().rename("unique") if len(unique) else None,
    ]
    frame = user_days.set_index(keys)
    for count in counts:
        if count is not None:
            frame = frame.join(count, how="left")
    frame = frame.reindex(columns=["raw_rows", "rejected", "accepted", "unique"]).fillna(0).astype("int64")
    frame["exact_duplicates"] = frame["accepted"] - frame["unique"]
    return frame.reset_index()[["user_id", "local_date", "raw_rows", "rejected", "accepted", "exact_duplicates"]]


def _slices_rows(slices: pd.DataFrame) -> pd.DataFrame:
    """The winning slices: which source counts for each slice. (What the losers reported is in core.source_totals.)"""
    slices = slices[slices["won"]] if len(slices) else slices
    columns = [
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
    ]
    return slices.reindex(columns=columns)


def _readings_rows(readings: pd.DataFrame) -> pd.DataFrame:
    columns = [
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
    ]
    return readings.reindex(columns=columns)


def _model_params(user_days: pd.DataFrame) -> dict[str, object]:
    from pipeline.catalog import METRICS

    return {
        "users": user_days["user_id"].tolist(),
        "days": user_days["local_date"].tolist(),
        "metrics": list(METRICS),
        "strategies": [m.strategy.value for m in METRICS.values()],
    }


def aggregate_partitions(conn: Connection, user_days: pd.DataFrame, model: str) -> int:
    """Replace the partitions' rows of marts.<model> ("hourly" or "daily") with the SQL model's; returns rows."""
    from pipeline.samples.io import sql

    table = f"marts.{model}"
    with conn.transaction():
        replace_partitions(conn, table, user_days, pd.DataFrame())
        return conn.execute(sql(model).encode(), _model_params(user_days)).rowcount
