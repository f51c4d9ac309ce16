from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from pipeline.ingest.importer import import_file
from pipeline.ingest.landing import split_for_landing
from tests.support.helpers import landed, new_user


def test_ndjson_health_samples_land_and_broken_lines_are_quarantined(engine: Engine, tmp_path: Path) -> None:
    user = new_user(engine, "America/New_York")
    lines = [
        {
            "type": "STEPS",
            "value": 1200,
            "unit": "steps",
            "startDate": "2024-03-10T06:30:00-05:00",
            "endDate": "2024-03-10T07:30:00-05:00",
            "sourceDevice": "Pixel 8",
        },
        {
            "type": "DISTANCE",
            "value": 1.2,
            "unit": "km",
            "startDate": "2024-03-10T11:30:00Z",
            "endDate": "2024-03-10T12:30:00Z",
            "sourceDevice": "Pixel 8",
            "timezone": "America/New_York",
        },
        {
            "type": "SLEEP_ANALYSIS",
            "value": 420,
            "unit": "min",
            "startDate": "2024-03-09T23:00:00-05:00",
            "endDate": "2024-03-10T07:00:00-04:00",
            "sourceDevice": "Oura Ring",
            "stage": "asleep",
        },
        {
            "type": "WEIGHT",
            "value": 154.3,
            "unit": "lb",
            "startDate": "2024-03-10T07:00:00-04:00",
            "endDate": "2024-03-10T07:00:00-04:00",
            "sourceDevice": "Manual",
            "metadata": {"HKWasUserEntered": 1},
        },
        {
            "type": "HEART_RATE",
            "value": 70,
            "unit": "bpm",
            "startDate": "2024-03-10T07:00:00",
            "endDate": "2024-03-10T07:00:00",
            "sourceDevice": "Pixel 8",
        },
        {
            "type": "TEMPERATURE",
            "value": 37,
            "unit": "degC",
            "startDate": "2024-03-10T07:00:00Z",
            "endDate": "2024-03-10T07:00:00Z",
            "sourceDevice": "Pixel 8",
        },
    ]
    path = tmp_path / "samples.ndjson"
    path.write_text("\n".join([json.dumps(x) for x in lines] + ['{"type": "STEPS", "value": 5', "[1, 2]"]) + "\n")
    report = import_file(engine, path, user)
    c = report.counts
    assert (c.read, c.landed, c.rejected, c.duplicates) == (8, 4, 4, 0)
    with engine.connect() as conn:
        reasons = sorted(
            r[0]
            for r in conn.execute(text("SELECT reason FROM raw.quarantine WHERE batch_id = :b"), {"b": report.batch_id})
        )
    assert reasons == [
        "malformed JSON line",
        "malformed JSON line",
        "timestamp without UTC offset",
        "unknown metric type 'TEMPERATURE'",
    ]
    samples = landed(engine, user).set_index("metric")
    assert samples.loc["WEIGHT", "canonical"] == pytest.approx(69.98930, abs=1e-5)
    assert samples.loc["WEIGHT", "device_class"] == "manual"
    assert samples.loc["SLEEP_ANALYSIS", ["stage", "device_class"]].tolist() == ["asleep", "wearable"]
    assert samples.loc["STEPS", "device_class"] == "phone"
    assert samples.loc["DISTANCE", "timezone"] == "America/New_York"
    assert import_file(engine, path, user).counts.landed == 0


def test_csv_health_samples_with_a_user_column(engine: Engine, tmp_path: Path) -> None:
    alice, bob = new_user(engine, "UTC"), new_user(engine, "UTC")
    path = tmp_path / "samples.csv"
    path.write_text(
        "userId,type,value,unit,startDate,endDate,sourceDevice\n"
        f"{alice},STEPS,100,count,2024-01-01T10:00:00Z,2024-01-01T10:10:00Z,iPhone\n"
        f"{bob},STEPS,200,count,2024-01-01T10:00:00Z,2024-01-01T10:10:00Z,iPhone\n"
        f"nobody,STEPS,300,count,2024-01-01T10:00:00Z,2024-01-01T10:10:00Z,iPhone\n"
        f"{alice},STEPS,400,count,2024-01-01T11:00:00Z,2024-01-01T10:10:00Z,iPhone,extra,fields\n"
    )
    report = import_file(engine, path, None)
    assert (report.counts.read, report.counts.landed, report.counts.rejected) == (4, 2, 2)
    assert landed(engine, alice)["value"].tolist() == [100.0]
    assert landed(engine, bob)["value"].tolist() == [200.0]
    with engine.connect() as conn:
        reasons = sorted(
            r[0]
            for r in conn.execute(text("SELECT reason FROM raw.quarantine WHERE batch_id = :b"), {"b": report.batch_id})
        )
    assert reasons == ["malformed CSV row", "unknown user 'nobody'"]


def test_unknown_format_is_a_clear_error(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "samples.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(ValueError, match=r"cannot tell the format of samples\.parquet"):
        import_file(engine, path, "x")


def test_text_that_is_no_date_is_unparseable_not_a_date_without_offset() -> None:
    incoming = pd.DataFrame(
        {
            "user_id": ["anna"] * 2,
            "metric": ["STEPS"] * 2,
            "value": [10, 10],
            "unit": ["count"] * 2,
            "start": ["not a date", "2024-05-01T08:00:00"],
            "end": ["2024-05-01T08:10:00Z", "2024-05-01T08:10:00Z"],
        }
    )
    reasons = split_for_landing(incoming, "ISO8601").rejected["reason"].tolist()
    assert reasons == ["unparseable start date", "timestamp without UTC offset"]


def test_instants_before_1970_or_after_tomorrow_are_rejected_with_the_window() -> None:
    tomorrow = pd.Timestamp.now(tz="UTC").normalize() + pd.Timedelta(days=1)
    starts = [
        "0001-01-01T00:00:00Z",  # a client's zero date
        "0000-01-01T00:00:00Z",
        "9999-12-31T00:00:00Z",
        "1969-12-31T23:59:00Z",
        (tomorrow + pd.Timedelta(days=2)).isoformat(),
        "1970-01-01T00:00:00Z",  # the window's first instant: lands
        tomorrow.isoformat(),  # within a day of now: lands
    ]
    incoming = pd.DataFrame(
        {
            "user_id": "anna",
            "metric": "STEPS",
            "value": 10,
            "unit": "count",
            "start": starts,
            "end": starts,
        }
    )
    split = split_for_landing(incoming, "ISO8601")
    assert split.rejected.index.tolist() == [0, 1, 2, 3, 4]
    assert split.rejected["reason"].str.fullmatch(r"instant outside 1970-01-01 \.\. \d{4}-\d{2}-\d{2} \(UTC\)").all()
    assert len(split.accepted) == 2
