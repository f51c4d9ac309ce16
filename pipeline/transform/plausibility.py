"""Soft plausibility tests that need more than one sample (DESIGN §5, end). Pure: no database, no Dagster.

The single-sample soft limits (a value outside the usual range, a sleep entry over its limit) are Great Expectations
rules in ``validate.py``. Here: a body-metric reading far from the same user's neighbouring readings, and a night
whose asleep total is over the limit. Both flag, never drop: flagged samples stay in the data, and every aggregate
row counts them (``flagged_count``), so insights, scores and analysts can leave them out.

Both tests look only at samples near the one judged (a reading's neighbours within the catalogue's window; a night's
own slices), so recomputing one user-day gives the same flags as recomputing all history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.catalog import ASLEEP_STAGES, METRICS, SLEEP_METRIC, OutlierTest

_MS_PER_DAY = 86_400_000


def outlier_tested_metrics() -> dict[str, OutlierTest]:
    """Metrics with a per-user outlier test, and their test (from the catalogue)."""
    return {m.name: m.limits.outlier for m in METRICS.values() if m.limits.outlier is not None}


def neighbour_median(
    group: np.ndarray, at_ms: np.ndarray, value: np.ndarray, kept: np.ndarray, test: OutlierTest
) -> tuple[np.ndarray, np.ndarray]:
    """Per reading (arrays already sorted by group, time, identity): the median of its neighbours and their number.

    Neighbours are kept readings of the same group at most ``window_days`` away, up to ``per_side`` nearest on each
    side, never the reading itself. Vectorized: an (n, 2 x per_side) matrix of candidate positions in the kept
    readings, masked, sorted along rows (NaN last), and the median picked from each row's valid count."""
    n = value.size
    kept_at = np.flatnonzero(kept)  # sorted positions of the kept readings
    if n == 0 or kept_at.size == 0:
        return np.full(n, np.nan), np.zeros(n, dtype=np.int64)
    kept_before = np.cumsum(kept) - kept  # kept readings strictly before each position
    steps = np.arange(1, test.per_side + 1)
    left = kept_before[:, None] - steps[None, :]
    right = (kept_before + kept)[:, None] + steps[None, :] - 1  # a kept reading skips itself
    candidate = np.concatenate([left, right], axis=1)
    valid = (candidate >= 0) & (candidate < kept_at.size)
    other = kept_at[np.clip(candidate, 0, kept_at.size - 1)]
    window = test.window_days * _MS_PER_DAY
    valid &= (group[other] == group[:, None]) & (np.abs(at_ms[other] - at_ms[:, None]) <= window)
    ordered = np.sort(np.where(valid, value[other], np.nan), axis=1)
    count = valid.sum(axis=1)
    rows = np.arange(n)
    low, high = np.maximum((count - 1) // 2, 0), np.maximum(count // 2, 0)
    median = np.where(count > 0, (ordered[rows, low] + ordered[rows, high]) / 2.0, np.nan)
    return median, count


def outlier_reasons(readings: pd.DataFrame) -> pd.Series:
    """Per reading: why it is an outlier among the user's own readings, or None. ``readings``: user_id, metric,
    value (canonical), start_utc, identity, kept (deduplicated across sources: one measurement is one neighbour).
    A loop over the (two) tested metrics; arrays within."""
    reasons = pd.Series(None, index=readings.index, dtype=object)
    for metric, test in outlier_tested_metrics().items():
        mine = readings[(readings["metric"] == metric).to_numpy()]
        if mine.empty:
            continue
        ordered = mine.sort_values(["user_id", "start_utc", "identity"], kind="stable")
        group = pd.factorize(ordered["user_id"])[0].astype(np.int64)
        at_ms = ((ordered["start_utc"] - ordered["start_utc"].min()) // pd.Timedelta(milliseconds=1)).to_numpy(
            dtype=np.int64
        )
        value = ordered["value"].to_numpy(dtype=float)
        median, count = neighbour_median(group, at_ms, value, ordered["kept"].to_numpy(dtype=bool), test)
        deviation = np.abs(value - median)
        limit = np.full(value.size, np.inf)
        if test.max_relative is not None:
            limit = np.minimum(limit, test.max_relative * np.abs(median))
        if test.max_absolute is not None:
            limit = np.minimum(limit, test.max_absolute)
        out = (count >= test.min_neighbours) & (deviation > limit)
        if not out.any():
            continue
        unit = METRICS[metric].canonical_unit
        if test.max_relative is not None:
            away = pd.Series(np.round(100 * deviation[out] / np.abs(median[out]), 1)).astype(str) + " %"
            bound = f"{test.max_relative * 100:g} %"
        else:
            away = pd.Series(np.round(deviation[out], 2)).astype(str) + f" {unit}"
            bound = f"{test.max_absolute:g} {unit}"
        text = (
            f"{metric} outlier: "
            + pd.Series(np.round(value[out], 2)).astype(str)
            + f" {unit} is "
            + away
            + " from the median "
            + pd.Series(np.round(median[out], 2)).astype(str)
            + f" {unit} of "
            + pd.Series(count[out]).astype(str)
            + f" neighbouring readings within {test.window_days} days (limit {bound})"
        )
        reasons.loc[ordered.index[out]] = text.to_numpy()
    return reasons


def append_reasons(flags: pd.Series, more: pd.Series) -> pd.Series:
    """Join two aligned columns of flag texts ("; "), None where both are None."""
    both = flags.notna() & more.notna()
    joined = flags.where(flags.notna(), more)
    joined[both] = flags[both] + "; " + more[both]
    return joined


def flag_nights(stage_slices: pd.DataFrame, night: pd.Series) -> pd.Series:
    """Per winning stage slice (``night``: the night it belongs to): flagged when its own sample is (``flagged``) or
    when its night's asleep total is over the catalogue's limit. A night over the limit can't say which of its
    samples is wrong (overlapping apps, a long typed entry), so all of them count as flagged."""
    flagged = stage_slices["flagged"].to_numpy(dtype=bool)
    limit_hours = METRICS[SLEEP_METRIC].limits.soft_max_night_hours
    if limit_hours is None or stage_slices.empty:
        return pd.Series(flagged, index=stage_slices.index)
    asleep = np.where(stage_slices["stage"].isin(list(ASLEEP_STAGES)), stage_slices["value"], 0.0)
    total = pd.Series(asleep, index=stage_slices.index).groupby(night.to_numpy()).transform("sum")
    return pd.Series(flagged | (total.to_numpy() > limit_hours * 60.0), index=stage_slices.index)
