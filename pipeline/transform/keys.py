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
    user_codes, wanted_user_codes, users_n = _shared_codes(users, wanted_users)
    date_codes, wanted_date_codes, _ = _shared_codes(dates, wanted_dates)
    present = (wanted_user_codes >= 0) & (wanted_date_codes >= 0)
    if not present.any():
        return np.zeros(len(users), dtype=bool)
    keys = date_codes * (users_n + 1) + user_codes
    wanted = wanted_date_codes[present] * (users_n + 1) + wanted_user_codes[present]
    return np.isin(keys, wanted) & (user_codes >= 0) & (date_codes >= 0)


def _shared_codes(values: pd.Series, wanted: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes of ``values`` (-1: null) and of ``wanted`` in the same numbering (-1: not among ``values``)."""
    if isinstance(values.dtype, pd.CategoricalDtype):  # the codes are already there
        codes = values.cat.codes.to_numpy().astype(np.int64)
        uniques = values.cat.categories
    else:
        codes, uniques = pd.factorize(values)
        codes = codes.astype(np.int64)
        uniques = pd.Index(uniques)
    wanted_codes = uniques.get_indexer(pd.Index(wanted.to_numpy(dtype=object))).astype(np.int64)
    return codes, wanted_codes, len(uniques)
