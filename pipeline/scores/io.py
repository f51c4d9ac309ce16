"""Reading the score's inputs and writing its rows, set-based through ADBC (Arrow both ways, bulk ingest).

Statements live in ``sql/``; their ``/* name */`` placeholders are filled with literals composed here (dates and
catalogue names: never user input).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from importlib import resources

import pandas as pd
import pyarrow as pa

from pipeline.catalog import ACTIVE_ENERGY_METRIC, RESTING_HR_METRIC, SLEEP_METRIC, SPO2_METRIC, STEPS_METRIC
from pipeline.data_version import advance_sql
from pipeline.samples.catalog_sql import literals
from pipeline.samples.io import ArrowConnection, execute, fetch
from pipeline.scores.scoring import SCORE_COLUMNS

# marts.daily metric -> score input
METRIC_INPUTS = {
    STEPS_METRIC: "steps",
    ACTIVE_ENERGY_METRIC: "active_energy",
    SLEEP_METRIC: "sleep_duration",
    RESTING_HR_METRIC: "resting_hr",
    SPO2_METRIC: "spo2",
}
# As for the insights (pipeline/insights/panel.py): SpO2's only flag is its soft minimum, a reading the score needs
FLAGGED_DAYS_COUNT = (SPO2_METRIC,)
ROWS_TABLE = "health_score_rows"
SCORED_USERS_TABLE = "health_score_users"
_PLACEHOLDER = re.compile(r"/\* ([a-z][a-z ]*) \*/")


@cache
def _sql_file(name: str) -> str:
    return (resources.files("pipeline.scores") / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def sql(name: str, first_day: dt.date, last_day: dt.date) -> str:
    """The statement in ``sql/<name>.sql`` with its placeholders filled; one left unfilled is an error."""
    pairs = ", ".join(f"({literals([metric])}, {literals([name])})" for metric, name in METRIC_INPUTS.items())
    values = {
        "metric inputs": pairs,
        "flagged days count": literals(FLAGGED_DAYS_COUNT),
        "first day": f"DATE '{first_day.isoformat()}'",
        "last day": f"DATE '{last_day.isoformat()}'",
    }

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KeyError(f"scores sql/{name}.sql: nothing fills the placeholder /* {match.group(1)} */")
        return values[match.group(1)]

    return _PLACEHOLDER.sub(fill, _sql_file(name))


def _frame(conn: ArrowConnection, statement: str) -> pd.DataFrame:
    frame: pd.DataFrame = fetch(conn, statement).to_pandas()
    if "local_date" in frame:
        frame["local_date"] = pd.to_datetime(frame["local_date"]).dt.date
    return frame


def load_values(conn: ArrowConnection, first_day: dt.date, last_day: dt.date) -> pd.DataFrame:
    """Every user's inputs of [first_day, last_day]: user_id, local_date, input, value."""
    daily = _frame(conn, sql("daily_inputs", first_day, last_day))
    regularity = _frame(conn, sql("sleep_regularity", first_day, last_day))
    return pd.concat([daily, regularity], ignore_index=True).astype({"value": "float64"})


def load_bounds(conn: ArrowConnection, first_day: dt.date, last_day: dt.date) -> pd.DataFrame:
    """marts.cohort_daily's p5 and p95 per day and input (none before the dbt marts were first built)."""
    exists = fetch(conn, "SELECT to_regclass('marts.cohort_daily') IS NOT NULL").column(0)[0].as_py()
    if not exists:
        return pd.DataFrame({"local_date": [], "input": [], "p5": [], "p95": []})
    return _frame(conn, sql("cohort_bounds", first_day, last_day))


def _rows_table(scores: pd.DataFrame) -> pa.Table:
    columns = {
        "user_id": pa.array(scores["user_id"].astype(str), pa.string()),
        "local_date": pa.array(pd.to_datetime(scores["local_date"]).to_numpy(dtype="datetime64[D]"), pa.date32()),
        **{
            name: pa.array(scores[name].to_numpy(dtype="float64"), pa.float64(), from_pandas=True)
            for name in SCORE_COLUMNS[2:-1]
        },
        "cohort_users": pa.array(scores["cohort_users"].to_numpy(dtype="int64"), pa.int32()),
    }
    return pa.table(columns)


def write_scores(conn: ArrowConnection, scores: pd.DataFrame, first_day: dt.date, last_day: dt.date) -> int:
    """Replace the scores of [first_day, last_day] with ``scores`` and record the days as scored. Call inside a
    transaction."""
    with conn.cursor() as cursor:
        cursor.adbc_ingest(ROWS_TABLE, _rows_table(scores), mode="replace", temporary=True)
    # whose scores change: those scored now and those whose scores of these days go (before they go)
    scored_users = sql("scored_users", first_day, last_day)
    execute(conn, f"CREATE TEMPORARY TABLE {SCORED_USERS_TABLE} ON COMMIT DROP AS {scored_users}")
    execute(conn, sql("replace_days", first_day, last_day))
    inserted = execute(conn, sql("insert_scores", first_day, last_day))
    execute(conn, sql("record_days", first_day, last_day))
    execute(conn, advance_sql(f"SELECT user_id FROM {SCORED_USERS_TABLE}"))  # last: see advance_sql
    return inserted
