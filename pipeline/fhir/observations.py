"""Daily marts rows as FHIR R4 Observations, gathered in a searchset Bundle.

One Observation per user, local day and metric: the day's value of ``marts.daily`` (a sum, an average or the latest
reading, as the catalogue aggregates the metric) with the catalogue's LOINC code and UCUM unit. Vital signs follow
the R4 vital-signs profile: status, the vital-signs category, code, subject, an effective period precise to the
second, a value or a dataAbsentReason (vs-1 to vs-3), and ``meta.profile`` naming it."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.catalog import METRICS, Metric, ObservationCategory
from pipeline.fhir.codes import (
    LOINC,
    OBSERVATION_CATEGORY,
    UCUM,
    VITAL_SIGNS_PROFILE,
    daily_observation_id,
    data_absent_reason,
)
from pipeline.fhir.patient import patient_reference
from pipeline.timezones import zone

_CATEGORY_DISPLAY = {
    ObservationCategory.VITAL_SIGNS: "Vital Signs",
    ObservationCategory.ACTIVITY: "Activity",
    ObservationCategory.LABORATORY: "Laboratory",
}


@dataclass(frozen=True)
class DailyValue:
    """One ``marts.daily`` row, with the zone the user's local day was in (for its bounds)."""

    local_date: dt.date
    metric: str
    value: float
    count: int
    flagged_count: int
    timezone: str


def loinc_code(metric: Metric) -> str:
    """The catalogue's LOINC code for a day's value where it has one, else the code of the metric's samples."""
    return metric.loinc_daily or metric.loinc_sample


def local_day_period(day: dt.date, timezone: str) -> dict[str, str]:
    """The local day as a Period: its first and last second, each with the zone's offset at that moment (a
    daylight-saving day starts and ends at different offsets). FHIR compares a Period's end at its own precision,
    so ``23:59:59`` includes the whole last second."""
    tz = zone(timezone)
    start = dt.datetime.combine(day, dt.time(0, 0, 0), tzinfo=tz)
    end = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=tz)
    return {"start": start.isoformat(), "end": end.isoformat()}


def _value(metric: Metric, value: float) -> dict[str, Any]:
    """valueQuantity, or a dataAbsentReason for what is not a number (FHIR decimals are finite)."""
    if math.isnan(value):
        return {"dataAbsentReason": data_absent_reason("not-a-number")}
    if math.isinf(value):
        return {"dataAbsentReason": data_absent_reason("positive-infinity" if value > 0 else "negative-infinity")}
    return {"valueQuantity": {"value": value, "unit": metric.canonical_unit, "system": UCUM, "code": metric.ucum_unit}}


def daily_observation(user_id: str, row: DailyValue) -> dict[str, Any]:
    metric = METRICS[row.metric]
    category = metric.observation_category
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": daily_observation_id(user_id, row.metric, row.local_date),
    }
    if category is ObservationCategory.VITAL_SIGNS:
        resource["meta"] = {"profile": [VITAL_SIGNS_PROFILE]}
    resource |= {
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": OBSERVATION_CATEGORY, "code": category.value, "display": _CATEGORY_DISPLAY[category]}
                ],
                "text": _CATEGORY_DISPLAY[category],
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": loinc_code(metric)}], "text": metric.display_name},
        "subject": patient_reference(user_id),
        "effectivePeriod": local_day_period(row.local_date, row.timezone),
        **_value(metric, row.value),
    }
    if row.flagged_count:
        # counts only: a note never quotes a sample's value
        resource["note"] = [
            {
                "text": f"{row.flagged_count} of the {row.count} samples behind this value were flagged as "
                "implausible (soft limits or outlier tests); the value includes them."
            }
        ]
    return resource


def searchset_bundle(user_id: str, rows: Iterable[DailyValue]) -> dict[str, Any]:
    """The rows' Observations as a searchset Bundle: every entry a match, its fullUrl the Observation's stable
    ``urn:uuid`` (the API serves no Observation by id)."""
    entries = [
        {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource, "search": {"mode": "match"}}
        for resource in (daily_observation(user_id, row) for row in rows)
    ]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return bundle
