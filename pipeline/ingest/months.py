"""The month tables of ``raw.samples`` (migration 0022: partitioned by UTC month of ``start_utc``, no default
partition): a chunk's months must exist before its rows are inserted.

The months are found vectorized from the chunk's start instants; one call of ``raw.add_sample_months`` makes those
that are missing (none when the months exist: no lock taken), under an advisory lock so that two imports needing the
same new month make it once. The landing accepts instants from 1970 to tomorrow (``landing.EARLIEST_INSTANT``), so a
file can make at most one table per month of that span; months before the retention cutoff are never made (their
rows are quarantined, see ``store.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.infra.database import Connection


def months_of(starts: pd.Series) -> tuple[dt.date, ...]:
    """The distinct UTC months (their first days) of the instants ``starts`` (tz-aware), in order."""
    if starts.empty:
        return ()
    micros = starts.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]").to_numpy()
    months = np.unique(micros[~np.isnat(micros)].astype("datetime64[M]"))
    return tuple(months.astype("datetime64[D]").tolist())


def ensure_sample_months(conn: Connection, months: Sequence[dt.date]) -> int:
    """Make the month tables of ``months`` that raw.samples lacks; how many were made. Outside a transaction this is
    its own short one (the lock is released at once); inside one, the lock is held until it ends."""
    if not months:
        return 0
    row = conn.execute("SELECT raw.add_sample_months(%s::date[])", (list(months),)).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]
