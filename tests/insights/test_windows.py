"""The NumPy trailing windows agree with pandas' rolling windows (the reference), column by column, on data with
gaps, and the run lengths and fills with hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.insights import windows as w


@pytest.fixture
def values() -> np.ndarray:
    rng = np.random.default_rng(5)
    data = rng.normal(400, 60, (60, 40))
    data[rng.random(data.shape) < 0.3] = np.nan
    data[:, 0] = np.nan  # a user without data
    return data


@pytest.mark.parametrize(("size", "min_count"), [(7, 4), (28, 15), (7, 1)])
def test_mean_and_std_match_pandas_rolling(values: np.ndarray, size: int, min_count: int) -> None:
    frame = pd.DataFrame(values)
    rolling = frame.rolling(size, min_periods=min_count)
    np.testing.assert_allclose(w.mean(values, size, min_count), rolling.mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        w.std(values, size, min_count),
        frame.rolling(size, min_periods=max(min_count, 2)).std().to_numpy(),
        rtol=1e-9,
    )


def test_minimum_maximum_total_and_shift_match_pandas(values: np.ndarray) -> None:
    frame = pd.DataFrame(values)
    rolling = frame.rolling(30, min_periods=1)
    np.testing.assert_allclose(w.minimum(values, 30), rolling.min().to_numpy())
    np.testing.assert_allclose(w.maximum(values, 30), rolling.max().to_numpy())
    np.testing.assert_allclose(w.total(values, 14), frame.fillna(0).rolling(14, min_periods=1).sum().to_numpy())
    np.testing.assert_allclose(w.shift(values, 7), frame.shift(7).to_numpy())
    np.testing.assert_allclose(w.forward_fill(values, 29), frame.ffill(limit=29).to_numpy())


def test_run_lengths_and_fills_by_hand() -> None:
    flags = np.array([[1, 0], [1, 1], [0, 1], [1, 1], [1, 0]], dtype=bool)
    assert w.run_length(flags).tolist() == [[1, 0], [2, 1], [0, 2], [1, 3], [2, 0]]
    column = np.array([[80.0], [np.nan], [np.nan], [np.nan], [84.0]])
    assert np.array_equal(
        w.forward_fill(column, 2), np.array([[80.0], [80.0], [80.0], [np.nan], [84.0]]), equal_nan=True
    )
    assert w.last_present_row(~np.isnan(column)).ravel().tolist() == [0, 0, 0, 0, 4]
