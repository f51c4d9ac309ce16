"""Constructed daily series for the insight tests: long rows as the loaders return them, and a panel over them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from pipeline.insights.panel import Panel, PanelInputs, build_panel

DAY0 = dt.date(2024, 3, 1)


def day(offset: int) -> dt.date:
    return DAY0 + dt.timedelta(days=offset)


def daily(
    metric: str,
    values: Sequence[float | None],
    user: str = "u1",
    start: int = 0,
    minimum: Sequence[float | None] | None = None,
    flagged: Sequence[int] | None = None,
) -> pd.DataFrame:
    """marts.daily rows of ``metric`` from day ``start`` on, one per value (None: no row that day)."""
    rows = [
        {
            "user_id": user,
            "local_date": day(start + i),
            "metric": metric,
            "value": v,
            "min": (minimum[i] if minimum is not None else v),
            "flagged_count": (flagged[i] if flagged is not None else 0),
        }
        for i, v in enumerate(values)
        if v is not None
    ]
    return pd.DataFrame(rows, columns=["user_id", "local_date", "metric", "value", "min", "flagged_count"])


def per_day(
    column: str, values: Sequence[float | None], user: str = "u1", start: int = 0, **more: object
) -> pd.DataFrame:
    rows = [
        {"user_id": user, "local_date": day(start + i), column: v, **more}
        for i, v in enumerate(values)
        if v is not None
    ]
    return pd.DataFrame(rows)


def panel(
    days: int,
    *daily_rows: pd.DataFrame,
    users: Sequence[str] = ("u1",),
    sleep_midpoints: pd.DataFrame | None = None,
    glucose: pd.DataFrame | None = None,
    device_days: pd.DataFrame | None = None,
    step_goals: pd.DataFrame | None = None,
) -> Panel:
    return build_panel(
        PanelInputs(
            first_day=pd.Timestamp(DAY0),
            last_day=pd.Timestamp(day(days - 1)),
            users=list(users),
            daily=pd.concat(daily_rows, ignore_index=True) if daily_rows else daily("STEPS", []),
            sleep_midpoints=sleep_midpoints if sleep_midpoints is not None else pd.DataFrame(),
            glucose=glucose if glucose is not None else pd.DataFrame(),
            device_days=device_days if device_days is not None else pd.DataFrame(),
            step_goals=step_goals if step_goals is not None else pd.DataFrame(),
        )
    )


def on(found: pd.DataFrame, offset: int, user: str = "u1") -> pd.DataFrame:
    """The findings of ``user`` on day ``offset``."""
    return found[(found["local_date"] == pd.Timestamp(day(offset))) & (found["user_id"] == user)]
