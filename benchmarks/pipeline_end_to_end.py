"""End-to-end pipeline throughput (load -> validate -> deduplicate -> aggregate) against a floor measured in the same
run on the same server.

    .venv/bin/python -m benchmarks.pipeline_end_to_end [--users 50] [--days 60]

`benchmarks.report` runs it and records what `main` returns in docs/benchmarks/history.jsonl.

Untimed setup: synthetic data (about 1,300 samples per user-day) is generated and landed in raw.samples.
Floor: COPY the same raw rows into a table and one SQL GROUP BY into hourly buckets. "The same raw
rows" are the columns the pipeline reads (identity, user, metric, value, unit, stage, start, end, zone, source,
device); they go into a temporary table (no WAL: the cheapest COPY target), and the target is judged against this
floor. A narrower floor of six columns is printed beside it for reference.
Pipeline: every user-day recomputed the way the assets do it (runner.py: chunks of CHUNK_USER_DAYS with loading,
computing and writing overlapped; the SQL models two chunks at a time), in this process.
Target: at least 100,000 samples/s and within 3x the floor.
Then the dbt marts as a range run builds them (its user-days under a run id, one `dbt build` with its tests, dbt's
start-up and the re-parse of what the run id changes included), timed apart: they may add at most 25 % to the
pipeline's wall time. The Dagster bookkeeping of a real run (a materialization per user-day and asset) is not in it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import scratch_database
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.marts.project import reuse_parse, run_dbt
from pipeline.marts.scope import run_scope
from pipeline.samples.process import Summary
from pipeline.samples.runner import CHUNK_USER_DAYS, aggregate_user_days, deduplicate_user_days
from pipeline.synthetic.generator import SyntheticConfig, generate
from pipeline.synthetic.load import load_dataset

FLOORS = {
    "same columns": "identity uuid, user_id text, metric text, value float8, unit text, stage text, "
    "start_utc timestamptz, end_utc timestamptz, timezone text, source_name text, device_class text",
    "six columns": "user_id text, metric text, value float8, unit text, start_utc timestamptz, end_utc timestamptz",
}


def raw_csv(conn, columns: str) -> bytes:  # type: ignore[no-untyped-def]
    names = ", ".join(column.split()[0] for column in columns.split(", "))
    buffer = io.BytesIO()
    with conn.cursor().copy(f"COPY (SELECT {names} FROM raw.samples) TO STDOUT WITH (FORMAT csv)".encode()) as copy:
        for chunk in copy:
            buffer.write(chunk)
    return buffer.getvalue()


def floor_seconds(conn, columns: str, csv: bytes) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    with conn.transaction():
        conn.execute(f"CREATE TEMP TABLE floor_raw ({columns}) ON COMMIT DROP".encode())
        with conn.cursor().copy(b"COPY floor_raw FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(csv)
        conn.execute(
            "CREATE TEMP TABLE floor_hourly ON COMMIT DROP AS SELECT user_id, metric, date_trunc('hour', start_utc) "
            "AS hour, sum(value) AS sum, count(*) AS count FROM floor_raw GROUP BY 1, 2, 3"
        )
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print its results and return them: sizes, the two floors, the pipeline's seconds,
    samples/s, its ratios to the floors and where the time went."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args(argv)
    with scratch_database() as url:
        engine = create_warehouse_engine(url)
        t = time.perf_counter()
        dataset = generate(SyntheticConfig(users=args.users, days=args.days, start=dt.date(2024, 3, 4), seed=7))
        print(f"generated {len(dataset.samples):,} samples in {time.perf_counter() - t:.1f}s", flush=True)
        t = time.perf_counter()
        load_dataset(engine, dataset)
        print(f"landed in {time.perf_counter() - t:.1f}s", flush=True)
        user_days = dataset.truth[["user_id", "local_date"]].sort_values(["user_id", "local_date"])
        floors: dict[str, float] = {}
        with psycopg_connection(engine) as conn:
            raw_rows = conn.execute("SELECT count(*) FROM raw.samples").fetchone()[0]  # type: ignore[index]
            for name, columns in FLOORS.items():
                floors[name] = floor_seconds(conn, columns, raw_csv(conn, columns))
                print(
                    f"floor ({name}): {raw_rows:,} rows COPY + GROUP BY in {floors[name]:.1f}s = "
                    f"{raw_rows / floors[name]:,.0f} samples/s",
                    flush=True,
                )
        floor = floors["same columns"]
        t = time.perf_counter()
        import great_expectations  # noqa: F401  (a one-off per process, like the interpreter's start: not measured)

        print(f"great_expectations imported in {time.perf_counter() - t:.1f}s (not measured)")
        print(f"pipeline: chunks of {CHUNK_USER_DAYS} user-days", flush=True)
        started = time.perf_counter()

        def progress(summary: Summary) -> None:
            elapsed = time.perf_counter() - started
            print(f"  {summary.partitions:,}/{len(user_days):,} user-days deduplicated, {elapsed:.1f}s", flush=True)

        summary = deduplicate_user_days(url, user_days, progress)
        phases = {f"{name} (overlapped)": seconds for name, seconds in summary.seconds.items()}
        phases["deduplicate wall"] = time.perf_counter() - started
        t = time.perf_counter()
        aggregate_user_days(url, user_days, "hourly")
        phases["hourly (SQL)"] = time.perf_counter() - t
        t = time.perf_counter()
        aggregate_user_days(url, user_days, "daily")
        phases["daily (SQL)"] = time.perf_counter() - t
        total = time.perf_counter() - started
        with tempfile.TemporaryDirectory(prefix="dbt-") as folder:
            saved, target = Path(folder) / "saved", Path(folder) / "run"
            run_dbt(["parse"], saved, url)  # untimed: what an earlier run left behind (the first run parses it all)
            t = time.perf_counter()
            with run_scope(engine, run_id := uuid.uuid4().hex, user_days):
                reuse_parse(saved, target)
                run_dbt(["build"], target, url, run_id=run_id)
            dbt_seconds = time.perf_counter() - t
        print(
            f"\npipeline: {len(user_days):,} user-days, {raw_rows:,} samples in {total:.1f}s = "
            f"{raw_rows / total:,.0f} samples/s; {total / floor:.1f}x the floor "
            f"({total / floors['six columns']:.1f}x the six-column floor)"
        )
        print("where the time goes: " + ", ".join(f"{k} {v:.1f}s ({v / total:.0%})" for k, v in phases.items()))
        with_marts = total + dbt_seconds
        print(
            f"dbt marts (one build, its tests included): {dbt_seconds:.1f}s = {dbt_seconds / total:.0%} added to the "
            f"pipeline (target <= 25 %: {'met' if dbt_seconds / total <= 0.25 else 'NOT met'}); with them "
            f"{raw_rows / with_marts:,.0f} samples/s, {with_marts / floor:.1f}x the floor"
        )
        print(
            f"target >= 100,000 samples/s: {'met' if raw_rows / total >= 100_000 else 'NOT met'}; "
            f"within 3x the floor: {'met' if total / floor <= 3 else 'NOT met'}"
        )
        engine.dispose()
    return {
        "users": args.users,
        "days": args.days,
        "user_days": len(user_days),
        "samples": raw_rows,
        "chunk_user_days": CHUNK_USER_DAYS,
        "floor_s": round(floor, 2),
        "floor_six_s": round(floors["six columns"], 2),
        "pipeline_s": round(total, 2),
        "samples_per_s": round(raw_rows / total),
        "floor_ratio": round(total / floor, 2),
        "floor_six_ratio": round(total / floors["six columns"], 2),
        "phases_s": {name: round(seconds, 2) for name, seconds in phases.items()},
        "dbt_s": round(dbt_seconds, 2),
        "dbt_added": round(dbt_seconds / total, 3),
    }


if __name__ == "__main__":
    main()
