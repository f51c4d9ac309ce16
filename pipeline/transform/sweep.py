"""The priority sweep over time (DESIGN §5.3), vectorized over many users and metrics at once.

Cut each group's timeline (a group is one user's one metric) at every sample boundary and at every UTC
quarter-hour. In each elementary slice the best-ranked sample covering it wins and contributes
``value * slice length / sample duration``; the other samples covering the slice contribute nothing there.

Quarter-hours: every UTC offset in use is a multiple of 15 minutes, so a slice never crosses a local hour boundary in
any zone and hourly buckets can be summed from slices exactly.

Zero-length samples (an instant) count at their instant unless a better-ranked sample's interval covers it.

All of it is array arithmetic: no Python loop over samples, groups or slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUARTER_MS = 15 * 60 * 1000
_SPAN_BITS = 41  # ms since the run's origin: 2^41 ms = 69 years; groups get the bits above
NO_WINNER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class SweepResult:
    """Rows of (sample, slice) pairs. ``won`` marks the pairs whose sample won its slice."""

    sample: np.ndarray  # index into the input arrays
    slice_start: np.ndarray  # ms, same origin as the input
    slice_end: np.ndarray
    share: np.ndarray  # value * slice length / duration (the whole value for an instant)
    won: np.ndarray  # bool


def sweep(group: np.ndarray, start: np.ndarray, end: np.ndarray, rank: np.ndarray, value: np.ndarray) -> SweepResult:
    """Split samples into slices and pick a winner per slice.

    ``group``: int ids (user x metric); ``start``/``end``: int64 ms from an origin aligned to a UTC quarter-hour;
    ``rank``: unique int per sample, lower wins (priority, then deterministic tie-breakers); ``value``: float.
    """
    group = np.asarray(group, dtype=np.int64)
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    rank = np.asarray(rank, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    if start.size and (start.min() < 0 or end.max() >= (1 << _SPAN_BITS)):
        raise ValueError("times must be ms from an origin at or before the first sample, within 69 years")
    base = group << _SPAN_BITS
    interval = end > start

    # boundary points: starts, ends and the quarter-hours strictly inside each interval sample
    first_quarter = start // QUARTER_MS + 1
    quarters = np.where(interval, (end - 1) // QUARTER_MS - start // QUARTER_MS, 0)
    owner = np.repeat(np.arange(start.size), quarters)
    step = np.arange(owner.size) - np.repeat(np.cumsum(quarters) - quarters, quarters)
    grid = (first_quarter[owner] + step) * QUARTER_MS
    points = _distinct(
        np.concatenate([base[interval] + start[interval], base[interval] + end[interval], base[owner] + grid])
    )

    # explode interval samples into the elementary slices they cover
    idx = np.flatnonzero(interval)
    first = np.searchsorted(points, base[idx] + start[idx])
    last = np.searchsorted(points, base[idx] + end[idx])
    counts = last - first
    rows = np.repeat(idx, counts)
    slice_index = np.repeat(first, counts) + (np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts))
    winner = np.full(points.size, NO_WINNER, dtype=np.int64)
    np.minimum.at(winner, slice_index, rank[rows])
    slice_start = points[slice_index] - base[rows]
    slice_end = points[slice_index + 1] - base[rows]
    share = value[rows] * (slice_end - slice_start) / (end[rows] - start[rows])
    won = winner[slice_index] == rank[rows]

    # instants: count unless a better-ranked interval covers the instant
    instants = np.flatnonzero(~interval)
    at = np.searchsorted(points, base[instants] + start[instants], side="right") - 1
    inside = (at >= 0) & (at + 1 < points.size)
    at_safe = np.clip(at, 0, max(points.size - 2, 0))
    same_group = (
        inside
        & ((points[at_safe] >> _SPAN_BITS) == group[instants])
        & ((points[np.minimum(at_safe + 1, points.size - 1)] >> _SPAN_BITS) == group[instants])
    )
    cover = np.where(same_group, winner[at_safe] if points.size else NO_WINNER, NO_WINNER)
    instant_won = ~(cover < rank[instants])

    return SweepResult(
        sample=np.concatenate([rows, instants]),
        slice_start=np.concatenate([slice_start, start[instants]]),
        slice_end=np.concatenate([slice_end, start[instants]]),
        share=np.concatenate([share, value[instants]]),
        won=np.concatenate([won, instant_won]),
    )


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values. (NumPy 2's ``np.unique`` hashes int64 first: 60x slower on these keys.)"""
    ordered = np.sort(values)
    result: np.ndarray = ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if ordered.size else ordered
    return result
