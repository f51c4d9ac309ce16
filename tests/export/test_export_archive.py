"""A user's archive (pipeline/export/archive.py) holds everything held about them, and round-trips: its NDJSON,
imported into a fresh user with the archive's zone history, gives the same marts.daily once the pipeline ran over
both. Written as a stream in bounded chunks, through the API and the command, each an audit entry."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import URL

from api.main import create_app
from pipeline import accounts, profiles
from pipeline.audit.entries import entries_of
from pipeline.cli import main as cli
from pipeline.export import archive
from pipeline.export.archive import ExportCounts, archive_chunks
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.ingest.importer import import_file
from pipeline.synthetic.generator import SyntheticConfig, generate
from pipeline.synthetic.load import load_dataset
from tests.support.range_run import materialize_range
from tests.support.read_api import bearer

FIRST, DAYS = dt.date(2024, 3, 8), 4  # across the US DST change (10 March)
DAILY = """SELECT local_date, metric, value, sum, count, min, max, latest_value, latest_at, flagged_count
           FROM marts.daily WHERE user_id = %s ORDER BY local_date, metric"""


def _archive(url: URL, user: str) -> tuple[zipfile.ZipFile, ExportCounts, list[bytes]]:
    engine = create_warehouse_engine(url)
    counts = ExportCounts()
    with psycopg_connection(engine) as conn:
        chunks = list(archive_chunks(conn, user, counts))
    engine.dispose()
    return zipfile.ZipFile(io.BytesIO(b"".join(chunks))), counts, chunks


@pytest.mark.slow
def test_the_archive_round_trips_into_a_fresh_user_with_the_same_daily_marts(
    warehouse_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_warehouse_engine(warehouse_url)
    dataset = generate(SyntheticConfig(users=3, days=DAYS, start=FIRST, seed=11))
    load_dataset(engine, dataset)
    # the user who travels the most: their samples' local days depend on the zone history the archive carries
    user = str(dataset.timezone_history.groupby("user_id").size().idxmax())
    with psycopg_connection(engine) as conn:
        profiles.update_profile(conn, user, {"given_name": "Anna", "family_name": "Jansen"})
        accounts.create_api_key(conn, user, label="phone-app")
    last = FIRST + dt.timedelta(days=DAYS)
    assert materialize_range([user], FIRST - dt.timedelta(days=1), last)

    monkeypatch.setattr(archive, "CHUNK_BYTES", 16 * 1024)  # several chunks from a few days of samples
    zipped, counts, chunks = _archive(warehouse_url, user)
    # handed out as they fill (~90 kB deflated here): a chunk holds at most the limit and one deflate block
    assert len(chunks) >= 3 and max(map(len, chunks)) < 64 * 1024
    with psycopg_connection(engine) as conn:
        raw = conn.execute("SELECT count(*) FROM raw.samples WHERE user_id = %s", (user,)).fetchone()
        daily = conn.execute(DAILY, (user,)).fetchall()
        devices = accounts.list_devices(conn, user)
    assert raw is not None and raw[0] > 1000 and len(daily) > 20
    manifest = json.loads(zipped.read("manifest.json"))
    assert manifest["records"] == counts.files
    assert counts.files["samples.ndjson"] == raw[0] and counts.files["daily.csv"] == len(daily)
    assert counts.files["devices.json"] == len(devices) == len(json.loads(zipped.read("devices.json")))
    assert counts.files["api_keys.ndjson"] == 1 and "phone-app" in zipped.read("api_keys.ndjson").decode()
    profile = json.loads(zipped.read("profile.json"))
    assert (profile["givenName"], profile["familyName"], profile["userId"]) == ("Anna", "Jansen", user)
    assert len(profile["timezoneHistory"]) >= 1  # a trip: days abroad count in the zone they were in
    bundle = json.loads(zipped.read("fhir/Observation-bundle.json"))
    assert (
        bundle["resourceType"] == "Bundle"
        and bundle["total"] == len(daily) == counts.files["fhir/Observation-bundle.json"]
    )
    assert json.loads(zipped.read("fhir/Patient.json"))["name"][0]["family"] == "Jansen"
    rows = list(csv.DictReader(io.StringIO(zipped.read("daily.csv").decode())))
    assert [(r["local_date"], r["metric"], float(r["value"])) for r in rows] == [(str(d[0]), d[1], d[2]) for d in daily]

    # a fresh user with the archive's home zone and zone history, fed the archive's samples
    copy = "copy_of_" + user
    with psycopg_connection(engine) as conn:
        accounts.create_user(conn, copy, profile["homeTimezone"])
        for moved in profile["timezoneHistory"]:
            conn.execute(
                "INSERT INTO app.user_timezones (user_id, valid_from, timezone) VALUES (%s, %s, %s)",
                (copy, dt.datetime.fromisoformat(moved["validFrom"]), moved["timezone"]),
            )
    samples = tmp_path / "samples.ndjson"
    samples.write_bytes(zipped.read("samples.ndjson"))
    report = import_file(engine, samples, copy)
    assert report.counts.landed == raw[0] and report.counts.rejected == 0
    assert materialize_range([copy], FIRST - dt.timedelta(days=1), last)
    with psycopg_connection(engine) as conn:
        assert conn.execute(DAILY, (copy,)).fetchall() == daily
    engine.dispose()


def test_the_api_and_the_command_export_the_callers_archive_and_each_is_an_audit_entry(
    warehouse_url: URL, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_warehouse_engine(warehouse_url)
    with psycopg_connection(engine) as conn:
        accounts.create_user(conn, "ex1", "Europe/Amsterdam", "Ex One")
        accounts.create_user(conn, "ex2", "UTC")
        accounts.register_device(conn, "ex1", "watch-1", "watch", "Watch 1")
        key = accounts.create_api_key(conn, "ex1")
        conn.execute(
            """INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count, min, max, flagged_count)
               VALUES ('ex1', '2024-05-01', 'STEPS', 5000, 5000, 3, 1000, 3000, 0),
                      ('ex2', '2024-05-01', 'STEPS', 7777, 7777, 1, 7777, 7777, 0)"""
        )
    with TestClient(create_app(engine)) as client:
        answer = client.get("/v1/me/export", headers=bearer(key))
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
        assert answer.headers["content-disposition"].startswith('attachment; filename="healthpipe-export-')
        assert client.get("/v1/me/export").status_code == 401
    zipped = zipfile.ZipFile(io.BytesIO(answer.content))
    assert zipped.read("daily.csv").decode().splitlines()[1].startswith("2024-05-01,STEPS,5000,")
    assert "7777" not in zipped.read("daily.csv").decode()  # nothing of another user
    assert json.loads(zipped.read("devices.json"))[0]["name"] == "Watch 1"
    # profile, device, key, daily row, FHIR Patient, one Observation; no samples, shares, insights
    assert json.loads(zipped.read("manifest.json"))["records"]["fhir/Observation-bundle.json"] == 1

    output = tmp_path / "ex1.zip"
    assert cli(["users", "export", "ex1", "--output", str(output)]) == 0
    exported = zipfile.ZipFile(output)
    assert exported.read("daily.csv") == zipped.read("daily.csv") and zipped.read("audit.ndjson") == b""
    (read,) = [json.loads(line) for line in exported.read("audit.ndjson").splitlines()]
    assert (read["route"], read["status"], read["records"]) == ("/v1/me/export", 200, 6)
    assert not (tmp_path / "ex1.zip.partial").exists()
    assert output.stat().st_mode & 0o777 == 0o600  # decrypted personal data: its owner's eyes only
    assert cli(["users", "export", "nobody", "--output", str(tmp_path / "n.zip")]) == 2
    assert not (tmp_path / "n.zip").exists() and not (tmp_path / "n.zip.partial").exists()
    with psycopg_connection(engine) as conn:
        entries = entries_of(conn, "ex1", 10)
    assert [(e.channel, e.route, e.status, e.records) for e in entries] == [
        ("cli", "healthpipe users export", 0, 7),  # and the API's export, in audit.ndjson now
        ("api", "/v1/me/export", 200, 6),
    ]
    capsys.readouterr()
    assert cli(["audit", "ex1"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 3 and "RUN healthpipe users export" in listed[1] and "GET /v1/me/export" in listed[2]
    assert listed[2].split()[-2:] == ["200", "6"] and f"key {key[:11]}" in listed[2]  # as keys list names it
    assert cli(["audit", "nobody"]) == 2
    engine.dispose()


def test_the_archive_holds_the_samples_metadata_and_the_quarantined_lines_decrypted(
    warehouse_url: URL, tmp_path: Path
) -> None:
    """Metadata and quarantined payloads are sealed in the database (docs/privacy.md); the archive gives them back as
    the user sent them."""
    engine = create_warehouse_engine(warehouse_url)
    with psycopg_connection(engine) as conn:
        accounts.create_user(conn, "meta1", "UTC")
    sent = [
        {"value": 120, "startDate": "2024-05-01T08:00:00Z", "metadata": {"note": "morning walk"}},
        {"value": 80, "startDate": "2024-05-01T09:00:00Z"},
        {"value": "lots", "startDate": "2024-05-01T10:00:00Z"},
    ]
    lines = [{"type": "STEPS", "unit": "count", "endDate": s["startDate"], "sourceDevice": "Watch", **s} for s in sent]
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = import_file(engine, source, "meta1")
    assert (report.counts.landed, report.counts.rejected) == (2, 1)

    zipped, counts, _ = _archive(warehouse_url, "meta1")
    samples = [json.loads(line) for line in zipped.read("samples.ndjson").splitlines()]
    assert [(s["value"], s["metadata"]) for s in samples] == [(120, {"note": "morning walk"}), (80, None)]
    (quarantined,) = [json.loads(line) for line in zipped.read("quarantine.ndjson").splitlines()]
    assert "lots" in json.dumps(quarantined["payload"]) and counts.files["quarantine.ndjson"] == 1
    engine.dispose()
