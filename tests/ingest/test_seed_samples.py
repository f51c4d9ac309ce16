"""Samples in the seed's ``HealthSample`` shape: its device words name device classes, and the offset a
sample is written with is its zone unless that offset is UTC."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import psycopg
from fastapi.testclient import TestClient
from sqlalchemy.engine import URL

from api.main import create_app
from pipeline.accounts import create_api_key
from pipeline.infra.database import create_warehouse_engine, libpq_url
from pipeline.ingest.importer import import_file
from pipeline.ingest.landing import split_for_landing
from pipeline.samples.runner import aggregate_user_days, deduplicate_user_days
from tests.support.helpers import landed, new_user

# The seed's DEVICE_PRIORITY keys, highest first.
SEED_DEVICES = ["apple_watch", "iphone", "ipad", "third_party_wearable", "third_party_scale", "manual_entry"]


def run_pipeline(url: URL, users: list[str], days: list[dt.date]) -> None:
    user_days = pd.DataFrame([(u, d) for u in users for d in days], columns=["user_id", "local_date"])
    deduplicate_user_days(url, user_days)
    aggregate_user_days(url, user_days, "hourly")
    aggregate_user_days(url, user_days, "daily")


def daily(url: URL, user: str) -> dict[tuple[str, str], float]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT local_date::text, metric, value FROM marts.daily WHERE user_id = %s ORDER BY 1, 2", (user,)
        ).fetchall()
    return {(str(day), str(metric)): float(str(value)) for day, metric, value in rows}


def write_ndjson(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_the_seeds_device_words_rank_in_the_default_priority_order(warehouse_url: URL, tmp_path: Path) -> None:
    """Source k (0 = apple_watch ... 5 = manual_entry) counted minutes 0 to 10(k+1) after 10:00 at k+1 steps a
    minute. In the default order each source wins the ten minutes after the better ones stopped:
    10 + 20 + 30 + 40 + 50 + 60 = 210 steps. (Were the words not understood, manual_entry would win from minute 30
    on: 250.)"""
    engine = create_warehouse_engine(warehouse_url)
    user = new_user(engine, "UTC")
    start = pd.Timestamp("2026-03-02T10:00:00Z")
    records: list[dict[str, object]] = [
        {
            "type": "STEPS",
            "value": 10 * (k + 1) ** 2,
            "unit": "count",
            "startDate": start.isoformat(),
            "endDate": (start + pd.Timedelta(minutes=10 * (k + 1))).isoformat(),
            "sourceDevice": name,
        }
        for k, name in enumerate(SEED_DEVICES)
    ][::-1]
    assert import_file(engine, write_ndjson(tmp_path / "seed.ndjson", records), user).counts.landed == 6
    classes = landed(engine, user).set_index("source_name")["device_class"].to_dict()
    assert classes == {
        "apple_watch": "watch",
        "iphone": "phone",
        "ipad": "tablet",
        "third_party_wearable": "wearable",
        "third_party_scale": "scale_or_app",
        "manual_entry": "manual",
    }

    run_pipeline(warehouse_url, [user], [dt.date(2026, 3, 2)])
    assert daily(warehouse_url, user) == {("2026-03-02", "STEPS"): 210.0}
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        kept = dict(
            conn.execute(
                "SELECT device_class, kept FROM core.source_totals WHERE user_id = %s AND metric = 'STEPS'", (user,)
            ).fetchall()
        )
    assert kept == {
        "watch": 10.0,
        "phone": 20.0,
        "tablet": 30.0,
        "wearable": 40.0,
        "scale_or_app": 50.0,
        "manual": 60.0,
    }
    engine.dispose()


def test_a_device_class_field_takes_the_seed_words_and_unknown_words_are_refused() -> None:
    """deviceClass accepts the classes' own names and the seed's words (any case, spaces or hyphens for
    underscores); another word is a reject with its reason, never a silent default. Without a deviceClass, a source
    name that is not one of the words is classified as before."""
    rows = [
        ("apple_watch", None),
        ("Third-Party Scale", None),
        ("wearable", None),
        ("smart_ring", None),
        (None, "Anna's Apple Watch"),
        (None, "Fitbit Charge 6"),
        (None, "third_party_gizmo"),
        (None, "Manual Entry"),
    ]
    incoming = pd.DataFrame(
        {
            "user_id": "u",
            "metric": "STEPS",
            "value": 10,
            "unit": "count",
            "start": "2026-03-02T10:00:00Z",
            "end": "2026-03-02T10:01:00Z",
            "device_class": [given for given, _ in rows],
            "source_name": [name or "App" for _, name in rows],
        }
    )
    split = split_for_landing(incoming)
    assert split.accepted["device_class"].tolist() == [
        "watch",
        "scale_or_app",
        "wearable",
        "watch",
        "wearable",
        "scale_or_app",
        "manual",
    ]
    assert split.rejected["reason"].tolist() == ["unknown device class 'smart_ring'"]


def test_devices_register_with_the_seed_words_and_a_samples_own_word_outranks_the_devices_class(
    warehouse_url: URL,
) -> None:
    """A phone app syncs what the watch measured: a sample whose sourceDevice is a seed word keeps that class; a
    sample naming no class takes the registered device's."""
    engine = create_warehouse_engine(warehouse_url)
    user = new_user(engine, "UTC")
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        key = create_api_key(conn, user)
    headers = {"Authorization": f"Bearer {key}"}
    moment = {"startDate": "2026-03-02T10:00:00Z", "endDate": "2026-03-02T10:10:00Z", "unit": "count"}
    with TestClient(create_app(engine)) as client:
        put = client.put("/v1/me/devices/phone-1", headers=headers, json={"deviceClass": "iphone", "name": "Phone"})
        assert put.status_code == 201
        assert put.json()["deviceClass"] == "phone"
        bad = client.put("/v1/me/devices/x", headers=headers, json={"deviceClass": "toaster", "name": "X"})
        assert bad.status_code == 422
        synced = client.post(
            "/v1/me/devices/phone-1/sync",
            headers=headers,
            json={
                "samples": [
                    {"type": "STEPS", "value": 900, "sourceDevice": "apple_watch", **moment},
                    {"type": "STEPS", "value": 700, "sourceDevice": "Anna's phone", **moment},
                    {"type": "STEPS", "value": 500, "sourceDevice": "Anna's phone", "deviceClass": "manual", **moment},
                ]
            },
        )
        assert synced.json()["synced"] == 3
    classes = landed(engine, user).set_index("value")["device_class"].to_dict()
    assert classes == {900.0: "watch", 700.0: "phone", 500.0: "manual"}
    engine.dispose()


def test_a_samples_own_offset_is_its_zone_and_utc_falls_back_to_the_users_zone(
    warehouse_url: URL, tmp_path: Path
) -> None:
    """2026-03-11T03:30:00+02:00 is 01:30 UTC, 21:30 on 2026-03-10 in New York (EDT since 2026-03-08). Written with
    its +02:00 offset, the sample was taken at 03:30 local time and counts for 2026-03-11; the same instant written
    with Z says nothing of a zone, so it counts in the user's home zone, for 2026-03-10."""
    engine = create_warehouse_engine(warehouse_url)
    own, utc = new_user(engine, "America/New_York"), new_user(engine, "America/New_York")
    sample = {"type": "STEPS", "value": 500, "unit": "count", "sourceDevice": "Pixel 8"}
    import_file(
        engine,
        write_ndjson(
            tmp_path / "own.ndjson",
            [{**sample, "startDate": "2026-03-11T03:30:00+02:00", "endDate": "2026-03-11T03:40:00+02:00"}],
        ),
        own,
    )
    import_file(
        engine,
        write_ndjson(
            tmp_path / "utc.ndjson",
            [{**sample, "startDate": "2026-03-11T01:30:00Z", "endDate": "2026-03-11T01:40:00Z"}],
        ),
        utc,
    )
    assert landed(engine, own)["timezone"].tolist() == ["+02:00"]
    assert landed(engine, utc)["timezone"].isna().all()
    assert landed(engine, own)["start_utc"].tolist() == landed(engine, utc)["start_utc"].tolist()

    run_pipeline(warehouse_url, [own, utc], [dt.date(2026, 3, 10), dt.date(2026, 3, 11)])
    assert daily(warehouse_url, own) == {("2026-03-11", "STEPS"): 500.0}
    assert daily(warehouse_url, utc) == {("2026-03-10", "STEPS"): 500.0}
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        hour = conn.execute("SELECT local_hour::text FROM marts.hourly WHERE user_id = %s", (own,)).fetchone()
    assert hour == ("2026-03-11 03:00:00",)
    engine.dispose()


def test_device_sync_keeps_a_samples_own_offset_too(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    user = new_user(engine, "America/New_York")
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        key = create_api_key(conn, user)
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(engine)) as client:
        client.put("/v1/me/devices/cgm", headers=headers, json={"deviceClass": "wearable", "name": "CGM"})
        synced = client.post(
            "/v1/me/devices/cgm/sync",
            headers=headers,
            json={
                "samples": [
                    {
                        "type": "BLOOD_GLUCOSE",
                        "value": 104,
                        "unit": "mg/dL",
                        "startDate": "2026-03-11T03:30:00+02:00",
                        "endDate": "2026-03-11T03:30:00+02:00",
                    },
                    {
                        "type": "HEART_RATE",
                        "value": 61,
                        "unit": "bpm",
                        "startDate": "2026-03-11T01:30:00Z",
                        "endDate": "2026-03-11T01:30:00+00:00",
                    },
                ]
            },
        )
        assert synced.json()["synced"] == 2
    zones = landed(engine, user).set_index("metric")["timezone"]
    assert zones["BLOOD_GLUCOSE"] == "+02:00" and pd.isna(zones["HEART_RATE"])
    run_pipeline(warehouse_url, [user], [dt.date(2026, 3, 10), dt.date(2026, 3, 11)])
    assert daily(warehouse_url, user) == {("2026-03-10", "HEART_RATE"): 61.0, ("2026-03-11", "BLOOD_GLUCOSE"): 104.0}
    engine.dispose()


def test_which_offsets_are_a_zone() -> None:
    """Non-zero offsets become the zone (written +HH:MM); Z, +00:00 and -00:00 do not; a sample whose start and end
    carry different offsets (a night across a DST change) has no single fixed offset and falls back too; an IANA
    timezone field wins over any offset."""
    cases = [  # start, end, timezone field, expected zone
        ("2026-03-11T03:30:00+02:00", "2026-03-11T03:40:00+02:00", None, "+02:00"),
        ("2026-03-11T03:30:00+0530", "2026-03-11T03:40:00+0530", None, "+05:30"),
        ("2026-03-11T03:30:00.250-03", "2026-03-11T03:40:00-03", None, "-03:00"),
        ("2026-03-11T01:30:00Z", "2026-03-11T01:40:00Z", None, None),
        ("2026-03-11T01:30:00+00:00", "2026-03-11T01:40:00+00:00", None, None),
        ("2026-03-11T01:30:00-00:00", "2026-03-11T01:40:00-00:00", None, None),
        ("2026-03-07T23:00:00-05:00", "2026-03-08T07:00:00-04:00", None, None),
        ("2026-03-11T03:30:00+02:00", "2026-03-11T03:40:00+02:00", "Europe/Helsinki", "Europe/Helsinki"),
    ]
    incoming = pd.DataFrame(
        {
            "user_id": "u",
            "metric": "STEPS",
            "value": 10,
            "unit": "count",
            "start": [c[0] for c in cases],
            "end": [c[1] for c in cases],
            "timezone": [c[2] for c in cases],
            "source_name": "Pixel 8",
        }
    )
    split = split_for_landing(incoming)
    assert split.rejected.empty
    zones = split.accepted["timezone"].astype(object).where(split.accepted["timezone"].notna(), None).tolist()
    assert zones == [c[3] for c in cases]
