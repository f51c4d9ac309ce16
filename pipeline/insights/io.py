"""Reading the rules' inputs and writing their findings, set-based, through ADBC (Arrow both ways, COPY for bulk).

The users in scope go into a temporary table ``insight_users`` first, so every statement joins it. Statements live
in ``sql/``; their ``/* name */`` placeholders are filled with literals this module composes (dates, catalogue names
and thresholds: never user input).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources

import pandas as pd
import pyarrow as pa

from pipeline.catalog import GLUCOSE_METRIC
from pipeline.data_version import advance_sql
from pipeline.insights import thresholds as t
from pipeline.insights.panel import DAILY_MEASURES, PanelInputs
from pipeline.insights.rules import FINDING_COLUMNS
from pipeline.samples.catalog_sql import literals
from pipeline.samples.io import ArrowConnection, execute, fetch

USERS_TABLE = "insight_users"
FINDINGS_TABLE = "insight_findings"
_PLACEHOLDER = re.compile(r"/\* ([a-z][a-z ]*) \*/")


@cache
def _sql_file(name: str) -> str:
    return (resources.files("pipeline.insights") / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def sql(name: str, first_day: dt.date | None = None, last_day: dt.date | None = None) -> str:
    """The statement in ``sql/<name>.sql`` with its placeholders filled; one left unfilled is an error."""
    values: Mapping[str, str] = {
        "daily metrics": literals(DAILY_MEASURES),
        "glucose metric": literals([GLUCOSE_METRIC]),
        "low": repr(t.GLUCOSE_LOW),
        "high": repr(t.GLUCOSE_HIGH),
        **({"first day": f"DATE '{first_day.isoformat()}'"} if first_day else {}),
        **({"last day": f"DATE '{last_day.isoformat()}'"} if last_day else {}),
    }

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KeyError(f"insights sql/{name}.sql: nothing fills the placeholder /* {match.group(1)} */")
        return values[match.group(1)]

    return _PLACEHOLDER.sub(fill, _sql_file(name))


def stage_users(conn: ArrowConnection, users: Sequence[str] | None) -> list[str]:
    """Fill ``insight_users`` with ``users`` (None: every user); returns the users staged, sorted."""
    table = pa.table({"user_id": pa.array(sorted(set(users or [])), pa.string())})
    with conn.cursor() as cursor:
        cursor.adbc_ingest(USERS_TABLE, table, mode="replace", temporary=True)
    if users is None:
        execute(conn, sql("scope_users"))
    execute(conn, f"ANALYZE {USERS_TABLE}")
    return [str(u) for u in fetch(conn, f"SELECT user_id FROM {USERS_TABLE} ORDER BY user_id").column(0).to_pylist()]


def load_inputs(conn: ArrowConnection, users: list[str], first_day: dt.date, last_day: dt.date) -> PanelInputs:
    """The staged users' rows of the days [first_day, last_day]."""

    def read(name: str) -> pd.DataFrame:
        frame: pd.DataFrame = fetch(conn, sql(name, first_day, last_day)).to_pandas()
        return frame

    return PanelInputs(
        first_day=pd.Timestamp(first_day),
        last_day=pd.Timestamp(last_day),
        users=users,
        daily=read("daily_inputs"),
        sleep_midpoints=read("sleep_midpoints"),
        glucose=read("glucose_days"),
        device_days=read("device_days"),
        step_goals=read("step_goals"),
    )


def _findings_table(findings: pd.DataFrame) -> pa.Table:
    """The findings as Arrow, column by column (no Python per row)."""
    arrays = [
        pa.array(findings[name].to_numpy(dtype="datetime64[D]"), pa.date32())
        if name == "local_date"
        else pa.array(findings[name], pa.string(), from_pandas=True)
        for name in FINDING_COLUMNS
    ]
    return pa.table(arrays, names=list(FINDING_COLUMNS))


def write_findings(
    conn: ArrowConnection, findings: pd.DataFrame, first_day: dt.date, last_day: dt.date, every_user: bool
) -> None:
    """Replace the staged users' findings of [first_day, last_day] and re-derive the episodes they touch. Call
    inside a transaction: the findings and the insights change together or not at all."""
    execute(conn, sql("replace_days", first_day, last_day))
    with conn.cursor() as cursor:
        cursor.adbc_ingest(FINDINGS_TABLE, _findings_table(findings), mode="replace", temporary=True)
    execute(conn, sql("insert_days"))
    if every_user:
        execute(conn, sql("record_evaluations", first_day, last_day))
    execute(conn, sql("episodes", first_day, last_day))
    # a temporary table has no statistics until analyzed: the planner would nest loops over thousands of episodes
    execute(conn, "CREATE UNIQUE INDEX ON insight_episodes (insight_id)")
    execute(conn, "ANALYZE insight_episodes")
    execute(conn, sql("withdraw_episodes", first_day, last_day))
    execute(conn, sql("upsert_episodes"))
    # the staged users' insights may have changed: their read answers and ETags move (last: see advance_sql)
    execute(conn, advance_sql(f"SELECT user_id FROM {USERS_TABLE}"))
