"""Insight evaluation and health scoring time: every rule and the score for every user over a range of days, as one
run of ``insights_job`` (the insights and health_scores assets) does it.

    .venv/bin/python -m benchmarks.insights [--users 1000] [--days 90]

Untimed setup, in a scratch database: ``--users`` users and ``--days`` days of daily marts generated with NumPy
(steps, resting heart rate, sleep, SpO2 with a minimum, a weighing every third day), each night's sleep session and
the device classes of each day (core.sleep_sessions, core.source_totals), all written with COPY. Glucose readings
(core.readings, a few hundred a day per CGM user) are left out: that loader is one GROUP BY over them.
Timed (``evaluate_days``, the function the asset calls), each the best of ``--repeat``, from empty insight tables:
- the whole range in one evaluation (a backfill from the UI: one run), then the same again (a rerun: writes nothing);
- half the range, so the time per additional day is the difference over the days between them;
- the last day after all the others (what the daily schedule runs).
Floor, same run: reading the marts rows the whole-range evaluation reads (ADBC, the same driver) with no rule applied.
Scores (``score_range``, the function the health_scores asset calls), timed the same way: the whole range, a rerun,
half the range (time per additional day), the last day alone; ``marts.cohort_daily`` is built first (untimed) with
the dbt model's statement, and active energy is generated for the activity component.
Target: the whole range of 1,000 users x 90 days, insights and scores, in at most 60 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from benchmarks.common import scratch_database
from pipeline.catalog import (
    ACTIVE_ENERGY_METRIC,
    RESTING_HR_METRIC,
    SLEEP_METRIC,
    SPO2_METRIC,
    STEPS_METRIC,
    WEIGHT_METRIC,
)
from pipeline.infra.database import libpq_url
from pipeline.insights.evaluate import evaluate_days
from pipeline.insights.thresholds import LOOKBACK_DAYS
from pipeline.samples.io import arrow_connection, fetch
from pipeline.scores.compute import score_range

# marts.cohort_daily, as its dbt model (dbt_like_sql/models/marts/cohort_daily.sql) builds it over every row
COHORT_DAILY = """
CREATE TABLE marts.cohort_daily AS
SELECT d.local_date, d.metric, count(*)::integer AS users,
       percentile_cont(0.05) WITHIN GROUP (ORDER BY d.value) AS p5,
       percentile_cont(0.25) WITHIN GROUP (ORDER BY d.value) AS p25,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY d.value) AS p50,
       percentile_cont(0.75) WITHIN GROUP (ORDER BY d.value) AS p75,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY d.value) AS p95
FROM marts.daily d GROUP BY d.local_date, d.metric
"""

FIRST_DAY = dt.date(2024, 3, 1)
DEVICE_CLASSES = ("watch", "phone", "scale_or_app")


def _copy(conn: psycopg.Connection[Any], table: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    columns = ", ".join(frame.columns)
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)".encode()) as copy:
        copy.write(buffer.getvalue())


def generate(users: int, days: int, seed: int = 3) -> dict[str, pd.DataFrame]:
    """Daily rows for users x days, vectorized: each user a level, each day noise, some users drifting."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"b{i:05d}" for i in range(users)])
    dates = pd.date_range(FIRST_DAY, periods=days, freq="D").date
    user = np.repeat(ids, days)
    date = np.tile(dates, users)
    n = users * days
    level = np.repeat(rng.uniform(0.6, 1.4, users), days)
    drift = np.repeat(rng.uniform(-0.006, 0.006, users), days) * np.tile(np.arange(days), users)
    steps = np.maximum(0, 9_000 * level * (1 + drift) + rng.normal(0, 2_000, n)).round()
    rhr = 62 / level + rng.normal(0, 2, n) + np.maximum(drift, 0) * 40
    sleep = np.clip(430 * np.sqrt(level) + rng.normal(0, 45, n), 120, 720)
    spo2 = np.clip(97 + rng.normal(0, 1.2, n), 85, 100)
    spo2_min = spo2 - rng.uniform(0, 6, n)
    weight = 75 * level * (1 + drift / 3) + rng.normal(0, 0.4, n)
    weighed = np.tile(np.arange(days) % 3 == 0, users)
    frames = []
    for metric, value, minimum, keep in (
        (STEPS_METRIC, steps, steps, np.ones(n, bool)),
        (RESTING_HR_METRIC, rhr, rhr, np.ones(n, bool)),
        (SLEEP_METRIC, sleep, sleep, np.ones(n, bool)),
        (SPO2_METRIC, spo2, spo2_min, np.ones(n, bool)),
        (WEIGHT_METRIC, weight, weight, weighed),
    ):
        frames.append(
            pd.DataFrame(
                {
                    "user_id": user[keep],
                    "local_date": date[keep],
                    "metric": metric,
                    "value": value[keep],
                    "sum": value[keep],
                    "count": 1,
                    "min": minimum[keep],
                    "max": value[keep],
                    "flagged_count": (rng.random(int(keep.sum())) < 0.01).astype(int),
                }
            )
        )
    bedtime = pd.to_datetime(date) - pd.Timedelta(hours=1) + pd.to_timedelta(rng.normal(0, 50, n), unit="min")
    sessions = pd.DataFrame(
        {
            "user_id": user,
            "local_date": date,
            "session_start_utc": bedtime.tz_localize("UTC"),
            "session_end_utc": (bedtime + pd.to_timedelta(sleep, unit="min")).tz_localize("UTC"),
            "asleep_minutes": sleep,
        }
    )
    seen = rng.random((n, len(DEVICE_CLASSES))) < np.array([0.9, 0.97, 0.3])
    stops = np.repeat(rng.random(users) < 0.05, days) & np.tile(np.arange(days) >= days - 3, users)
    seen[stops, 0] = False  # 5 % of users' watches stop three days before the end
    row, column = np.nonzero(seen)
    totals = pd.DataFrame(
        {
            "user_id": user[row],
            "local_date": date[row],
            "metric": STEPS_METRIC,
            "source_name": "bench",
            "device_class": np.array(DEVICE_CLASSES)[column],
            "raw": 1.0,
            "kept": 1.0,
        }
    )
    # active energy from a generator of its own: the other series stay what they were for a given seed
    energy = np.maximum(0, 450 * level * (1 + drift) + np.random.default_rng(seed + 1).normal(0, 120, n)).round()
    frames.append(
        pd.DataFrame(
            {
                "user_id": user,
                "local_date": date,
                "metric": ACTIVE_ENERGY_METRIC,
                "value": energy,
                "sum": energy,
                "count": 1,
                "min": energy,
                "max": energy,
                "flagged_count": 0,
            }
        )
    )
    return {
        "app.users": pd.DataFrame({"user_id": ids, "home_timezone": "Europe/Amsterdam"}),
        "marts.daily": pd.concat(frames, ignore_index=True),
        "core.sleep_sessions": sessions,
        "core.source_totals": totals,
    }


def timed(action: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=3, help="timings are the best of this many")
    args = parser.parse_args(argv)
    users, days = args.users, args.days
    first, last = FIRST_DAY, FIRST_DAY + dt.timedelta(days=days - 1)
    half_last = FIRST_DAY + dt.timedelta(days=days // 2 - 1)
    with scratch_database() as url:
        tables = generate(users, days)
        with psycopg.connect(libpq_url(url)) as conn:
            for table, frame in tables.items():
                _copy(conn, table, frame)
            conn.execute(COHORT_DAILY)
            conn.execute("ANALYZE")
        with arrow_connection(url) as conn:
            floor, _ = timed(
                lambda: fetch(
                    conn,
                    "SELECT user_id, local_date, metric, value, min, flagged_count FROM marts.daily "
                    f"WHERE local_date BETWEEN DATE '{first - dt.timedelta(days=LOOKBACK_DAYS - 1)}' AND DATE '{last}'",
                )
            )

        def fresh() -> None:
            with psycopg.connect(libpq_url(url)) as conn:
                conn.execute("TRUNCATE marts.insights, marts.insight_days, marts.insight_evaluations")

        def best(action: Any, before: Any = fresh) -> tuple[float, Any]:
            runs = []
            for _ in range(args.repeat):
                before()
                runs.append(timed(action))
            return min(runs, key=lambda run: run[0])

        whole, evaluation = best(lambda: evaluate_days(url, first, last))
        rerun, _ = best(lambda: evaluate_days(url, first, last), before=lambda: None)
        half, _ = best(lambda: evaluate_days(url, first, half_last))

        def all_but_the_last_day() -> None:
            fresh()
            evaluate_days(url, first, last - dt.timedelta(days=1))

        one_day, _ = best(lambda: evaluate_days(url, last, last), before=all_but_the_last_day)

        def no_scores() -> None:
            with psycopg.connect(libpq_url(url)) as conn:
                conn.execute("TRUNCATE marts.health_scores, marts.health_score_days")

        scores_whole, scoring = best(lambda: score_range(url, first, last), before=no_scores)
        scores_rerun, _ = best(lambda: score_range(url, first, last), before=lambda: None)
        scores_half, _ = best(lambda: score_range(url, first, half_last), before=no_scores)
        scores_one_day, _ = best(lambda: score_range(url, last, last), before=lambda: None)
    extra_days = days - days // 2
    figures = {
        "users": users,
        "days": days,
        "marts_daily_rows": len(tables["marts.daily"]),
        "findings": evaluation.findings,
        "findings_by_rule": evaluation.findings_by_rule,
        "insights": sum(int(r["insights"]) for r in evaluation.insights),
        "seconds_whole_range": round(whole, 2),
        "seconds_by_phase": evaluation.seconds,
        "seconds_rerun": round(rerun, 2),
        "seconds_half_range": round(half, 2),
        "seconds_per_additional_day": round((whole - half) / extra_days, 3),
        "seconds_one_day": round(one_day, 2),
        "seconds_floor_read_marts": round(floor, 3),
        "ratio_to_floor": round(whole / floor, 1) if floor else None,
        "scores": scoring.scores,
        "score_distribution": scoring.distribution,
        "score_completeness": scoring.completeness,
        "scores_seconds_whole_range": round(scores_whole, 2),
        "scores_seconds_by_phase": scoring.seconds,
        "scores_seconds_rerun": round(scores_rerun, 2),
        "scores_seconds_per_additional_day": round((scores_whole - scores_half) / extra_days, 3),
        "scores_seconds_one_day": round(scores_one_day, 2),
        "seconds_insights_and_scores": round(whole + scores_whole, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "target_met": whole + scores_whole <= 60,
    }
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
