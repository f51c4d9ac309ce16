"""Two apps writing the same reading: raw keeps both rows, the discrete matching keeps one and records which
won; migration 0006 gives rows landed before their new identity without losing or duplicating any."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
from sqlalchemy.engine import URL

from pipeline.infra.database import create_warehouse_engine, libpq_url
from pipeline.infra.migrations import current_version, migrate
from pipeline.ingest.importer import import_file
from pipeline.samples.runner import aggregate_user_days, deduplicate_user_days
from tests.support.helpers import APPLE_HEADER, apple_record, landed, new_user

GLUCOSE = {
    "type": "BLOOD_GLUCOSE",
    "value": 104,
    "unit": "mg/dL",
    "startDate": "2026-03-02T08:00:00Z",
    "endDate": "2026-03-02T08:00:00Z",
    "sourceDevice": "Dexcom G7",
}


def write_ndjson(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_two_apps_writing_the_same_reading_are_two_raw_rows_and_one_kept_reading(
    warehouse_url: URL, tmp_path: Path
) -> None:
    engine = create_warehouse_engine(warehouse_url)
    user = new_user(engine, "UTC")
    path = write_ndjson(
        tmp_path / "glucose.ndjson",
        [{**GLUCOSE, "sourceApp": "Glucose Buddy"}, {**GLUCOSE, "sourceApp": "Dexcom"}],
    )
    assert import_file(engine, path, user).counts.landed == 2
    assert import_file(engine, path, user).counts.landed == 0  # still idempotent
    raw = landed(engine, user)
    assert sorted(raw["source_app"]) == ["Dexcom", "Glucose Buddy"]
    assert set(raw["device_class"]) == {"wearable"}
    app_of = {str(identity): app for identity, app in zip(raw["identity"], raw["source_app"], strict=True)}

    day = pd.DataFrame({"user_id": [user], "local_date": [dt.date(2026, 3, 2)]})
    summary = deduplicate_user_days(warehouse_url, day)
    assert (summary.raw_rows, summary.accepted, summary.exact_duplicates) == (2, 2, 0)
    aggregate_user_days(warehouse_url, day, "hourly")
    aggregate_user_days(warehouse_url, day, "daily")
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        readings = conn.execute(
            "SELECT identity::text, kept, matched_identity::text FROM core.readings WHERE user_id = %s ORDER BY kept",
            (user,),
        ).fetchall()
        daily = conn.execute(
            "SELECT value, count FROM marts.daily WHERE user_id = %s AND metric = 'BLOOD_GLUCOSE'", (user,)
        ).fetchall()
    (loser, loser_kept, matched), (winner, winner_kept, nothing) = readings
    assert (loser_kept, winner_kept, nothing) == (False, True, None)
    assert matched == winner  # the cross-app match is recorded
    assert (app_of[winner], app_of[loser]) == ("Dexcom", "Glucose Buddy")  # ties go to the app name, in order
    assert daily == [(104.0, 1)]
    engine.dispose()


# The identity as every row landed before migration 0006 carries it (the source app left out). PostgreSQL writes these
# integral values as Arrow does ("104"), so it is the landing's text.
OLD_IDENTITY = """md5(user_id || '|' || metric || '|' || source_name || '|' || coalesce(device, '') || '|'
    || (extract(epoch FROM start_utc) * 1000000)::bigint || '|' || (extract(epoch FROM end_utc) * 1000000)::bigint
    || '|' || value::text || '|' || unit || '|' || coalesce(stage, '') || '|' || coalesce(external_id, ''))::uuid"""
KEY, ROWS = "metric, source_name, value", "FROM raw.samples"  # one row per key in this test
TABLES = ("raw.samples", "core.readings", "core.slices", "core.rejections")


def with_app(identity: str, app: str) -> str:
    return str(uuid.UUID(hashlib.md5(f"{identity.replace('-', '')}|{app}".encode(), usedforsecurity=False).hexdigest()))


def counts(url: URL) -> dict[str, int]:
    with psycopg.connect(libpq_url(url)) as conn:
        return {t: int(str(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])) for t in TABLES}  # type: ignore[index]


DATA_VERSIONS_TABLE = """CREATE TABLE app.user_data_versions (
    user_id text PRIMARY KEY, version bigint NOT NULL DEFAULT 1, changed_at timestamptz NOT NULL DEFAULT now())"""
# and where it puts samples' metadata (migration 0018): sealed chunks, referenced by two columns of raw.samples
SEALED_METADATA = """CREATE TABLE raw.sealed_chunks (chunk_id uuid PRIMARY KEY, user_id text, sealed bytea NOT NULL,
    sealed_at timestamptz NOT NULL DEFAULT now());
ALTER TABLE raw.samples ADD COLUMN metadata_chunk uuid, ADD COLUMN metadata_slot integer"""
# and what it reads of the monthly tables of raw.samples (migration 0022): the retention cutoff, and the function
# making month tables (a no-op on the table not yet partitioned)
MONTH_TABLES = """CREATE TABLE raw.sample_retention (only_row boolean PRIMARY KEY DEFAULT true, before date NOT NULL);
CREATE FUNCTION raw.add_sample_months(date[]) RETURNS integer LANGUAGE sql AS 'SELECT 0'"""


def test_0006_gives_rows_landed_before_their_new_identity_without_losing_or_duplicating_any(
    make_database: Callable[[], URL], tmp_path: Path
) -> None:
    url = make_database()
    migrate(url, target=5)
    assert current_version(url) == 5
    engine = create_warehouse_engine(url)
    user = new_user(engine, "UTC")
    at = {"startDate": "2026-03-02T08:00:00Z", "endDate": "2026-03-02T08:00:00Z"}
    ndjson = write_ndjson(
        tmp_path / "samples.ndjson",
        [
            {**GLUCOSE, "sourceApp": "Dexcom"},
            {"type": "STEPS", "value": 300, "unit": "count", "sourceDevice": "Pixel 8", **at},  # no app
            {"type": "HEART_RATE", "value": 62, "unit": "bpm", "sourceDevice": "Anna's Apple Watch", **at},
            {"type": "HEART_RATE", "value": 62, "unit": "bpm", "sourceDevice": "Polar H10", "sourceApp": "Beat", **at},
            {"type": "HEART_RATE", "value": 400, "unit": "bpm", "sourceDevice": "Polar H10", "sourceApp": "Beat", **at},
        ],
    )
    export = tmp_path / "export.xml"
    export.write_text(
        APPLE_HEADER
        + apple_record(
            "HKQuantityTypeIdentifierStepCount", "97", "count", "2026-03-02 09:00:00 +0100", "2026-03-02 09:10:00 +0100"
        )
        + "</HealthData>\n",
        encoding="utf-8",
    )
    # today's landing also advances data versions (migration 0014's table): lend it the table for these imports only
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(DATA_VERSIONS_TABLE)
        conn.execute(SEALED_METADATA)
        conn.execute(MONTH_TABLES)
    assert import_file(engine, ndjson, user).counts.landed == 5
    assert import_file(engine, export, user).counts.landed == 1
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("DROP TABLE app.user_data_versions")
        conn.execute("DROP TABLE raw.sealed_chunks")
        conn.execute("DROP TABLE raw.sample_retention; DROP FUNCTION raw.add_sample_months(date[])")
        conn.execute("ALTER TABLE raw.samples DROP COLUMN metadata_chunk, DROP COLUMN metadata_slot")
    with psycopg.connect(libpq_url(url)) as conn:
        # as the landing before migration 0006 wrote them, and core rows referring to them as the pipeline wrote them
        conn.execute(f"UPDATE raw.samples SET identity = {OLD_IDENTITY}")
        conn.execute(
            """INSERT INTO core.readings (user_id, local_date, metric, start_utc, local_hour, hour_start_utc, value,
                   source_name, device_class, identity, kept, matched_identity)
               SELECT s.user_id, '2026-03-02', s.metric, s.start_utc, '2026-03-02 08:00', s.start_utc, s.value,
                   s.source_name, s.device_class, s.identity, s.device_class = 'watch' OR s.metric = 'BLOOD_GLUCOSE',
                   CASE WHEN s.device_class <> 'watch' AND s.metric = 'HEART_RATE' THEN w.identity END
               FROM raw.samples s
               JOIN raw.samples w ON w.device_class = 'watch'
               WHERE s.metric IN ('HEART_RATE', 'BLOOD_GLUCOSE') AND s.value < 300"""
        )
        conn.execute(
            """INSERT INTO core.slices (user_id, local_date, metric, slice_start_utc, slice_end_utc, local_hour,
                   hour_start_utc, value, source_name, device_class, identity, won)
               SELECT user_id, '2026-03-02', metric, start_utc, end_utc, '2026-03-02 08:00', start_utc, value,
                   source_name, device_class, identity, true
               FROM raw.samples WHERE metric = 'STEPS'"""
        )
        conn.execute(
            """INSERT INTO core.rejections (user_id, local_date, identity, metric, reason)
               SELECT user_id, '2026-03-02', identity, metric, 'implausible' FROM raw.samples WHERE value = 400"""
        )
        old = {(m, n, v): (i, a) for m, n, v, i, a in conn.execute(f"SELECT {KEY}, identity::text, source_app {ROWS}")}
    before = counts(url)
    assert before == {"raw.samples": 6, "core.readings": 3, "core.slices": 2, "core.rejections": 1}

    assert migrate(url, target=6).applied == (6,)
    assert counts(url) == before
    with psycopg.connect(libpq_url(url)) as conn:
        new = {(m, n, v): i for m, n, v, i in conn.execute(f"SELECT {KEY}, identity::text {ROWS}")}
        dangling = conn.execute(
            """SELECT count(*) FROM (
                   SELECT identity FROM core.readings UNION ALL SELECT matched_identity FROM core.readings
                   UNION ALL SELECT identity FROM core.slices UNION ALL SELECT identity FROM core.rejections
               ) refs WHERE identity IS NOT NULL AND identity NOT IN (SELECT identity FROM raw.samples)"""
        ).fetchone()
        matched = conn.execute(
            """SELECT w.source_name FROM core.readings r JOIN raw.samples w ON w.identity = r.matched_identity"""
        ).fetchall()
    # rows without an app keep their identity; the others: md5 of the old identity's hex digits, '|', the app
    assert new == {key: identity if app is None else with_app(identity, app) for key, (identity, app) in old.items()}
    assert len(set(new.values())) == 6
    assert dangling == (0,)
    assert matched == [("Anna's Apple Watch",)]

    migrate(url)  # and on to the newest schema
    assert import_file(engine, ndjson, user).counts.landed == 0
    assert import_file(engine, export, user).counts.landed == 0
    assert counts(url) == before
    engine.dispose()
