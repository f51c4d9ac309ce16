"""Building the dbt marts in tests the way a range run does (its user-days under a run id, then ``dbt build``), or
from scratch (``--full-refresh``), and reading them back."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline.infra.database import psycopg_connection
from pipeline.marts.project import run_dbt
from pipeline.marts.scope import run_scope

MART_TABLES = ("marts.weekly", "marts.monthly", "marts.daily_wide", "marts.source_contributions", "marts.cohort_daily")


def build_full(url: URL, target: Path) -> None:
    run_dbt(["build", "--full-refresh"], target, url)


def build_incremental(engine: Engine, url: URL, target: Path, user_days: pd.DataFrame) -> None:
    """One run's build: ``user_days`` (user_id, local_date) under a fresh run id."""
    run_id = uuid.uuid4().hex
    with run_scope(engine, run_id, user_days):
        run_dbt(["build"], target, url, run_id=run_id)


def table(engine: Engine, name: str) -> pd.DataFrame:
    with psycopg_connection(engine) as conn:
        cursor = conn.execute(f"SELECT * FROM {name}".encode())
        columns = [c.name for c in cursor.description or []]
        return pd.DataFrame(cursor.fetchall(), columns=columns)


def checksums(engine: Engine) -> dict[str, str]:
    """md5 of each mart's rows in a fixed order: equal checksums, equal tables."""
    with psycopg_connection(engine) as conn:
        return {
            name: str(
                conn.execute(  # type: ignore[index]
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {name} t".encode()
                ).fetchone()[0]
            )
            for name in MART_TABLES
        }
