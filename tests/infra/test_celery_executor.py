"""A range run on the Celery executor: its steps execute in two ``healthpipe worker`` processes, and every core and
marts table comes out equal to an in-process run of the same user-days.

Needs RabbitMQ at 127.0.0.1:5672 (guest/guest): skipped when it does not answer, failed instead with
``HEALTHPIPE_REQUIRE_RABBITMQ=1`` (``.ci/run`` sets it). Each test run uses a queue of its own, so suites running side
by side do not take each other's steps.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from dagster import DagsterEventType, DagsterInstance
from pydantic import SecretStr
from sqlalchemy.engine import URL

from pipeline.infra.dagster_home import dagster_environment, write_dagster_yaml
from pipeline.infra.database import dagster_storage_url, libpq_url
from pipeline.infra.migrations import migrate
from pipeline.infra.settings import Settings
from pipeline.synthetic.generator import SyntheticConfig, generate
from tests.support.range_run import execute_range
from tests.support.warehouse_tables import land

pytestmark = [pytest.mark.slow, pytest.mark.stack]
ROOT = Path(__file__).resolve().parents[2]
RABBITMQ = ("127.0.0.1", 5672)
USERS = ["u0001", "u0002"]
FIRST, LAST = dt.date(2024, 3, 6), dt.date(2024, 3, 8)
# when a row was computed is not part of what was computed
COMPUTATION_TIMES = ("computed_at",)


def require_rabbitmq() -> None:
    try:
        socket.create_connection(RABBITMQ, timeout=2).close()
    except OSError as exc:
        reason = f"RabbitMQ is not reachable at {RABBITMQ[0]}:{RABBITMQ[1]} ({exc})"
        if os.environ.get("HEALTHPIPE_REQUIRE_RABBITMQ") == "1":
            pytest.fail(f"{reason}, and HEALTHPIPE_REQUIRE_RABBITMQ=1 requires it")
        pytest.skip(f"{reason}; set HEALTHPIPE_REQUIRE_RABBITMQ=1 to fail instead of skipping")


def table_checksums(url: URL) -> dict[str, tuple[int, str]]:
    """(rows, md5 of the rows in order) of every table and view of schemas core and marts, without the columns
    that hold when a row was computed."""
    drop = "".join(f" - '{column}'" for column in COMPUTATION_TIMES)
    with psycopg.connect(libpq_url(url)) as conn:
        tables = conn.execute(
            """SELECT format('%I.%I', n.nspname, c.relname)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname IN ('core', 'marts') AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
               ORDER BY 1"""
        ).fetchall()
        result = {}
        for (table,) in tables:
            rows, digest = conn.execute(
                f"""SELECT count(*), md5(coalesce(string_agg(r, E'\\n' ORDER BY r), ''))
                    FROM (SELECT (to_jsonb(t){drop})::text AS r FROM {table} t) s""".encode()
            ).fetchone() or (0, "")
            result[str(table)] = (int(rows), str(digest))
    return result


def wait_until_ready(
    worker: subprocess.Popen[bytes], log: Path, name: str, timeout: float = 180
) -> subprocess.Popen[bytes]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if f"{name}@" in text and " ready." in text:
            return worker
        if worker.poll() is not None:
            raise AssertionError(f"worker {name} exited ({worker.returncode}):\n{text[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"worker {name} not ready after {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def stop(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the worker's session (Celery's warm shutdown), SIGKILL if it lingers."""
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


@pytest.fixture
def celery_workers(
    tmp_path: Path,
) -> Iterator[Callable[[dict[str, str], int], list[Callable[[], subprocess.Popen[bytes]]]]]:
    """Starts ``healthpipe worker`` processes (each in a session of its own); all stopped at the end, their pool
    processes included."""
    started: list[subprocess.Popen[bytes]] = []
    pools: set[int] = set()

    def start(env: dict[str, str], count: int) -> list[Callable[[], subprocess.Popen[bytes]]]:
        """Starts ``count`` workers; returns a callable per worker that waits until it is ready."""
        waits = []
        for i in range(count):
            name = f"w{i}-{uuid.uuid4().hex[:6]}"
            log = tmp_path / f"{name}.log"
            with log.open("wb") as out:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "pipeline.cli", "worker", "--concurrency", "1", "--name", name],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            started.append(worker)
            waits.append(functools.partial(wait_until_ready, worker, log, name))
        return waits

    try:
        yield start
    finally:
        for worker in started:
            if worker.poll() is None:
                pools.update(child.pid for child in psutil.Process(worker.pid).children(recursive=True))
            stop(worker)
        leaked = [pid for pid in pools if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
        assert leaked == [], f"worker pool processes still running: {leaked}"


def test_a_range_run_on_two_celery_workers_equals_an_in_process_run(
    make_database: Callable[[], URL],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    celery_workers: Callable[[dict[str, str], int], list[Callable[[], subprocess.Popen[bytes]]]],
) -> None:
    require_rabbitmq()
    dataset = generate(SyntheticConfig(users=len(USERS), days=3, start=FIRST, seed=17))

    # the Celery run: its own warehouse, a Dagster instance on PostgreSQL that the workers reach too
    url = make_database()
    migrate(url)
    land(url, dataset, slice(None))
    home = tmp_path / "dagster_home"
    write_dagster_yaml(home, max_concurrent_runs=1)
    settings = Settings(database_url=SecretStr(url.render_as_string(hide_password=False)))
    instance_env = dagster_environment(home, dagster_storage_url(settings, url))
    env = {
        **os.environ,
        **instance_env,
        "HEALTHPIPE_DATABASE_URL": url.render_as_string(hide_password=False),
        "HEALTHPIPE_HOME": str(tmp_path / "home"),
        "HEALTHPIPE_EXECUTOR": "celery",
        "HEALTHPIPE_CELERY_QUEUE": f"healthpipe-test-{uuid.uuid4().hex[:12]}",
    }
    # the workers and the Celery run start (seconds of imports each; the run's steps wait in the queue until a
    # worker is ready) while the reference run goes on in this process
    ready = celery_workers(env, 2)
    run_log = tmp_path / "celery_run.log"
    with run_log.open("wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "tests.support.instance_run", ",".join(USERS), str(FIRST), str(LAST)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    # the reference: the same user-days, in-process
    reference_url = make_database()
    migrate(reference_url)
    land(reference_url, dataset, slice(None))
    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", reference_url.render_as_string(hide_password=False))
    assert all(result.success for result in execute_range(USERS, FIRST, LAST, marts=True))
    reference = table_checksums(reference_url)

    workers = [wait() for wait in ready]

    try:
        run.wait(600)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    output = run_log.read_text(errors="replace")
    assert run.returncode == 0, output[-5000:]
    run_id = output.split()[-2]

    # every step started in a process of a worker's pool: not in the run's process, not in this one
    pool_of = {
        child.pid: index
        for index, worker in enumerate(workers)
        for child in psutil.Process(worker.pid).children(recursive=True)
    }
    for key, value in instance_env.items():
        monkeypatch.setenv(key, value)
    with DagsterInstance.get() as instance:
        starts = instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
        successes = instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS)
    step_pids = {entry.step_key: entry.dagster_event.pid for entry in starts if entry.dagster_event}
    assert len(step_pids) >= 5 and len(successes) == len(step_pids)
    assert os.getpid() not in step_pids.values()
    outside = {step: pid for step, pid in step_pids.items() if pid not in pool_of}
    assert outside == {}, f"steps not executed by the workers' processes {sorted(pool_of)}: {outside}"
    # the steps run one after another, and RabbitMQ hands a queue's messages to its idle consumers in turn
    assert {pool_of[pid] for pid in step_pids.values()} == {0, 1}

    # the same tables as the in-process run
    assert table_checksums(url) == reference
    assert {"core.readings", "core.partition_stats", "marts.hourly", "marts.daily", "marts.weekly"} <= set(reference)
    assert all(
        rows > 0 for table, (rows, _) in reference.items() if table in ("core.readings", "marts.daily", "marts.weekly")
    )
