"""The dashboard over demo data, for its screenshots and its first-render benchmark: a scratch database holding the
demo's synthetic users (5 users x 14 days from 2024-03-04, seed 7) computed as the pipeline does (deduplication,
hourly and daily aggregates, the dbt marts, insights, health scores), the API serving it under uvicorn in a thread,
and a key of the first user."""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy.engine import URL

from api.main import create_app
from benchmarks.common import scratch_database
from pipeline.accounts import create_api_key
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.insights.evaluate import evaluate_days
from pipeline.marts.project import run_dbt
from pipeline.samples.runner import aggregate_user_days, deduplicate_user_days
from pipeline.scores.compute import score_range
from pipeline.synthetic.generator import SyntheticConfig, generate
from pipeline.synthetic.load import load_dataset
from tests.support.served import free_port

DEMO = SyntheticConfig(users=5, days=14, start=dt.date(2024, 3, 4), seed=7)
USER = "u0001"


@dataclass(frozen=True)
class Demo:
    base: str  # the served API, http://127.0.0.1:PORT
    key: str  # an API key of USER
    day: str  # the Today shown: the demo's next-to-last day
    url: URL  # the scratch database


@contextmanager
def served_demo() -> Iterator[Demo]:
    with scratch_database() as url:
        engine = create_warehouse_engine(url)
        try:
            started = time.perf_counter()
            dataset = generate(DEMO)
            load_dataset(engine, dataset)
            user_days = (
                dataset.truth[["user_id", "local_date"]].drop_duplicates().sort_values(["user_id", "local_date"])
            )
            deduplicate_user_days(url, user_days)
            aggregate_user_days(url, user_days, "hourly")
            aggregate_user_days(url, user_days, "daily")
            with tempfile.TemporaryDirectory(prefix="dbt-") as folder:
                run_dbt(["build", "--full-refresh"], Path(folder), url)
            first, last = DEMO.start, DEMO.start + dt.timedelta(days=DEMO.days - 1)
            evaluate_days(url, first, last)
            score_range(url, first, last)
            with psycopg_connection(engine) as conn:
                key = create_api_key(conn, USER)
            print(f"demo data computed in {time.perf_counter() - started:.0f}s", flush=True)
            port = free_port()
            server = uvicorn.Server(
                uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
            )
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.05)
            try:
                yield Demo(f"http://127.0.0.1:{port}", key, (last - dt.timedelta(days=1)).isoformat(), url)
            finally:
                server.should_exit = True
                thread.join(10)
        finally:
            engine.dispose()
