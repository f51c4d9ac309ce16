"""Small builders shared by tests."""

from __future__ import annotations

import uuid

import pandas as pd
from sqlalchemy import Engine, text

from pipeline.accounts import create_user
from pipeline.catalog import canonical_factors
from pipeline.ingest.store import psycopg_connection
from pipeline.timezones import to_local


def new_user(engine: Engine, timezone: str = "UTC", prefix: str = "u") -> str:
    user_id = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg_connection(engine) as conn:
        create_user(conn, user_id, timezone)
    return user_id


def landed(engine: Engine, user_id: str) -> pd.DataFrame:
    """The user's raw samples with canonical values and local start time in the sample's (or home) zone."""
    with engine.connect() as conn:
        frame = pd.read_sql(
            text(
                """SELECT s.*, coalesce(s.timezone, u.home_timezone) AS zone FROM raw.samples s
                   JOIN app.users u USING (user_id) WHERE user_id = :u ORDER BY start_utc, metric, source_name, value"""
            ),
            conn,
            params={"u": user_id},
        )
    frame["start_utc"] = pd.to_datetime(frame["start_utc"], utc=True)
    frame["canonical"] = frame["value"] * canonical_factors(frame["metric"], frame["unit"], frame["value"])
    frame["local_start"] = to_local(frame["start_utc"], frame["zone"])
    return frame


# The internal DTD is broken the way iOS 16 writes it: the VisionPrescription ATTLIST is never closed.
APPLE_HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST VisionPrescription
  type CDATA #REQUIRED
<!ELEMENT Attachment EMPTY>
]>
<HealthData locale="en_US">
 <ExportDate value="2024-06-01 08:10:05 +0200"/>
"""


def apple_record(
    hk_type: str,
    value: str,
    unit: str | None,
    start: str,
    end: str,
    source: str = "Test iPhone",
    meta: dict[str, str] | None = None,
) -> str:
    unit_attr = f' unit="{unit}"' if unit is not None else ""
    entries = "".join(f'<MetadataEntry key="{k}" value="{v}"/>' for k, v in (meta or {}).items())
    return (
        f' <Record type="{hk_type}" sourceName="{source}"{unit_attr} creationDate="{end}" startDate="{start}" '
        f'endDate="{end}" value="{value}">{entries}</Record>\n'
    )
