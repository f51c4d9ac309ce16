"""Evaluating the insight rules as of a range of local days for a set of users (every user by default), in one
pass: the marts of the range and the ``LOOKBACK_DAYS - 1`` days before it are read once, every rule runs over all
users and days at once, and the findings and episodes are replaced in one transaction (a rerun writes the same rows;
an interrupted one leaves the previous ones)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy.engine import URL

from pipeline.insights.io import load_inputs, sql, stage_users, write_findings
from pipeline.insights.panel import build_panel
from pipeline.insights.rules import evaluate
from pipeline.insights.thresholds import LOOKBACK_DAYS
from pipeline.samples.io import arrow_connection, execute, fetch, transaction

EVALUATION_LOCK = 0x494E_5349  # "INSI": an advisory lock key of its own (migrations use "HEAL")


@dataclass(frozen=True)
class Evaluation:
    first_day: dt.date
    last_day: dt.date
    users: int
    findings: int  # (user, rule, subject, day) cells where a rule held
    findings_by_rule: dict[str, int]
    insights: list[dict[str, object]] = field(default_factory=list)  # rule, severity, status, insights (all users)
    seconds: dict[str, float] = field(default_factory=dict)


def evaluate_days(url: URL, first_day: dt.date, last_day: dt.date, users: Sequence[str] | None = None) -> Evaluation:
    """Evaluate [first_day, last_day] for ``users`` (None: every user, and the days are recorded as evaluated)."""
    if last_day < first_day:
        raise ValueError(f"no days to evaluate: {first_day} is after {last_day}")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with arrow_connection(url) as conn, transaction(conn):
        # Evaluations take turns (the schedule's run and a late-data run may overlap on a user's days): the second
        # reads the marts and the findings after the first committed, instead of inserting what it inserted.
        execute(conn, f"SELECT pg_advisory_xact_lock({EVALUATION_LOCK})")
        staged = stage_users(conn, users)
        inputs = load_inputs(conn, staged, first_day - dt.timedelta(days=LOOKBACK_DAYS - 1), last_day)
        seconds["load"] = time.perf_counter() - started
        findings = evaluate(build_panel(inputs), pd.Timestamp(first_day))
        seconds["rules"] = time.perf_counter() - started - seconds["load"]
        write_findings(conn, findings, first_day, last_day, every_user=users is None)
        summary = fetch(conn, sql("summary")).to_pandas()
    seconds["write"] = time.perf_counter() - started - seconds["load"] - seconds["rules"]
    return Evaluation(
        first_day=first_day,
        last_day=last_day,
        users=len(staged),
        findings=len(findings),
        findings_by_rule={str(k): int(v) for k, v in findings["rule"].value_counts().sort_index().items()},
        insights=[
            {"rule": r, "severity": s, "status": st, "insights": int(n)}
            for r, s, st, n in summary.itertuples(index=False)
        ],
        seconds={k: round(v, 3) for k, v in seconds.items()},
    )
