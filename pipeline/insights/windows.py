"""Trailing windows down the rows of a days x users array, for every column at once, in NumPy.

(pandas' DataFrame.rolling computes column by column: a Python call per user, 20,000 of them for the rules over
1,000 users. Here a window sum is a difference of two cumulative sums, one array operation for all users.)
A window ending on row t holds rows t - size + 1 .. t; rows before the first count as missing. NaN is missing data.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Array = np.ndarray


def _trailing_sum(values: Array, size: int) -> Array:
    """Sum of each trailing window of ``size`` rows (``values`` without NaN)."""
    total = np.cumsum(values, axis=0, dtype="float64")
    out = total.copy()
    out[size:] -= total[:-size]
    return out


def count(values: Array, size: int) -> Array:
    return _trailing_sum((~np.isnan(values)).astype("float64"), size)


def total(values: Array, size: int) -> Array:
    """Sum of the present values in each window (0 when none)."""
    return _trailing_sum(np.nan_to_num(values, nan=0.0), size)


def mean(values: Array, size: int, min_count: int) -> Array:
    """Mean of the present values, NaN with fewer than ``min_count`` of them."""
    present = count(values, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(present >= min_count, total(values, size) / present, np.nan)


def std(values: Array, size: int, min_count: int) -> Array:
    """Sample standard deviation (n - 1) of the present values, NaN with fewer than ``min_count`` (at least 2).
    Computed around each column's overall mean, so the sums of squares stay small (no cancellation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        centre = np.nanmean(values, axis=0)
    centred = values - np.nan_to_num(centre)
    present = count(values, size)
    sums, squares = total(centred, size), total(centred * centred, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = (squares - sums * sums / present) / (present - 1)
    return np.where(present >= max(min_count, 2), np.sqrt(np.maximum(variance, 0.0)), np.nan)


def _padded_view(values: Array, size: int) -> Array:
    padded = np.concatenate([np.full((size - 1, values.shape[1]), np.nan), values], axis=0)
    return sliding_window_view(padded, size, axis=0)  # rows x users x size, no copy


def minimum(values: Array, size: int) -> Array:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # windows without a value: NaN
        return np.asarray(np.nanmin(_padded_view(values, size), axis=2))


def maximum(values: Array, size: int) -> Array:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmax(_padded_view(values, size), axis=2))


def shift(values: Array, rows: int) -> Array:
    """Each row takes the value ``rows`` rows before it (NaN for the first ``rows``)."""
    out = np.full(values.shape, np.nan)
    out[rows:] = values[: values.shape[0] - rows]
    return out


def last_present_row(present: Array) -> Array:
    """For each cell, the row of the latest present cell at or before it in its column (-1 when none)."""
    rows = np.arange(present.shape[0])[:, None]
    return np.maximum.accumulate(np.where(present, rows, -1), axis=0)


def forward_fill(values: Array, limit: int) -> Array:
    """Missing cells take the latest present value at most ``limit`` rows before them."""
    source = last_present_row(~np.isnan(values))
    rows = np.arange(values.shape[0])[:, None]
    usable = (source >= 0) & (rows - source <= limit)
    filled = np.take_along_axis(values, np.maximum(source, 0), axis=0)
    return np.where(usable, filled, np.nan)


def run_length(flags: Array) -> Array:
    """Consecutive true cells ending at each cell (0 on a false cell), down every column."""
    running = np.cumsum(flags, axis=0)
    at_last_false = np.maximum.accumulate(np.where(flags, 0, running), axis=0)
    return running - at_last_false
