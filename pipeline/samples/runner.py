"""Running a whole set of user-days through the pipeline, chunk by chunk, with the database and Python busy at once.

A run's user-days are cut into chunks (bounded memory); each chunk is one transaction, so it is replaced entirely or
not at all. The chunks flow through three stages on their own connections: while chunk k is validated and
deduplicated in this thread, chunk k+1 is read and chunk k-1 is written by two worker threads (the driver releases
the GIL while PostgreSQL works). The SQL models run two chunks at a time on two connections: the server does all the
work there, and a second backend uses the second core.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pandas as pd
from sqlalchemy.engine import URL

from pipeline.samples.io import ArrowConnection, Inputs, arrow_connection, load_inputs, stage_partitions, transaction
from pipeline.samples.process import Clock, Derived, Summary, aggregate_partitions, derive, write

CHUNK_USER_DAYS = 500  # ~0.8 M samples at 1,500 per user-day: three chunks in flight stay well under 2 GB
AGGREGATE_CONNECTIONS = 2


def chunks(user_days: pd.DataFrame, size: int = CHUNK_USER_DAYS) -> list[pd.DataFrame]:
    """Consecutive user-days of the same users together (their raw windows overlap only at the edges)."""
    ordered = user_days.sort_values(["user_id", "local_date"]).reset_index(drop=True)
    return [ordered.iloc[i : i + size] for i in range(0, len(ordered), size)]


def _load(conn: ArrowConnection, user_days: pd.DataFrame) -> tuple[Inputs, float]:
    started = time.perf_counter()
    with transaction(conn):
        inputs = load_inputs(conn, user_days)
    return inputs, time.perf_counter() - started


def _write(conn: ArrowConnection, user_days: pd.DataFrame, derived: Derived) -> float:
    started = time.perf_counter()
    with transaction(conn):
        stage_partitions(conn, user_days)
        write(conn, derived)
    return time.perf_counter() - started


def deduplicate_user_days(
    url: URL,
    user_days: pd.DataFrame,
    report: Callable[[Summary], None] | None = None,
    chunk_size: int = CHUNK_USER_DAYS,
) -> Summary:
    """Recompute the core rows of every user-day in ``user_days``. ``report`` gets the running summary after each
    chunk is committed. Phase seconds overlap (they add up to more than the wall time)."""
    parts = chunks(user_days, chunk_size)
    summary = Summary()
    if not parts:
        return summary
    with (
        arrow_connection(url) as load_conn,
        arrow_connection(url) as write_conn,
        ThreadPoolExecutor(1, thread_name_prefix="load") as loader,
        ThreadPoolExecutor(1, thread_name_prefix="write") as writer,
    ):
        next_load = loader.submit(_load, load_conn, parts[0])
        pending: tuple[Future[float], Summary] | None = None
        for index, part in enumerate(parts):
            inputs, load_seconds = next_load.result()
            if index + 1 < len(parts):
                next_load = loader.submit(_load, load_conn, parts[index + 1])
            clock = Clock()
            derived = derive(inputs, part, clock)
            derived.summary.seconds = {"load": round(load_seconds, 3), **clock.laps}
            del inputs
            if pending is not None:
                _finish(pending, summary, report)
            pending = (writer.submit(_write, write_conn, part, derived), derived.summary)
        assert pending is not None
        _finish(pending, summary, report)
    return summary


def _finish(pending: tuple[Future[float], Summary], summary: Summary, report: Callable[[Summary], None] | None) -> None:
    future, chunk = pending
    chunk.seconds["write"] = round(future.result(), 3)
    summary.add(chunk)
    if report is not None:
        report(summary)


def aggregate_user_days(
    url: URL,
    user_days: pd.DataFrame,
    model: str,
    report: Callable[[int, int], None] | None = None,
    chunk_size: int = CHUNK_USER_DAYS,
) -> int:
    """Replace marts.<model> rows of every user-day, chunk by chunk, two chunks at a time; returns rows written.
    ``report`` gets (user-days done, rows so far) after each chunk."""
    parts = chunks(user_days, chunk_size)
    rows = done = 0

    def run(part: pd.DataFrame) -> int:
        with arrow_connection(url) as conn:
            return aggregate_partitions(conn, part, model)

    with ThreadPoolExecutor(AGGREGATE_CONNECTIONS, thread_name_prefix=model) as pool:
        for part, future in [(part, pool.submit(run, part)) for part in parts]:
            rows += future.result()
            done += len(part)
            if report is not None:
                report(done, rows)
    return rows
