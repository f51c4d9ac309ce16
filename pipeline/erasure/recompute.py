"""Recomputing the cross-user results of the days an erased user took part in: the cohort statistics
(``marts.cohort_daily``, a dbt model: rebuilt by its own incremental build for those days) and the health scores,
which are normalized across each day's users (``pipeline.scores``: those days scored again for everyone left).

Per-user results need nothing: the user's own rows are gone with the user."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from pipeline.erasure.walk import sql_file
from pipeline.infra.database import Connection, psycopg_connection
from pipeline.marts.project import keep_parse, reuse_parse, run_dbt
from pipeline.marts.scope import one_build_at_a_time, run_scope
from pipeline.scores.compute import score_range

COHORT_MODEL = "cohort_daily"
# app.run_user_days needs a user for each day; cohort_daily reads only the days. Not a user id (none is empty).
NO_USER = ""


def affected_days(conn: Connection, user_id: str) -> list[dt.date]:
    """Read before the user's rows go."""
    rows = conn.execute(sql_file("affected_days").encode(), {"user_id": user_id}).fetchall()
    return [row[0] for row in rows]  # type: ignore[misc]


def rebuild_cohort_days(engine: Engine, days: Sequence[dt.date], dbt_home: Path) -> bool:
    """Rebuild ``marts.cohort_daily`` for ``days`` from every remaining user's daily rows (a day no user is left in
    loses its rows). False when there is nothing to rebuild (no days, or the dbt marts were never built)."""
    with psycopg_connection(engine) as conn:
        row = conn.execute("SELECT to_regclass('marts.cohort_daily') IS NOT NULL").fetchone()
    if not days or not (row and row[0]):
        return False
    run_id = f"erasure-{uuid.uuid4().hex}"
    target = dbt_home / "runs" / run_id
    reuse_parse(dbt_home / "target", target)
    scope = pd.DataFrame({"user_id": [NO_USER] * len(days), "local_date": list(days)})
    with one_build_at_a_time(engine), run_scope(engine, run_id, scope):
        run_dbt(["build", "--select", COHORT_MODEL], target, engine.url, run_id=run_id)
    (dbt_home / "target").mkdir(parents=True, exist_ok=True)
    keep_parse(target, dbt_home / "target")
    shutil.rmtree(target, ignore_errors=True)
    return True


def _runs(days: Sequence[dt.date]) -> Iterator[tuple[dt.date, dt.date]]:
    """Consecutive days as (first, last) ranges, in order."""
    ordered = sorted(set(days))
    if not ordered:
        return
    first = last = ordered[0]
    for day in ordered[1:]:
        if day == last + dt.timedelta(days=1):
            last = day
            continue
        yield first, last
        first = last = day
    yield first, last


def rescore_days(engine: Engine, days: Sequence[dt.date]) -> int:
    """Score again, for every remaining user, those of ``days`` that were scored; the days scored."""
    with psycopg_connection(engine) as conn:
        rows = conn.execute(sql_file("scored_days").encode(), {"days": list(days)}).fetchall()
    scored: list[dt.date] = [row[0] for row in rows]  # type: ignore[misc]
    for first, last in _runs(scored):
        score_range(engine.url, first, last)
    return len(scored)
