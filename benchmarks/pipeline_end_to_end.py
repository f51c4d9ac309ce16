"""End-to-end pipeline throughput (load -> validate -> deduplicate -> aggregate) against a floor measured in the same
run on the same server, the pipeline's peak memory, and the time to recompute one late user-day.

    .venv/bin/python -m benchmarks.pipeline_end_to_end [--users 50] [--days 60] [--chunk-user-days 500]

`benchmarks.report` runs it and records what `main` returns in docs/benchmarks/history.jsonl.

Untimed setup: synthetic data (about 1,500 samples per user-day) is generated and landed in raw.samples a chunk of
users at a time (`generate_chunks`: memory does not grow with --users; 500 users x 60 days is ~50M samples).
Floor: COPY the same raw rows into a table and one SQL GROUP BY into hourly buckets. "The same raw
rows" are the columns the pipeline reads (identity, user, metric, value, unit, stage, start, end, zone, source,
device); they go into a temporary table (no WAL: the cheapest COPY target), and the target is judged against this
floor. The rows are exported to a temporary CSV file first (untimed) and streamed from it a block at a time, so no
size is held in memory. A narrower floor of six columns is printed beside it for reference.
Pipeline: every user-day recomputed the way the assets do it (runner.py: chunks of CHUNK_USER_DAYS with loading,
computing and writing overlapped; the SQL models two chunks at a time), in a child process (spawned): its peak
resident memory is the pipeline's own, and must not grow with the number of user-days, only with the chunk size.
Target: at least 100,000 samples/s and within 3x the floor.
Then the dbt marts as a range run builds them (its user-days under a run id, one `dbt build` with its tests, dbt's
start-up and the re-parse of what the run id changes included), timed apart: they may add at most 25 % to the
pipeline's wall time. The Dagster bookkeeping of a real run (a materialization per user-day and asset) is not in it.
Last, a late user-day with every row present: a few late samples land for one user-day, then deduplicate, hourly and
daily of that user-day alone are timed in this process (warmed by one untimed user-day first). Target <= 2 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import URL, make_url

from benchmarks.common import scratch_database
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.ingest.landing import split_for_landing
from pipeline.ingest.store import create_batch, finish_batch, land_chunk
from pipeline.marts.project import reuse_parse, run_dbt
from pipeline.marts.scope import run_scope
from pipeline.samples.process import Summary
from pipeline.samples.runner import CHUNK_USER_DAYS, aggregate_user_days, deduplicate_user_days
from pipeline.synthetic.generator import SyntheticConfig, SyntheticDataset, generate_chunks
from pipeline.synthetic.load import load_chunks

FLOORS = {
    "same columns": "identity uuid, user_id text, metric text, value float8, unit text, stage text, "
    "start_utc timestamptz, end_utc timestamptz, timezone text, source_name text, device_class text",
    "six columns": "user_id text, metric text, value float8, unit text, start_utc timestamptz, end_utc timestamptz",
}


LATE_SAMPLES = 5  # landed late for one user-day, whose recompute is then timed
LATE_TARGET_S = 2.0
BLOCK = 1 << 20


def _proc_status_mb(field: str) -> float | None:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
    return None


def peak_rss_mb() -> float:
    """This process's peak resident memory so far. On Linux its VmHWM: getrusage's ru_maxrss would not do for a
    spawned child, whose count starts from its parent's resident size at the fork before the exec."""
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1024 * 1024)


def rss_mb() -> float:
    """This process's resident memory now (Linux; 0 elsewhere)."""
    return _proc_status_mb("VmRSS") or 0.0


def export_csv(conn, columns: str, path: Path) -> int:  # type: ignore[no-untyped-def]
    """The raw rows' ``columns`` as CSV in ``path``, written as COPY hands them over; returns the file's bytes."""
    names = ", ".join(column.split()[0] for column in columns.split(", "))
    with (
        open(path, "wb") as out,
        conn.cursor().copy(f"COPY (SELECT {names} FROM raw.samples) TO STDOUT WITH (FORMAT csv)".encode()) as copy,
    ):
        for chunk in copy:
            out.write(chunk)
    return path.stat().st_size


def floor_seconds(conn, columns: str, csv: Path) -> float:  # type: ignore[no-untyped-def]
    """COPY the CSV into a temporary table (a megabyte at a time) and GROUP BY it into hourly buckets."""
    started = time.perf_counter()
    with conn.transaction(), open(csv, "rb") as source:
        conn.execute(f"CREATE TEMP TABLE floor_raw ({columns}) ON COMMIT DROP".encode())
        with conn.cursor().copy(b"COPY floor_raw FROM STDIN WITH (FORMAT csv)") as copy:
            while block := source.read(BLOCK):
                copy.write(block)
        conn.execute(
            "CREATE TEMP TABLE floor_hourly ON COMMIT DROP AS SELECT user_id, metric, date_trunc('hour', start_utc) "
            "AS hour, sum(value) AS sum, count(*) AS count FROM floor_raw GROUP BY 1, 2, 3"
        )
    return time.perf_counter() - started


def generate_and_land(url: URL, config: SyntheticConfig, users_per_chunk: int | None) -> pd.DataFrame:
    """Land the synthetic dataset a chunk of users at a time; returns its user-days (user_id, local_date)."""
    engine = create_warehouse_engine(url)
    user_days: list[pd.DataFrame] = []
    started = time.perf_counter()
    done = {"users": 0, "samples": 0}

    def landed(chunk: SyntheticDataset, _counts: object) -> None:
        user_days.append(chunk.truth[["user_id", "local_date"]])
        done["users"] += len(chunk.users)
        done["samples"] += len(chunk.samples)
        done["largest"] = max(done.get("largest", 0), len(chunk.samples))
        print(
            f"  {done['users']:,}/{config.users:,} users generated and landed ({done['samples']:,} samples), "
            f"{time.perf_counter() - started:.0f}s; resident {rss_mb():,.0f} MB, peak {peak_rss_mb():,.0f} MB, "
            f"largest chunk so far {done['largest']:,} samples",
            flush=True,
        )

    load_chunks(engine, generate_chunks(config, users_per_chunk), on_chunk=landed)
    engine.dispose()
    return pd.concat(user_days, ignore_index=True).sort_values(["user_id", "local_date"], ignore_index=True)


def timed_pipeline(url: str, user_days: pd.DataFrame, chunk_size: int) -> dict[str, Any]:
    """Deduplicate, then the hourly and daily models, over every user-day: the timed part, run in a child process
    so that its peak resident memory is the pipeline's own. Returns seconds, phases and memory."""
    import great_expectations  # noqa: F401  (a one-off per process, like the interpreter's start: not measured)

    warehouse = make_url(url)
    ready_mb = peak_rss_mb()
    print(f"pipeline process {os.getpid()}: {ready_mb:,.0f} MB resident after its imports", flush=True)
    started = time.perf_counter()
    rows = {"before": 0, "largest chunk": 0}

    def progress(summary: Summary) -> None:
        # a flat "resident now" and a peak that moves only with the largest chunk so far: memory follows the chunk
        elapsed = time.perf_counter() - started
        rows["largest chunk"] = max(rows["largest chunk"], summary.raw_rows - rows["before"])
        rows["before"] = summary.raw_rows
        print(
            f"  {summary.partitions:,}/{len(user_days):,} user-days deduplicated, {elapsed:.1f}s; resident "
            f"{rss_mb():,.0f} MB, peak {peak_rss_mb():,.0f} MB, largest chunk so far {rows['largest chunk']:,} rows",
            flush=True,
        )

    summary = deduplicate_user_days(warehouse, user_days, progress, chunk_size)
    phases = {f"{name} (overlapped)": seconds for name, seconds in summary.seconds.items()}
    phases["deduplicate wall"] = time.perf_counter() - started
    t = time.perf_counter()
    aggregate_user_days(warehouse, user_days, "hourly", chunk_size=chunk_size)
    phases["hourly (SQL)"] = time.perf_counter() - t
    t = time.perf_counter()
    aggregate_user_days(warehouse, user_days, "daily", chunk_size=chunk_size)
    phases["daily (SQL)"] = time.perf_counter() - t
    total = time.perf_counter() - started
    return {"seconds": total, "phases": phases, "ready_mb": ready_mb, "peak_mb": peak_rss_mb()}


def recompute_user_day(url: URL, user_day: pd.DataFrame) -> tuple[float, dict[str, float]]:
    """Deduplicate, hourly and daily of one user-day in this process; returns the seconds and where they went."""
    started = time.perf_counter()
    phases = dict(deduplicate_user_days(url, user_day).seconds)
    phases["deduplicate wall"] = time.perf_counter() - started
    t = time.perf_counter()
    aggregate_user_days(url, user_day, "hourly")
    aggregate_user_days(url, user_day, "daily")
    phases["hourly + daily"] = time.perf_counter() - t
    return time.perf_counter() - started, phases


def land_late_samples(url: URL, user_id: str, day: dt.date) -> None:
    """`LATE_SAMPLES` phone step counts around noon of the user's ``day``, in a batch of their own."""
    engine = create_warehouse_engine(url)
    with psycopg_connection(engine) as conn:
        row = conn.execute("SELECT home_timezone FROM app.users WHERE user_id = %s", (user_id,)).fetchone()
        assert row is not None
        noon = (pd.Timestamp(day) + pd.Timedelta(hours=12)).tz_localize(row[0]).tz_convert("UTC")
        starts = noon + pd.to_timedelta([3 * i for i in range(LATE_SAMPLES)], "min")
        late = pd.DataFrame(
            {
                "user_id": user_id,
                "metric": "STEPS",
                "value": [120.0 + i for i in range(LATE_SAMPLES)],
                "unit": "count",
                "start": starts,
                "end": starts + pd.Timedelta(minutes=2),
                "timezone": row[0],
                "source_name": "iPhone",
                "device_class": "phone",
                "device": f"{user_id}-phone",
                "external_id": [f"late-{i}" for i in range(LATE_SAMPLES)],
                "user_entered": False,
            }
        )
        batch_id = create_batch(conn, None, "synthetic", f"late samples of {user_id} {day}")
        counts = land_chunk(conn, batch_id, split_for_landing(late))
        finish_batch(conn, batch_id, counts)
    engine.dispose()
    assert counts.landed == LATE_SAMPLES, counts


def raw_rows_of(url: URL, user_id: str, day: dt.date) -> int:
    engine = create_warehouse_engine(url)
    with psycopg_connection(engine) as conn:
        row = conn.execute(
            "SELECT raw_rows FROM core.partition_stats WHERE user_id = %s AND local_date = %s", (user_id, day)
        ).fetchone()
    engine.dispose()
    return int(row[0]) if row else 0


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print its results and return them: sizes, the two floors, the pipeline's seconds,
    samples/s, its ratios to the floors, where the time went, its peak memory and the late user-day's seconds."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument(
        "--chunk-user-days",
        type=int,
        default=CHUNK_USER_DAYS,
        help=f"user-days per pipeline chunk [{CHUNK_USER_DAYS}, the assets' own]; smaller shows memory is flat "
        "at small sizes",
    )
    parser.add_argument("--users-per-chunk", type=int, help="users generated and landed at a time [~300 user-days]")
    args = parser.parse_args(argv)
    config = SyntheticConfig(users=args.users, days=args.days, start=dt.date(2024, 3, 4), seed=7)
    with scratch_database() as url:
        engine = create_warehouse_engine(url)
        t = time.perf_counter()
        user_days = generate_and_land(url, config, args.users_per_chunk)
        setup_seconds = time.perf_counter() - t
        setup_mb = peak_rss_mb()
        print(f"generated and landed in {setup_seconds:.1f}s, peak {setup_mb:,.0f} MB resident", flush=True)
        floors: dict[str, float] = {}
        with psycopg_connection(engine) as conn, tempfile.TemporaryDirectory(prefix="floor-") as folder:
            raw_rows = conn.execute("SELECT count(*) FROM raw.samples").fetchone()[0]  # type: ignore[index]
            for name, columns in FLOORS.items():
                csv = Path(folder) / "raw.csv"
                size = export_csv(conn, columns, csv)
                floors[name] = floor_seconds(conn, columns, csv)
                csv.unlink()
                print(
                    f"floor ({name}): {raw_rows:,} rows ({size / 1e6:,.0f} MB of CSV) COPY + GROUP BY in "
                    f"{floors[name]:.1f}s = {raw_rows / floors[name]:,.0f} samples/s",
                    flush=True,
                )
        floor = floors["same columns"]
        print(f"pipeline: chunks of {args.chunk_user_days} user-days, in a child process", flush=True)
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as child:
            timed = child.submit(
                timed_pipeline, url.render_as_string(hide_password=False), user_days, args.chunk_user_days
            ).result()
        total, phases = timed["seconds"], timed["phases"]
        with tempfile.TemporaryDirectory(prefix="dbt-") as folder:
            saved, target = Path(folder) / "saved", Path(folder) / "run"
            run_dbt(["parse"], saved, url)  # untimed: what an earlier run left behind (the first run parses it all)
            t = time.perf_counter()
            with run_scope(engine, run_id := uuid.uuid4().hex, user_days):
                reuse_parse(saved, target)
                run_dbt(["build"], target, url, run_id=run_id)
            dbt_seconds = time.perf_counter() - t
        with psycopg_connection(engine) as conn:
            database_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
            raw_bytes = conn.execute(  # the month tables' sizes: the partitioned parent holds no rows of its own
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('raw.samples')"
            ).fetchone()[0]  # type: ignore[index]

        # a late user-day with every row present: warm this process on another user-day, then time the late one
        recompute_user_day(url, user_days.iloc[[0]])
        late_day = user_days.iloc[[min(len(user_days) // 2 + args.days // 2, len(user_days) - 1)]]  # mid-period
        late_user, late_date = str(late_day["user_id"].iloc[0]), late_day["local_date"].iloc[0]
        before = raw_rows_of(url, late_user, late_date)
        land_late_samples(url, late_user, late_date)
        late_seconds, late_phases = recompute_user_day(url, late_day)
        after = raw_rows_of(url, late_user, late_date)
        assert after == before + LATE_SAMPLES, (before, after)
        print(
            f"\npipeline: {len(user_days):,} user-days, {raw_rows:,} samples in {total:.1f}s = "
            f"{raw_rows / total:,.0f} samples/s; {total / floor:.1f}x the floor "
            f"({total / floors['six columns']:.1f}x the six-column floor)"
        )
        print("where the time goes: " + ", ".join(f"{k} {v:.1f}s ({v / total:.0%})" for k, v in phases.items()))
        print(
            f"pipeline process: peak {timed['peak_mb']:,.0f} MB resident ({timed['ready_mb']:,.0f} MB after its "
            f"imports), chunks of {args.chunk_user_days} user-days; generate + land: peak {setup_mb:,.0f} MB"
        )
        with_marts = total + dbt_seconds
        print(
            f"dbt marts (one build, its tests included): {dbt_seconds:.1f}s = {dbt_seconds / total:.0%} added to the "
            f"pipeline (target <= 25 %: {'met' if dbt_seconds / total <= 0.25 else 'NOT met'}); with them "
            f"{raw_rows / with_marts:,.0f} samples/s, {with_marts / floor:.1f}x the floor"
        )
        print(
            f"late user-day ({LATE_SAMPLES} late samples of {late_user} {late_date}, {after:,} raw rows): "
            f"deduplicate + hourly + daily in {late_seconds:.2f}s (target <= {LATE_TARGET_S:g} s: "
            f"{'met' if late_seconds <= LATE_TARGET_S else 'NOT met'}): "
            + ", ".join(f"{k} {v:.2f}s" for k, v in late_phases.items())
        )
        print(
            f"disk: database {database_bytes / 1e9:,.2f} GB = {database_bytes / raw_rows:,.0f} bytes per raw sample "
            f"(raw.samples with its indexes {raw_bytes / raw_rows:,.0f})"
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
        "chunk_user_days": args.chunk_user_days,
        "setup_s": round(setup_seconds, 1),
        "setup_peak_rss_mb": round(setup_mb),
        "floor_s": round(floor, 2),
        "floor_six_s": round(floors["six columns"], 2),
        "pipeline_s": round(total, 2),
        "samples_per_s": round(raw_rows / total),
        "floor_ratio": round(total / floor, 2),
        "floor_six_ratio": round(total / floors["six columns"], 2),
        "phases_s": {name: round(seconds, 2) for name, seconds in phases.items()},
        "peak_rss_mb": round(timed["peak_mb"]),
        "dbt_s": round(dbt_seconds, 2),
        "dbt_added": round(dbt_seconds / total, 3),
        "late_user_day_s": round(late_seconds, 3),
        "late_user_day_phases_s": {name: round(seconds, 3) for name, seconds in late_phases.items()},
        "database_bytes": int(database_bytes),
        "bytes_per_sample": round(database_bytes / raw_rows),
    }


if __name__ == "__main__":
    main()
