"""Time and peak memory of device syncs with hostile bodies: rejected samples with many distinct keys (the key
union once became a DataFrame column each, and every reject's payload carried all of them).

    HEALTHPIPE_DATABASE_URL=postgresql://... .venv/bin/python -m benchmarks.api_hostile_bodies

Each body runs in a fresh process (peak RSS is per process): the app in-process via Starlette's TestClient on a
scratch database. Printed: samples, body size, seconds, peak RSS of the process, bytes stored in raw.quarantine
(with the sealed chunks holding its payloads).
A body of 10,000 valid samples is the yardstick: the everyday sync's time in the same run.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

from fastapi.testclient import TestClient

from api.main import create_app
from benchmarks.common import scratch_database
from pipeline.accounts import create_api_key, create_user, register_device
from pipeline.infra.database import create_warehouse_engine, psycopg_connection

KEYS_PER_SAMPLE = 10


def amplification_body(samples: int) -> bytes:
    """``samples`` rejected samples (unknown type), each with ``KEYS_PER_SAMPLE`` keys no other sample has."""
    return json.dumps(
        {
            "samples": [
                {"type": "NOT_A_TYPE", **{f"k{i}_{j}": j for j in range(KEYS_PER_SAMPLE)}} for i in range(samples)
            ]
        }
    ).encode()


def valid_body(samples: int) -> bytes:
    """``samples`` valid step samples a minute apart, with a small metadata object each: the everyday sync."""
    start = 1_714_550_400  # 2024-05-01T08:00:00Z
    return json.dumps(
        {
            "samples": [
                {
                    "type": "STEPS",
                    "value": 10 + i % 50,
                    "unit": "count",
                    "startDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 60 * i)),
                    "endDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 60 * i + 59)),
                    "sourceDevice": "Anna's iPhone",
                    "metadata": {"HKWasUserEntered": 0, "note": f"n{i}"},
                }
                for i in range(samples)
            ]
        }
    ).encode()


def measure(kind: str, samples: int) -> dict[str, float | str]:
    body = (amplification_body if kind == "rejected" else valid_body)(samples)
    with scratch_database() as url:
        engine = create_warehouse_engine(url)
        with psycopg_connection(engine) as conn:
            create_user(conn, "bench", "UTC")
            register_device(conn, "bench", "phone-1", "phone", "Phone")
            key = create_api_key(conn, "bench", False)
        with TestClient(create_app(engine)) as client:
            started = time.perf_counter()
            response = client.post(
                "/v1/me/devices/phone-1/sync",
                content=body,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            seconds = time.perf_counter() - started
        with psycopg_connection(engine) as conn:
            # the rows and their payloads, which are sealed in raw.sealed_chunks (a chunk per user and request chunk)
            row = conn.execute(
                """SELECT (SELECT coalesce(sum(pg_column_size(q.*)), 0) FROM raw.quarantine q)
                        + (SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM raw.sealed_chunks c)"""
            ).fetchone()
        engine.dispose()
    assert response.status_code == 200, response.status_code
    return {
        "body": kind,
        "samples": samples,
        "body_kb": round(len(body) / 1024),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "quarantine_mb": round(int(str(row[0] if row else 0)) / 1e6, 2),
    }


def main() -> None:
    if len(sys.argv) > 2:
        print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))), flush=True)
        return
    for kind, samples in (("rejected", 1_000), ("rejected", 2_000), ("valid", 10_000)):
        subprocess.run([sys.executable, "-m", "benchmarks.api_hostile_bodies", kind, str(samples)], check=True)


if __name__ == "__main__":
    main()
