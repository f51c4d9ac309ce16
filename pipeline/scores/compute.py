"""Scoring a range of local days for every user, in one pass: the inputs of the range are read once, scored at once
(``scoring.score_days``), and each day's rows replaced in one transaction (a rerun writes the same values; an
interrupted one leaves the previous ones)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy.engine import URL

from pipeline.samples.io import arrow_connection, execute, transaction
from pipeline.scores.io import load_bounds, load_values, write_scores
from pipeline.scores.scoring import score_days

SCORING_LOCK = 0x5343_4F52  # "SCOR": runs over the same days take turns (migrations use "HEAL", insights "INSI")


@dataclass(frozen=True)
class Scoring:
    first_day: dt.date
    last_day: dt.date
    scores: int  # rows written
    users: int  # distinct users scored in the range
    distribution: dict[str, float]  # count, p5, p50, p95, mean of the scores
    completeness: dict[str, float]  # mean, and the share of scores with every input
    bounds_missing: int  # (day, input) pairs winsorized at their own percentiles: no cohort_daily row
    seconds: dict[str, float] = field(default_factory=dict)


def _summary(scores: pd.DataFrame) -> tuple[dict[str, float], dict[str, float]]:
    if scores.empty:
        return {"count": 0}, {}
    values = scores["score"].to_numpy()
    p5, p50, p95 = np.quantile(values, [0.05, 0.5, 0.95])
    distribution: dict[str, float] = {"count": len(values), "p5": p5, "p50": p50, "p95": p95, "mean": values.mean()}
    complete = scores["completeness"].to_numpy()
    completeness = {"mean": complete.mean(), "complete_share": float((complete >= 1 - 1e-9).mean())}
    return (
        {k: v if k == "count" else round(float(v), 2) for k, v in distribution.items()},
        {k: round(float(v), 3) for k, v in completeness.items()},
    )


def score_range(url: URL, first_day: dt.date, last_day: dt.date) -> Scoring:
    """Score [first_day, last_day] for every user of each day."""
    if last_day < first_day:
        raise ValueError(f"no days to score: {first_day} is after {last_day}")
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    with arrow_connection(url) as conn, transaction(conn):
        execute(conn, f"SELECT pg_advisory_xact_lock({SCORING_LOCK})")
        values = load_values(conn, first_day, last_day)
        bounds = load_bounds(conn, first_day, last_day)
        seconds["load"] = time.perf_counter() - started
        scores = score_days(values, bounds)
        seconds["score"] = time.perf_counter() - started - seconds["load"]
        written = write_scores(conn, scores, first_day, last_day)
    seconds["write"] = time.perf_counter() - started - seconds["load"] - seconds["score"]
    present = values[["local_date", "input"]].drop_duplicates()
    if present.empty or bounds.empty:
        missing = len(present)
    else:
        matched = present.merge(bounds[["local_date", "input"]], how="left", indicator=True)
        missing = int((matched["_merge"] == "left_only").sum())
    distribution, completeness = _summary(scores)
    return Scoring(
        first_day=first_day,
        last_day=last_day,
        scores=written,
        users=int(scores["user_id"].nunique()) if not scores.empty else 0,
        distribution=distribution,
        completeness=completeness,
        bounds_missing=missing,
        seconds={k: round(v, 3) for k, v in seconds.items()},
    )
