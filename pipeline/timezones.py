"""Local wall-clock time of UTC instants in per-row time zones, vectorized by distinct zone (DESIGN §4)."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from functools import cache

import pandas as pd

_OFFSET = re.compile(r"^(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})$")


@cache
def zone(name: str) -> dt.tzinfo:
    """An IANA zone, or a fixed offset written ``+HH:MM`` / ``+HHMM``."""
    match = _OFFSET.match(name)
    if match:
        minutes = int(match["hours"]) * 60 + int(match["minutes"])
        return dt.timezone(dt.timedelta(minutes=-minutes if match["sign"] == "-" else minutes))
    return zoneinfo.ZoneInfo(name)


def to_local(instants_utc: pd.Series, zones: pd.Series) -> pd.Series:
    """Naive local datetimes of ``instants_utc`` (tz-aware UTC) each in its row's zone."""
    local = pd.Series(pd.NaT, index=instants_utc.index, dtype="datetime64[us]")
    for name, index in zones.groupby(zones, sort=False).groups.items():
        converted = instants_utc.loc[index].dt.tz_convert(zone(str(name))).dt.tz_localize(None)
        local.loc[index] = converted.astype("datetime64[us]")
    return local
