"""The insights' partitions: one per local day, for every user at once. A day's partition exists once the day has
ended in UTC; its insights are computed once it has ended everywhere (``FINISHED_EVERYWHERE_HOUR``)."""

from __future__ import annotations

import datetime as dt

from dagster import DailyPartitionsDefinition

from pipeline.samples.partitions import DAY_START

day_partitions = DailyPartitionsDefinition(start_date=DAY_START)

# The last zone to finish a day is UTC-12 (Baker Island): its day D ends at 12:00 UTC on D + 1.
FINISHED_EVERYWHERE_HOUR = 12


def last_finished_day(now_utc: dt.datetime) -> dt.date:
    """The latest local day that has ended in every time zone at ``now_utc``."""
    now = now_utc.astimezone(dt.UTC)
    return now.date() - dt.timedelta(days=1 if now.hour >= FINISHED_EVERYWHERE_HOUR else 2)
