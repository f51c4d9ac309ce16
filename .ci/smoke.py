"""Smoke test of the installed wheel, run from outside the checkout by ``.ci/run``.

Usage: ``smoke.py ADMIN_URL`` (a maintenance database of a PostgreSQL server, e.g.
``postgresql://postgres@127.0.0.1:5432/postgres``). In a fresh database there it runs ``healthpipe db migrate`` and
``healthpipe generate`` (2 users x 2 days) through the installed command, then the chunk runner's deduplicate, hourly
and daily stages over those user-days, then the dbt project's build of the analyst marts (``healthpipe docs
--no-serve`` and a ``dbt build``), and checks that the marts have rows. Every file the pipeline reads at run time
(migrations, SQL models, the dbt project) must therefore be in the wheel: a missing one fails this script. The
database is dropped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pandas as pd
import psycopg

import pipeline
from pipeline.infra.database import create_warehouse_engine, libpq_url, parse_postgres_url, redacted
from pipeline.marts.project import run_dbt
from pipeline.samples.runner import aggregate_user_days, deduplicate_user_days


def healthpipe(env: dict[str, str], *args: str) -> str:
    """Runs the installed console script (beside this interpreter); its stdout, or exits with its output."""
    command = [str(Path(sys.executable).parent / "healthpipe"), *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    print(f"$ healthpipe {' '.join(args)}\n{result.stdout}{result.stderr}", end="", flush=True)
    if result.returncode != 0:
        raise SystemExit(f"smoke: `healthpipe {' '.join(args)}` exited {result.returncode}")
    return result.stdout


def run(admin_url: str, scratch: Path) -> None:
    installed = Path(pipeline.__file__).resolve()
    if "site-packages" not in installed.parts:
        raise SystemExit(f"smoke: pipeline is imported from {installed}, not from an installed wheel")
    print(f"pipeline imported from {installed.parent}", flush=True)

    url = parse_postgres_url(admin_url).set(database=f"healthpipe_smoke_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{url.database}"'.encode())
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHPIPE_")}
        env |= {"HEALTHPIPE_DATABASE_URL": url.render_as_string(hide_password=False), "HEALTHPIPE_HOME": str(scratch)}
        healthpipe(env, "db", "migrate")
        truth = scratch / "truth.csv"
        healthpipe(env, "generate", "--users", "2", "--days", "2", "--start", "2024-03-09", "--truth", str(truth))
        user_days = pd.read_csv(truth, parse_dates=["local_date"])[["user_id", "local_date"]]
        user_days["local_date"] = user_days["local_date"].dt.date

        summary = deduplicate_user_days(url, user_days)
        hourly = aggregate_user_days(url, user_days, "hourly")
        daily = aggregate_user_days(url, user_days, "daily")
        print(f"deduplicated {summary.partitions} user-days; {hourly} hourly rows, {daily} daily rows", flush=True)

        run_dbt(["build", "--full-refresh"], scratch / "dbt", url)  # the dbt project, read from site-packages
        healthpipe(env, "docs", "--no-serve")
        engine = create_warehouse_engine(url)
        try:
            with engine.connect() as conn:
                counted = conn.exec_driver_sql("SELECT count(*), count(DISTINCT user_id) FROM marts.daily").one()
                weekly = conn.exec_driver_sql("SELECT count(DISTINCT user_id) FROM marts.weekly").scalar()
        finally:
            engine.dispose()
        if weekly != 2:
            raise SystemExit(f"smoke: marts.weekly holds {weekly} users; expected both users")
        if summary.partitions != len(user_days) or counted[0] == 0 or counted[1] != 2:
            raise SystemExit(f"smoke: marts.daily holds {counted[0]} rows of {counted[1]} users; expected both users")
        print(f"smoke: ok, marts.daily holds {counted[0]} rows in {redacted(url)}", flush=True)
    finally:
        with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'.encode())


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    with tempfile.TemporaryDirectory(prefix="healthpipe-smoke-") as scratch:
        run(sys.argv[1], Path(scratch))


if __name__ == "__main__":
    main()
