"""A killed import: its batch is not left running for ever. The import's session held an advisory lock on the
batch; once the server has ended that session, the next import or the batch sensor marks the batch abandoned,
counts what it landed, and the sensor takes it and every batch after it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dagster import AssetObservation, DagsterInstance, SensorResult, build_sensor_context
from sqlalchemy.engine import URL

from pipeline.accounts import create_user
from pipeline.definitions import defs
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.ingest.importer import import_file
from pipeline.samples.sensors import BATCHES_TAG, new_raw_batches

# Runs an import whose first chunk commits, then stalls (the test kills it there); prints the session's server pid.
_STALLING_IMPORT = """
import sys, time
from pathlib import Path
from pipeline.infra.database import create_warehouse_engine
from pipeline.ingest import importer

real = importer.write_chunk

def write_then_stall(conn, *args, **kwargs):
    counts = real(conn, *args, **kwargs)
    print(conn.info.backend_pid, counts.landed, flush=True)
    time.sleep(600)
    return counts

importer.write_chunk = write_then_stall
importer.import_file(create_warehouse_engine(sys.argv[1]), Path(sys.argv[2]), "anna", chunk_size=1000)
"""


def _steps_file(path: Path, hour: int, lines: int) -> Path:
    sample = {"type": "STEPS", "unit": "count", "sourceDevice": "iPhone"}
    rows = []
    for n in range(lines):
        start = f"2024-03-0{1 + hour // 24}T{hour % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
        rows.append(json.dumps(sample | {"value": n + 1, "startDate": start, "endDate": start}))
    path.write_text("\n".join(rows) + "\n")
    return path


def _kill_mid_import(url: URL, path: Path) -> None:
    """Start an import in another process, SIGKILL it once its first chunk (1,000 rows) is committed, and wait
    until the server has ended its session."""
    process = subprocess.Popen(
        [sys.executable, "-c", _STALLING_IMPORT, url.render_as_string(hide_password=False), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    backend_pid, landed = (int(word) for word in process.stdout.readline().split())
    assert landed == 1000
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    engine = create_warehouse_engine(url)
    with psycopg_connection(engine) as conn:
        for _ in range(600):  # the server notices the closed socket at once; allow it a moment
            if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (backend_pid,)).fetchone() == (0,):
                break
            time.sleep(0.05)
    engine.dispose()


def _batches(url: URL) -> list[tuple[object, ...]]:
    engine = create_warehouse_engine(url)
    with psycopg_connection(engine) as conn:
        rows = conn.execute(
            "SELECT batch_id, source, status, read_count, landed_count, duplicate_count, rejected_count, "
            "(SELECT count(*) FROM raw.samples s WHERE s.batch_id = b.batch_id) "
            "FROM app.ingest_batches b ORDER BY batch_id"
        ).fetchall()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_a_killed_import_is_abandoned_with_its_rows_counted_and_the_batch_sensor_goes_on(
    warehouse_url: URL, tmp_path: Path
) -> None:
    engine = create_warehouse_engine(warehouse_url)
    with psycopg_connection(engine) as conn:
        create_user(conn, "anna", "UTC")

    _kill_mid_import(warehouse_url, _steps_file(tmp_path / "first.ndjson", 8, 3000))
    assert _batches(warehouse_url) == [(1, "ndjson", "running", 0, 0, 0, 0, 1000)]

    # the next import sweeps it first
    report = import_file(engine, _steps_file(tmp_path / "second.ndjson", 30, 10), "anna")
    assert report.counts.landed == 10
    _kill_mid_import(warehouse_url, _steps_file(tmp_path / "third.ndjson", 50, 3000))
    assert _batches(warehouse_url) == [
        (1, "ndjson", "abandoned", 1000, 1000, 0, 0, 1000),
        (2, "ndjson", "done", 10, 10, 0, 0, 10),
        (3, "ndjson", "running", 0, 0, 0, 0, 1000),
    ]

    # the batch sensor sweeps batch 3 and takes all three (a running batch would hold back every batch after it)
    resources = {"warehouse": defs.resources["warehouse"]}  # type: ignore[index]
    with DagsterInstance.ephemeral() as instance:
        result = new_raw_batches(build_sensor_context(instance=instance, definitions=defs, resources=resources))
    assert isinstance(result, SensorResult)
    assert json.loads(result.cursor or "{}")["batch"] == 3
    observed = [
        (o.metadata["batch_id"].value, o.metadata["status"].value, o.metadata["landed"].value)
        for o in result.asset_events
        if isinstance(o, AssetObservation)
    ]
    assert observed == [(1, "abandoned", 1000), (2, "done", 10), (3, "abandoned", 1000)]
    assert _batches(warehouse_url)[2] == (3, "ndjson", "abandoned", 1000, 1000, 0, 0, 1000)
    assert result.run_requests and {request.tags[BATCHES_TAG] for request in result.run_requests} == {"1-3"}
    engine.dispose()
