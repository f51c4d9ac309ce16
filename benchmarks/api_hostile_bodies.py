"""Time and peak memory of device syncs with hostile bodies: rejected samples with many distinct keys (the key
union once became a DataFrame column each, and every reject's payload carried all of them).

    HEALTHPIPE_DATABASE_URL=postgresql://... .venv/bin/python -m benchmarks.api_hostile_bodies

Each body runs in a fresh process (peak RSS is per process): the app in-process via Starlette's TestClient on a
scratch database. Printed: samples, body size, seconds, peak RSS of the process, bytes stored in raw.quarantine.
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


def measure(samples: int) -> dict[str, float]:
    body = amplification_body(samples)
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
            row = conn.execute("SELECT coalesce(sum(pg_column_size(q.*)), 0) FROM raw.quarantine q").fetchone()
        engine.dispose()
    assert response.status_code == 200, response.status_code
    return {
        "samples": samples,
        "body_kb": round(len(body) / 1024),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "quarantine_mb": round(int(str(row[0] if row else 0)) / 1e6, 2),
    }


def main() -> None:
    if len(sys.argv) > 1:
        print(json.dumps(measure(int(sys.argv[1]))), flush=True)
        return
    for samples in (1_000, 2_000):
        subprocess.run([sys.executable, "-m", "benchmarks.api_hostile_bodies", str(samples)], check=True)


if __name__ == "__main__":
    main()
