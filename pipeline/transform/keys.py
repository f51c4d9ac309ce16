"""Integer keys for multi-column grouping and membership, instead of pandas MultiIndexes (which build a Python tuple
per row: at a million rows that was seconds)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def group_codes(*columns: pd.Series | np.ndarray) -> np.ndarray:
    """One int64 id per distinct combination of the columns' values (equal rows, equal ids; nulls are a value)."""
    combined = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        combined = combined * (len(uniques) + 1) + (codes.astype(np.int64) + 1)
        combined = pd.factorize(combined)[0].astype(np.int64)  # keep the ids dense: no overflow however many columns
    return combined


def pairs_isin(users: pd.Series, dates: pd.Series, wanted_users: pd.Series, wanted_dates: pd.Series) -> np.ndarray:
    """Whether each (user, date) pair is one of the wanted pairs."""
    n = len(users)
    both_users = pd.factorize(np.concatenate([_values(users), _values(wanted_users)]))[0]
    both_dates = pd.factorize(np.concatenate([_values(dates), _values(wanted_dates)]))[0]
    keys = both_users.astype(np.int64) * (int(both_dates.max(initial=0)) + 1) + both_dates
    return np.isin(keys[:n], keys[n:])


def _values(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=object) if isinstance(series.dtype, pd.CategoricalDtype) else series.to_numpy()
