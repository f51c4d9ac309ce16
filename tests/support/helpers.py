"""Small builders shared by tests."""

from __future__ import annotations

import uuid

import pandas as pd
from sqlalchemy import Engine, text

from pipeline.accounts import create_user
from pipeline.catalog import canonical_factors
from pipeline.infra.database import psycopg_connection
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


# (metric, value, unit, stage, start, end, source, device class), instants in UTC: a user who only measures glucose
# and weight (no steps, no sleep). On 2024-05-01: glucose (105 + 150) / 2 = 127.5 mg/dL, weight the latest, 70.6 kg.
GLUCOSE_AND_WEIGHT: list[tuple] = [
    ("BLOOD_GLUCOSE", 105, "mg/dL", None, "2024-05-01 08:00", "2024-05-01 08:00", "Meter", "scale_or_app"),
    ("BLOOD_GLUCOSE", 150, "mg/dL", None, "2024-05-01 12:00", "2024-05-01 12:00", "Meter", "scale_or_app"),
    ("WEIGHT", 70.2, "kg", None, "2024-05-01 07:05", "2024-05-01 07:05", "Scale", "scale_or_app"),
    ("WEIGHT", 70.6, "kg", None, "2024-05-01 19:00", "2024-05-01 19:00", "Scale", "scale_or_app"),
]
GLUCOSE_AND_WEIGHT_DAILY = {"BLOOD_GLUCOSE": 127.5, "WEIGHT": 70.6}


def land_samples(engine: Engine, user_id: str, rows: list[tuple]) -> None:
    """Land ``rows`` (metric, value, unit, stage, start, end, source, device class; UTC instants) as one batch."""
    from pipeline.ingest.landing import split_for_landing
    from pipeline.ingest.store import create_batch, finish_batch, land_chunk

    columns = ["metric", "value", "unit", "stage", "start", "end", "source_name", "device_class"]
    incoming = pd.DataFrame(rows, columns=columns).assign(user_id=user_id)
    incoming["start"] = incoming["start"] + "Z"
    incoming["end"] = incoming["end"] + "Z"
    with psycopg_connection(engine) as conn:
        batch = create_batch(conn, user_id, "test", "hand-written samples")
        finish_batch(conn, batch, land_chunk(conn, batch, split_for_landing(incoming)))


def daily_values(engine: Engine, user_id: str, day: str) -> dict[str, float]:
    """marts.daily of one user-day: metric -> value."""
    with psycopg_connection(engine) as conn:
        rows = conn.execute(
            "SELECT metric, value FROM marts.daily WHERE user_id = %s AND local_date = %s", (user_id, day)
        ).fetchall()
    return {str(m): float(v) for m, v in rows}
