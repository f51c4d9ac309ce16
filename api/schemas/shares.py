"""Share links: what the owner sends and sees (`/v1/me/shares`), and what the link shows (`/v1/shared/{code}`)."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

from api.metric_names import metric_names
from api.ranges import MAX_DAYS
from api.schemas.base import CamelModel, DisplayText
from api.schemas.reads import Period, Series
from pipeline.catalog import METRICS, STEPS_METRIC

MAX_EXPIRY_DAYS = 90
DEFAULT_EXPIRY_DAYS = 30
_TYPE_NAMES = list(METRICS)
_SOME_TYPES = _TYPE_NAMES[:2]

MetricName = Annotated[str, Field(json_schema_extra={"enum": _TYPE_NAMES})]
"""A catalogue name (the schema lists them; the check is `metric_names`', whose 422 names the unknown ones)."""


class ShareIn(CamelModel):
    recipient: DisplayText = Field(
        min_length=1,
        max_length=200,
        description="who the link is for, as you want to recognise it in your list (a name, an address); the link "
        "never shows it",
        examples=["Dr. Jansen"],
    )
    types: Annotated[list[MetricName], AfterValidator(metric_names)] = Field(
        min_length=1, max_length=50, description="the metric types the link shows", examples=[_SOME_TYPES]
    )
    start: dt.date = Field(description="first local date shown, included", examples=["2024-05-01"])
    end: dt.date = Field(description=f"last local date shown, included (at most {MAX_DAYS['day']} days, both ends)")
    expires_in_days: int = Field(
        default=DEFAULT_EXPIRY_DAYS,
        ge=1,
        le=MAX_EXPIRY_DAYS,
        description=f"the link stops working this many days from now (1-{MAX_EXPIRY_DAYS})",
    )


class ShareStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Share(CamelModel):
    """A share link as its owner sees it (never its code: that is shown once, when created)."""

    id: uuid.UUID
    recipient: str
    types: list[str] = Field(examples=[_SOME_TYPES])
    start: dt.date
    end: dt.date
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    status: ShareStatus = Field(description="active until it expires or is revoked (revoked wins)")


class ShareCreated(Share):
    """The new share with its code: the only time the code is shown (only its hash is stored)."""

    code: str = Field(description="the secret in the link: whoever holds it reads what the share shows")
    url: str = Field(
        description="the link to give the recipient: the dashboard's page of the share, relative to the API's address "
        "(the code in the fragment, which browsers do not send to a server)",
        examples=["/#/shared/<code>"],
    )
    api_url: str = Field(
        description="the share's data as JSON, no key needed, relative to the API's address",
        examples=["/v1/shared/<code>"],
    )


class SharedData(CamelModel):
    """What a share link shows: the daily aggregates of the shared types over the shared dates (points as
    `/v1/me/aggregates?period=day` answers them), and until when the link works. Nothing about whose data it is."""

    period: Period = Field(description="always day")
    start: dt.date
    end: dt.date
    expires_at: dt.datetime
    types: dict[str, Series] = Field(description="one series per shared type, in the order the owner chose")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "period": "day",
                    "start": "2024-05-01",
                    "end": "2024-05-31",
                    "expiresAt": "2024-06-30T09:12:00Z",
                    "types": {
                        STEPS_METRIC: {
                            "unit": METRICS[STEPS_METRIC].canonical_unit,
                            "aggregation": METRICS[STEPS_METRIC].strategy.value,
                            "points": [
                                {
                                    "periodStart": "2024-05-01",
                                    "hourStartUtc": None,
                                    "value": 8123.0,
                                    "sum": 8123.0,
                                    "count": 52,
                                    "min": 4.0,
                                    "max": 812.0,
                                    "flaggedCount": 0,
                                    "daysWithData": None,
                                }
                            ],
                        }
                    },
                }
            ]
        }
    )
