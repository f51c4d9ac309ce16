"""Killing a run midway and running it again gives the same tables as an uninterrupted run.

The victim is a real Dagster run in a child process (``tests/support/range_run.py``). The test stops it
deterministically in the middle of writing the core tables: it holds a lock on ``core.partition_stats``, which the
asset replaces last in its transaction, waits until PostgreSQL shows the run's backend waiting for that lock (with the
other core tables already rewritten in its open transaction), SIGKILLs the process, releases the lock and waits until
the backend is gone. Tables are compared by checksums per table and user-day.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from sqlalchemy.engine import URL

from pipeline.infra.database import libpq_url
from pipeline.infra.migrations import migrate
from pipeline.synthetic.generator import SyntheticConfig, generate
from tests.support.range_run import materialize_range
from tests.support.warehouse_tables import checksums, land

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]
USERS = ["u0001", "u0002"]
FIRST, LAST = dt.date(2024, 3, 6), dt.date(2024, 3, 9)

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None], what: str, timeout: float, victim: subprocess.Popen[bytes], log: Path
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if victim.poll() is not None and victim.returncode != -signal.SIGKILL:
            raise AssertionError(f"the run ended ({victim.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("chunk", [None, 3], ids=["one-chunk", "three-chunks"])
def test_a_run_killed_midway_then_rerun_gives_the_tables_of_an_uninterrupted_run(
    make_database: Callable[[], URL], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, chunk: int | None
) -> None:
    dataset = generate(SyntheticConfig(users=2, days=4, start=FIRST, seed=21))
    half = len(dataset.batches) // 2
    assert half >= 1

    # the reference: every batch landed, one uninterrupted run
    reference_url = make_database()
    migrate(reference_url)
    land(reference_url, dataset, slice(None))
    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", reference_url.render_as_string(hide_password=False))
    assert materialize_range(USERS, FIRST, LAST, chunk)
    reference = checksums(reference_url, with_computed_at=False)

    # the warehouse the run will be killed in: materialized with the first batches, then the late ones land
    url = make_database()
    migrate(url)
    land(url, dataset, slice(None, half))
    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", url.render_as_string(hide_password=False))
    assert materialize_range(USERS, FIRST, LAST, chunk)
    land(url, dataset, slice(half, None))
    before = checksums(url)
    assert before.keys() <= reference.keys() and checksums(url, with_computed_at=False) != reference

    # one chunk: lock the whole table. Chunks of 3 user-days, in (user, day) order: u0001 06-08 | u0001 09,
    # u0002 06-07 | u0002 08-09; lock a row of the second, so that the first commits and the second blocks.
    locked_day = None if chunk is None else ("u0002", "2024-03-06")
    log_path = tmp_path / "victim.log"
    with psycopg.connect(libpq_url(url)) as blocker, log_path.open("wb") as log:
        if locked_day is None:
            blocker.execute("LOCK TABLE core.partition_stats IN ACCESS EXCLUSIVE MODE")
        else:
            locked = blocker.execute(
                "SELECT 1 FROM core.partition_stats WHERE user_id = %s AND local_date = %s FOR UPDATE", locked_day
            ).fetchall()
            assert locked == [(1,)]
        victim = subprocess.Popen(
            [sys.executable, "-m", "tests.support.range_run", ",".join(USERS), str(FIRST), str(LAST)]
            + ([str(chunk)] if chunk else []),
            cwd=ROOT,
            env={**os.environ},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            with psycopg.connect(libpq_url(url), autocommit=True) as monitor:

                def waiting_backend() -> tuple[int, str] | None:
                    row = monitor.execute(
                        """SELECT pid, query FROM pg_stat_activity WHERE datname = current_database()
                           AND pid <> %s AND wait_event_type = 'Lock'""",
                        (blocker.info.backend_pid,),
                    ).fetchone()
                    return (int(row[0]), str(row[1])) if row else None

                pid, query = wait_for(waiting_backend, "the run to wait for the lock", 300, victim, log_path)
                assert "core.partition_stats" in query
                written = {
                    str(r[0])
                    for r in monitor.execute(
                        """SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                           WHERE l.pid = %s AND l.granted AND l.mode = 'RowExclusiveLock'""",
                        (pid,),
                    )
                }
                # midway: its open transaction has already replaced the other core tables' rows
                assert {"rejections", "slices", "readings", "sleep_sessions", "source_totals"} <= written
                victim.send_signal(signal.SIGKILL)
                assert victim.wait(timeout=30) == -signal.SIGKILL
                blocker.rollback()  # release the lock: the orphaned backend runs into the closed connection
                wait_for(
                    lambda: not monitor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone(),
                    "the killed run's backend to end",
                    60,
                    victim,
                    log_path,
                )
        finally:
            if victim.poll() is None:
                victim.kill()
            victim.wait()

    after_kill = checksums(url)
    if chunk is None:
        assert after_kill == before  # nothing of the killed run's transaction is left
    else:
        first_chunk = {("u0001", str(FIRST + dt.timedelta(days=i))) for i in range(3)}

        def committed(key: tuple[str, str, str]) -> bool:
            return key[0].startswith("core.") and (key[1], key[2]) in first_chunk

        # the first chunk's core rows are final; the chunk being written, the later ones and the marts untouched
        after = checksums(url, with_computed_at=False)
        assert {k: v for k, v in after.items() if committed(k)} == {k: v for k, v in reference.items() if committed(k)}
        assert {k: v for k, v in after_kill.items() if not committed(k)} == {
            k: v for k, v in before.items() if not committed(k)
        }
        assert after_kill != before

    # run it again: the tables of the uninterrupted run
    assert materialize_range(USERS, FIRST, LAST, chunk)
    assert checksums(url, with_computed_at=False) == reference
