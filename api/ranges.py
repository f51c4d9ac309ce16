"""Bounded date ranges of the read routes: how many local days one request may span, per period. The bounds keep
an answer to a few thousand points per type (hours: 31 x 24 = 744; days: 370; weeks: ~262; months: ~120)."""

from __future__ import annotations

import datetime as dt

MAX_DAYS = {"hour": 31, "day": 370, "week": 5 * 366, "month": 10 * 366}
"""Longest range, in days counting both ends: hours a month, days a year (and a week), weeks 5 years, months 10."""


def range_problem(start: dt.date, end: dt.date, max_days: int, what: str) -> str | None:
    """Why ``start``..``end`` (both included) cannot be served, or None."""
    if end < start:
        return f"end ({end.isoformat()}) is before start ({start.isoformat()})"
    days = (end - start).days + 1
    if days > max_days:
        return f"{what}: at most {max_days:,} days from start to end (both included), not {days:,}"
    return None
