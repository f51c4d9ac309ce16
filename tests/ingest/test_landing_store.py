"""The COPY store: identities stay what they have always been, and the plain-insert fast path counts repeats."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, text

from pipeline.infra.database import psycopg_connection
from pipeline.ingest.importer import import_file
from pipeline.ingest.landing import split_for_landing
from pipeline.ingest.store import create_batch, prepare_chunk, write_chunk
from pipeline.privacy.keyring import keyring_for
from pipeline.privacy.reads import quarantined
from tests.support.helpers import APPLE_HEADER, apple_record, new_user


def _identity(*parts: str, app: str | None = None) -> uuid.UUID:
    digest = hashlib.md5("|".join(parts).encode(), usedforsecurity=False).hexdigest()
    if app:  # a row with a source app: its app-less identity's hex digits, '|', the app (migration 0006)
        digest = hashlib.md5(f"{digest}|{app}".encode(), usedforsecurity=False).hexdigest()
    return uuid.UUID(digest)


def test_identities_hash_the_same_text_as_every_landed_row_before(engine: Engine, tmp_path: Path) -> None:
    """The identity is md5 over user|metric|source|device|start us|end us|value text|unit|stage|external id, the
    value written in Arrow's shortest round-trip form ("97", "1e-7", "0.000025", "1e+21"; PostgreSQL would write
    "1e-07" and "2.5e-05"). Landed rows carry these identities: any other text would land a re-import twice.
    A row with a source app (every Apple record: its source name, and version when written) hashes that identity's
    hex digits with '|' and the app, as migration 0006 gave the rows landed before."""
    user = new_user(engine, "UTC")
    values = ["97.0", "1e-7", "0.000025", "1e21", "1234567.5"]
    body = "".join(
        apple_record(
            "HKQuantityTypeIdentifierStepCount",
            value,
            "count",
            f"2024-03-01 10:0{i}:00 +0100",
            f"2024-03-01 10:0{i}:30 +0100",
            source="Apple\u00a0Watch",
        )
        for i, value in enumerate(values)
    ) + apple_record(
        "HKCategoryTypeIdentifierSleepAnalysis",
        "HKCategoryValueSleepAnalysisAsleepCore",
        None,
        "2024-03-01 01:00:00 +0100",
        "2024-03-01 02:25:00 +0100",
        meta={"HKTimeZone": "Europe/Berlin"},
    )
    path = tmp_path / "export.xml"
    path.write_text(APPLE_HEADER + body + "</HealthData>\n", encoding="utf-8")
    assert import_file(engine, path, user).counts.landed == 6

    start = int(pd.Timestamp("2024-03-01 09:00:00", tz="UTC").value // 1000)
    expected = {
        _identity(
            user,
            "STEPS",
            "Apple\u00a0Watch",
            "",
            str(start + i * 60_000_000),
            str(start + i * 60_000_000 + 30_000_000),
            value_text,
            "count",
            "",
            f"2024-03-01 10:0{i}:30 +0100",
            app="Apple\u00a0Watch",
        )
        for i, value_text in enumerate(["97", "1e-7", "0.000025", "1e+21", "1234567.5"])
    }
    sleep_start = int(pd.Timestamp("2024-03-01 00:00:00", tz="UTC").value // 1000)
    expected.add(
        _identity(
            user,
            "SLEEP_ANALYSIS",
            "Test iPhone",
            "",
            str(sleep_start),
            str(sleep_start + 85 * 60_000_000),
            "85",
            "min",
            "core",
            "2024-03-01 02:25:00 +0100",
            app="Test iPhone",
        )
    )
    with engine.connect() as conn:
        identities = set(
            conn.execute(text("SELECT identity FROM raw.samples WHERE user_id = :u"), {"u": user}).scalars()
        )
    assert identities == expected


def test_the_plain_insert_falls_back_to_on_conflict_on_a_repeat(engine: Engine) -> None:
    user = new_user(engine, "UTC")
    incoming = pd.DataFrame(
        {
            "user_id": user,
            "metric": "HEART_RATE",
            "value": [60.0, 61.0, 60.0],  # the third repeats the first
            "unit": "count/min",
            "start": ["2024-03-01T10:00:00Z", "2024-03-01T10:01:00Z", "2024-03-01T10:00:00Z"],
            "end": ["2024-03-01T10:00:00Z", "2024-03-01T10:01:00Z", "2024-03-01T10:00:00Z"],
            "source_name": "Polar H10",
        }
    )
    with psycopg_connection(engine) as conn:
        batch = create_batch(conn, user, "test", None)
        first = write_chunk(conn, batch, prepare_chunk(split_for_landing(incoming), keyring_for(conn)), expect_new=True)
        assert (first.read, first.landed, first.duplicates) == (3, 2, 1)
        again = write_chunk(
            conn, batch, prepare_chunk(split_for_landing(incoming.iloc[:2]), keyring_for(conn)), expect_new=True
        )
        assert (again.read, again.landed, again.duplicates) == (2, 0, 2)
        fresh = incoming.iloc[:1].assign(start="2024-03-01T11:00:00Z", end="2024-03-01T11:00:00Z")
        new = write_chunk(conn, batch, prepare_chunk(split_for_landing(fresh), keyring_for(conn)), expect_new=True)
        assert (new.read, new.landed, new.duplicates) == (1, 1, 0)
        count = conn.execute("SELECT count(*) FROM raw.samples WHERE user_id = %s", (user,)).fetchone()
    assert count == (3,)


def test_rows_of_unknown_users_are_quarantined_on_the_plain_path_too(engine: Engine) -> None:
    user = new_user(engine, "UTC")
    incoming = pd.DataFrame(
        {
            "user_id": [user, "nobody_here"],
            "metric": "STEPS",
            "value": [10, 20],
            "unit": "count",
            "start": "2024-03-01T10:00:00Z",
            "end": "2024-03-01T10:01:00Z",
            "source_name": "Phone",
            "metadata": [None, '{"note": "x"}'],
        }
    )
    with psycopg_connection(engine) as conn:
        batch = create_batch(conn, user, "test", None)
        counts = write_chunk(
            conn, batch, prepare_chunk(split_for_landing(incoming), keyring_for(conn)), expect_new=True
        )
        rows = quarantined(conn, batch_id=batch)
    assert (counts.read, counts.landed, counts.rejected, counts.duplicates) == (2, 1, 1, 0)
    assert rows[0].reason == "unknown user 'nobody_here'"
    payload = json.loads(rows[0].payload)
    assert payload["metadata"] == {"note": "x"} and payload["value"] == 20


def test_the_import_command_loads_neither_dagster_nor_great_expectations() -> None:
    """They cost `healthpipe import` a second of start-up and ~45 MB resident, for nothing it uses."""
    probe = (
        "import sys, pipeline.cli, pipeline.ingest.importer\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'great_expectations'}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
