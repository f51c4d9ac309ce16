"""Answers of the read routes (`/v1/me/...`, and `/v1/users/{userId}/...` for admin keys): precomputed marts rows."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from api.schemas.base import CamelModel
from pipeline.catalog import ASLEEP_STAGES, METRICS, STEPS_METRIC

# examples in the OpenAPI document, named from the catalogue (the only list of metrics and stages)
_STEPS = METRICS[STEPS_METRIC]
_DEEP, _REM = sorted(ASLEEP_STAGES)[-2:]  # two of the detailed stages


class MetricOfDay(CamelModel):
    """One metric's daily marts row, in the catalogue's unit."""

    metric: str = Field(examples=[STEPS_METRIC])
    display_name: str = Field(examples=[_STEPS.display_name])
    unit: str = Field(examples=["count"])
    value: float = Field(description="the day's value by the metric's aggregation (sum, mean or latest)")
    count: int = Field(description="samples (sleep: nights) behind the value")
    min: float | None
    max: float | None
    flagged_count: int = Field(description="of them, samples carrying a plausibility flag")
    goal: float | None = Field(
        description="the daily goal (steps: the user's own, else the catalogue's); null without one"
    )
    progress: float | None = Field(description="value / goal (1.0: goal reached); null without a goal")


class SleepStage(CamelModel):
    stage: str = Field(examples=[_DEEP])
    minutes: float


class SleepNight(CamelModel):
    """The sleep counted for this day: the nights ending on it (the wake-up day)."""

    asleep_minutes: float
    nights: int
    stages: list[SleepStage] = Field(description="minutes per stage (in_bed and awake included) of those nights")


class ScoreComponents(CamelModel):
    activity: float | None
    sleep: float | None
    vitals: float | None


class HealthScore(CamelModel):
    date: dt.date
    score: float | None = Field(description="0-100")
    components: ScoreComponents
    completeness: float | None = Field(description="the share of the day's expected data present, 0-1")
    cohort_users: int | None = Field(description="users in the cohort the score was ranked against")
    computed_at: dt.datetime | None


class Freshness(CamelModel):
    last_landed_at: dt.datetime | None = Field(description="when samples of the user last landed")
    last_computed_at: dt.datetime | None = Field(description="when the pipeline last computed one of the user's days")
    last_data_date: dt.date | None = Field(
        default=None,
        description="the user's latest local date, up to their local today, with a daily value: where to look when "
        "the asked day has none (a day is computed once it ends); null without any",
    )


class Summary(CamelModel):
    """A day at a glance."""

    user_id: str
    date: dt.date
    metrics: list[MetricOfDay]
    sleep: SleepNight | None
    active_insights: int
    health_score: HealthScore | None
    freshness: Freshness

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "userId": "anna",
                    "date": "2024-05-01",
                    "metrics": [
                        {
                            "metric": STEPS_METRIC,
                            "displayName": _STEPS.display_name,
                            "unit": "count",
                            "value": 8123.0,
                            "count": 52,
                            "min": 4.0,
                            "max": 812.0,
                            "flaggedCount": 0,
                            "goal": 10000.0,
                            "progress": 0.8123,
                        }
                    ],
                    "sleep": {
                        "asleepMinutes": 431.0,
                        "nights": 1,
                        "stages": [{"stage": _DEEP, "minutes": 72.0}, {"stage": _REM, "minutes": 95.0}],
                    },
                    "activeInsights": 2,
                    "healthScore": None,
                    "freshness": {
                        "lastLandedAt": "2024-05-01T21:04:00Z",
                        "lastComputedAt": "2024-05-02T00:01:10Z",
                        "lastDataDate": "2024-05-01",
                    },
                }
            ]
        }
    )


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class AggregatePoint(CamelModel):
    period_start: str = Field(
        description="local wall-clock start: a date (day, week: its Monday, month: its first) or, per hour, a "
        "local date-time",
        examples=["2024-05-01"],
    )
    hour_start_utc: dt.datetime | None = Field(
        default=None, description="per hour: the hour's UTC start (tells apart the two 02:00 of a fall-back night)"
    )
    value: float
    sum: float
    count: int
    min: float | None
    max: float | None
    flagged_count: int
    days_with_data: int | None = Field(default=None, description="per week and month: days holding data")


class Series(CamelModel):
    unit: str
    aggregation: str = Field(examples=["sum"])
    points: list[AggregatePoint]


class Aggregates(CamelModel):
    """Points per type, oldest first. A week or month is listed when it overlaps the range, with its whole value."""

    period: Period
    start: dt.date
    end: dt.date
    types: dict[str, Series]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "period": "day",
                    "start": "2024-05-01",
                    "end": "2024-05-02",
                    "types": {
                        STEPS_METRIC: {
                            "unit": "count",
                            "aggregation": "sum",
                            "points": [
                                {
                                    "periodStart": "2024-05-01",
                                    "value": 8123.0,
                                    "sum": 8123.0,
                                    "count": 52,
                                    "min": 4.0,
                                    "max": 812.0,
                                    "flaggedCount": 0,
                                }
                            ],
                        }
                    },
                }
            ]
        }
    )


class InsightStatus(StrEnum):
    ACTIVE = "active"
    RESOLVED = "resolved"
    ALL = "all"


class Insight(CamelModel):
    id: uuid.UUID
    type: str = Field(description="the rule that found it", examples=["step_goal_streak"])
    subject: str = Field(description="what it is about when a rule has several (a device class); else empty")
    severity: str = Field(examples=["medium"])
    direction: str | None = Field(examples=["decreasing"])
    message: str
    recommendation: str
    data: dict[str, Any] = Field(description="the numbers behind the message")
    first_day: dt.date = Field(description="the first evaluated day the rule held")
    last_day: dt.date = Field(description="the latest evaluated day it held")
    status: str = Field(examples=["active"])
    resolved_on: dt.date | None
    acknowledged: bool
    acknowledged_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class SourceContribution(CamelModel):
    """What one source reported for a metric on the day, and what of it deduplication kept."""

    metric: str
    unit: str
    source_name: str
    device_class: str
    raw_total: float = Field(description="as reported (discrete metrics: readings)")
    kept_total: float = Field(description="kept after deduplication")
    kept_share: float | None = Field(description="this source's share of the metric's kept total")


class Sources(CamelModel):
    date: dt.date
    sources: list[SourceContribution]
