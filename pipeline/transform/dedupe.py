"""Deduplication rules of DESIGN §5 over DataFrames of validated samples. Pure: no database, no Dagster.

Input columns (canonical units): user_id, metric, value, stage, start_utc, end_utc (tz-aware UTC), source_name,
device_class, identity, priority (0 = the user's most trusted device class), zone (for local time); optionally
source_app (the app that wrote the sample, when its source name is shared by several).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.catalog import ASLEEP_STAGES, GENERIC_ASLEEP_STAGE, IN_BED_STAGE, METRICS, Kind
from pipeline.devices import DEFAULT_PRIORITY, effective_priority
from pipeline.transform.keys import group_codes
from pipeline.transform.sweep import sweep

EXACT_KEY = ["user_id", "metric", "source_name", "source_app", "start_utc", "end_utc", "value", "stage"]
SLEEP_SESSION_GAP = pd.Timedelta(hours=2)
_VALUE_SLACK = 1e-9  # binary floating point: 70.1 - 70.0 is 0.0999999999999943, 1.1 - 1.0 is 0.1000000000000001


def priorities(
    device_class: pd.Series, user_id: pd.Series, user_orders: dict[str, list[str]] | None = None
) -> pd.Series:
    """0 for the most trusted class; a user's own order (app.users.source_priority) replaces the default."""
    default = {c.value: i for i, c in enumerate(DEFAULT_PRIORITY)}
    result = device_class.map(default).astype("int64")
    for user, order in (user_orders or {}).items():
        ranks = {c.value: i for i, c in enumerate(effective_priority(order))}
        mine = user_id == user
        result[mine] = device_class[mine].map(ranks).astype("int64")
    return result


def drop_exact_duplicates(samples: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Rule 1: same user, type, source (name and app), start, end, value (and stage) is one sample; the lowest
    identity stays. Two apps' identical readings are not copies: rule 4 matches them. Returns the kept rows and the
    identities of the dropped ones."""
    ordered = samples.sort_values("identity", kind="stable")
    repeated = ordered.reindex(columns=EXACT_KEY).duplicated(keep="first")  # no source_app column: no apps
    return ordered[~repeated].sort_index(), ordered.loc[repeated, "identity"]


def _ranks(frame: pd.DataFrame, extra: list[str] | None = None) -> np.ndarray:
    """A unique rank per row, lower is better: priority, then source name, then ``extra``, start, identity, so that
    the result never depends on input order."""
    keys = ["priority", "source_name", *(extra or []), "start_utc", "identity"]
    order = frame.sort_values(keys, kind="stable").index
    rank = pd.Series(np.arange(len(frame), dtype=np.int64), index=order)
    return rank.reindex(frame.index).to_numpy()


def _ms(instants: pd.Series, origin: pd.Timestamp) -> np.ndarray:
    return ((instants - origin) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.int64)


@dataclass(frozen=True)
class Slices:
    """One row per (sample, slice) pair; ``won`` marks the contributions that count."""

    rows: pd.DataFrame  # user_id, metric, stage, slice_start_utc, slice_end_utc, value, source_name, device_class,
    # identity, zone, won, flagged (the sample carries a plausibility flag)


_SLICE_COLUMNS = (
    "user_id",
    "metric",
    "stage",
    "slice_start_utc",
    "slice_end_utc",
    "value",
    "source_name",
    "device_class",
    "identity",
    "zone",
    "won",
    "flagged",
)


def sweep_frame(samples: pd.DataFrame, rank_extra: list[str] | None = None, layer: pd.Series | None = None) -> Slices:
    """Run the priority sweep for every (user, metric[, layer]) group of ``samples`` at once."""
    if samples.empty:
        return Slices(pd.DataFrame(columns=[*_SLICE_COLUMNS]))
    frame = samples.reset_index(drop=True)
    keys = [frame["user_id"], frame["metric"]] + ([layer.reset_index(drop=True)] if layer is not None else [])
    group = group_codes(*keys)
    origin = frame["start_utc"].min().floor("15min")
    result = sweep(
        group,
        _ms(frame["start_utc"], origin),
        _ms(frame["end_utc"], origin),
        _ranks(frame, rank_extra),
        frame["value"].to_numpy(dtype=float),
    )
    carried = ["user_id", "metric", "stage", "source_name", "device_class", "identity", "zone"]
    taken = frame.reindex(columns=carried).take(result.sample).reset_index(drop=True)  # categoricals stay codes
    flagged = frame["flagged"].to_numpy(dtype=bool) if "flagged" in frame else np.zeros(len(frame), dtype=bool)
    rows = taken.assign(
        slice_start_utc=origin + pd.to_timedelta(result.slice_start, unit="ms"),
        slice_end_utc=origin + pd.to_timedelta(result.slice_end, unit="ms"),
        value=result.share,
        won=result.won,
        flagged=flagged[result.sample],
    )
    return Slices(rows[list(_SLICE_COLUMNS)])


def deduplicate_cumulative(samples: pd.DataFrame) -> Slices:
    """Rule 3 for steps, distance and active energy."""
    return sweep_frame(samples)


def deduplicate_sleep(samples: pd.DataFrame) -> Slices:
    """Rule 5: the sweep per source priority, with two layers that do not compete: "in bed" intervals, and sleep
    stages (asleep, core, deep, rem, awake). Within one source a detailed stage wins over a generic "asleep" wrapper.
    A slice's value is its length in minutes."""
    frame = samples.assign(
        value=(samples["end_utc"] - samples["start_utc"]).dt.total_seconds() / 60.0,
        generic=samples["stage"].isin([GENERIC_ASLEEP_STAGE]).astype(int),
    )
    layer = (frame["stage"] == IN_BED_STAGE).map({True: IN_BED_STAGE, False: "stages"})
    return sweep_frame(frame, rank_extra=["generic"], layer=layer)


def deduplicate_discrete(samples: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Rule 4: a reading within the metric's time tolerance of a reading from a better-ranked source, whose value
    agrees with it within the metric's value tolerance, is the same measurement and is dropped (matched against every
    better-ranked reading, so a chain of sources collapses to the best one); all other readings are kept, different
    values close in time included. Of several agreeing readings the nearest in time is the match (then the nearest
    value, the better source, the lower identity). Returns (kept readings, the identity each dropped reading
    matched)."""
    if samples.empty:
        return samples, pd.Series(dtype=object)
    frame = samples.reset_index(drop=True)
    metric = frame["metric"].astype(object)
    milliseconds = {m.name: round(m.match_tolerance_seconds * 1000) for m in METRICS.values()}
    tolerance_ms = metric.map(milliseconds).to_numpy(dtype=np.int64)
    tolerance_value = metric.map({m.name: m.match_value_tolerance for m in METRICS.values()}).to_numpy(dtype=float)
    value = frame["value"].to_numpy(dtype=float)
    identity_rank = np.empty(len(frame), dtype=np.int64)  # last tie-break: never the input order
    identity_rank[np.argsort(frame["identity"].to_numpy(), kind="stable")] = np.arange(len(frame))
    group = group_codes(frame["user_id"], frame["metric"])
    origin = frame["start_utc"].min()
    t = _ms(frame["start_utc"], origin)
    # source level within the group: 0 for the best (priority, source name, source app); two apps writing under one
    # source name are two levels, so their identical readings match (missing apps rank last)
    app = frame["source_app"] if "source_app" in frame else pd.Series(pd.NA, index=frame.index, dtype="string")
    level = frame.groupby([group, frame["priority"], frame["source_name"], app], sort=True, dropna=False).ngroup()
    level = level - level.groupby(group).transform("min")
    key = (group << 41) + t
    dropped_by = pd.Series(pd.NA, index=frame.index, dtype=object)
    for current in range(1, int(level.max()) + 1 if len(level) else 0):
        better = np.flatnonzero(level.to_numpy() < current)
        if not better.size:
            continue
        better_sorted = better[np.argsort(key[better], kind="stable")]
        better_keys = key[better_sorted]
        mine = np.flatnonzero(level.to_numpy() == current)
        # every better-ranked reading within the time tolerance is a candidate: the nearest may disagree in value
        first = np.searchsorted(better_keys, key[mine] - tolerance_ms[mine], side="left")
        count = np.searchsorted(better_keys, key[mine] + tolerance_ms[mine], side="right") - first
        pair = np.repeat(np.arange(mine.size), count)  # (reading, candidate) pairs: the reading's slot in ``mine``
        offset = np.arange(pair.size) - np.repeat(np.cumsum(count) - count, count)
        other = better_sorted[np.repeat(first, count) + offset]
        me = mine[pair]
        gap = np.abs(t[other] - t[me])
        difference = np.abs(value[other] - value[me])
        same = (group[other] == group[me]) & (gap <= tolerance_ms[me])
        same &= difference <= tolerance_value[me] + _VALUE_SLACK
        pair, other, gap, difference = pair[same], other[same], gap[same], difference[same]
        order = np.lexsort((identity_rank[other], level.to_numpy()[other], difference, gap, pair))
        _, nearest = np.unique(pair[order], return_index=True)
        chosen = order[nearest]
        dropped_by.iloc[mine[pair[chosen]]] = frame["identity"].to_numpy()[other[chosen]]
    kept = frame[dropped_by.isna().to_numpy()]
    return kept, dropped_by.dropna()


def night_numbers(stage_slices: pd.DataFrame) -> pd.Series:
    """The night each winning stage slice belongs to, aligned to the input: a gap over 2 h starts a new one."""
    frame = stage_slices.sort_values(["user_id", "slice_start_utc"])
    previous_end = frame.groupby("user_id")["slice_end_utc"].shift()
    new_session = previous_end.isna() | (frame["slice_start_utc"] - previous_end > SLEEP_SESSION_GAP)
    return new_session.cumsum().reindex(stage_slices.index)


def sleep_sessions(stage_slices: pd.DataFrame, local_end_date: pd.Series) -> pd.DataFrame:
    """Group winning stage slices into nights (gaps over 2 h start a new one); a night counts for the local date on
    which it ends. Returns one row per session: user_id, session_start_utc, session_end_utc, wake_date,
    asleep_minutes, flagged_samples (distinct samples of the night whose slices are ``flagged``, when given)."""
    columns = ["user_id", "session_start_utc", "session_end_utc", "wake_date", "asleep_minutes", "flagged_samples"]
    if stage_slices.empty:
        return pd.DataFrame(columns=columns)
    frame = stage_slices.assign(wake_source=local_end_date, session=night_numbers(stage_slices))
    frame = frame.sort_values(["user_id", "slice_start_utc"])
    asleep = frame["stage"].isin(list(ASLEEP_STAGES))
    flagged = frame["flagged"].to_numpy(dtype=bool) if "flagged" in frame else np.zeros(len(frame), dtype=bool)
    frame = frame.assign(
        asleep_minutes=np.where(asleep, frame["value"], 0.0),
        flagged_identity=frame["identity"].where(flagged),
    )
    grouped = frame.groupby("session")
    sessions = pd.DataFrame(
        {
            "user_id": grouped["user_id"].first(),
            "session_start_utc": grouped["slice_start_utc"].min(),
            "session_end_utc": grouped["slice_end_utc"].max(),
            "wake_date": grouped["wake_source"].last(),
            "asleep_minutes": grouped["asleep_minutes"].sum(),
            "flagged_samples": grouped["flagged_identity"].nunique().astype("int64"),
        }
    ).reset_index(drop=True)
    return sessions[columns]


def kind_of(metric: pd.Series) -> pd.Series:
    return metric.map({m.name: m.kind.value for m in METRICS.values()})


CUMULATIVE = Kind.CUMULATIVE.value
DISCRETE = Kind.DISCRETE.value
INTERVAL = Kind.INTERVAL.value
