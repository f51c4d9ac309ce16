"""Recomputing user-days on request, in few runs, from the Dagster UI.

The UI's "Materialize" dialog on the partitioned assets launches a Dagster asset backfill, and Dagster's backfill
daemon splits a user x day backfill into one run per user. The job ``request_recompute`` is the UI's way to get the
few-run plan instead: launch it from its Launchpad with the users and days as config; it checks the request against
the warehouse and records it (as its own successful run), and the sensor ``recompute_requests`` turns it into runs of
whole user x day rectangles (``pipeline/samples/run_plan.py``), tagged ``healthpipe/request=<the request's run id>``.
``healthpipe backfill`` launches the same runs from the command line.

``users`` has no default: the Launchpad opens with an empty config, which must not mean "recompute everything". The
config schema makes it required (the Launchpad shows it missing and keeps Launch disabled); ``users: all`` is the
explicit everyone. A request the schema lets through but the warehouse refuses (unknown users, ``users: []``, bad
days) fails its run with a ``dagster.Failure`` whose description is the reason.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from dagster import Failure, Field, Noneable, OpExecutionContext, ScalarUnion, job, op
from sqlalchemy import Engine

from pipeline.resources import WarehouseResource
from pipeline.samples.io import sql
from pipeline.samples.partitions import partition_days

REQUEST_JOB = "request_recompute"
REQUEST_OP = "recompute_request"


class RequestError(ValueError):
    pass


ALL_USERS = "all"
REQUEST_CONFIG = {
    "users": Field(
        ScalarUnion(scalar_type=str, non_scalar_schema=[str]),
        is_required=True,
        description=f"`{ALL_USERS}` for every user with raw samples, or a list of user ids, e.g. [u0001, u0002]",
    ),
    "first_day": Field(
        Noneable(str),
        is_required=False,
        default_value=None,
        description="first local day, YYYY-MM-DD; empty: each user's first day with data (minus one)",
    ),
    "last_day": Field(
        Noneable(str),
        is_required=False,
        default_value=None,
        description="last local day, YYYY-MM-DD; empty: each user's last day with data (plus one)",
    ),
}


def _day(config: Mapping[str, object], name: str) -> dt.date | None:
    value = config.get(name)
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise RequestError(f"{name} is YYYY-MM-DD, not {value!r}") from None


@dataclass(frozen=True)
class RecomputeRequest:
    """A request as launched (the op's config): ``users`` None means every user with raw samples."""

    users: list[str] | None
    first_day: dt.date | None
    last_day: dt.date | None

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> "RecomputeRequest":
        users = config.get("users")
        if users == ALL_USERS:
            chosen = None
        elif users is None or users == "":  # "" is what the Launchpad's "Scaffold missing config" writes
            raise RequestError(
                f"say whose days to recompute: users: {ALL_USERS} for every user with raw samples, or a list of user "
                "ids (users: [u0001, u0002])"
            )
        elif isinstance(users, list) and not users:
            raise RequestError(
                f"users: [] names no one; list user ids (users: [u0001, u0002]) or write users: {ALL_USERS} for "
                "every user with raw samples"
            )
        elif isinstance(users, list) and all(isinstance(u, str) and u for u in users):
            chosen = list(users)
        else:
            raise RequestError(f"users is `{ALL_USERS}` or a list of user ids, not {users!r}")
        return cls(chosen, _day(config, "first_day"), _day(config, "last_day"))

    def user_days(self, engine: Engine) -> list[tuple[str, dt.date]]:
        return user_days(engine, self.users, self.first_day, self.last_day)


def user_days(
    engine: Engine,
    users: list[str] | None,
    first: dt.date | None,
    last: dt.date | None,
    missing_ok: bool = False,
) -> list[tuple[str, dt.date]]:
    """The requested user-days: for each user (default: every user with raw samples), the days from ``first`` to
    ``last``; where one is not given, that user's first or last local day with data, widened by a day (a sample's
    local day depends on its zone, and a night counts for the day it ends), as the sensor does. A user without raw
    samples is an error, or, with ``missing_ok``, has no days. Days outside the day dimension (before
    ``HEALTHPIPE_PARTITIONS_START``, after tomorrow) are left out: they are not partitions."""
    if first and last and first > last:
        raise RequestError(f"the first day {first} is after the last day {last}")
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(sql("user_day_spans"), {"users": users}).all()
    spans: dict[str, tuple[dt.date, dt.date]] = {
        str(user): (cast(dt.date, lo), cast(dt.date, hi)) for user, lo, hi in rows
    }
    missing = sorted(set(users or []) - set(spans))
    if missing and not missing_ok:
        raise RequestError(f"no raw samples for user(s) {', '.join(missing)}")
    earliest, latest = partition_days()
    result: list[tuple[str, dt.date]] = []
    for user, (lo, hi) in spans.items():
        day, end = max(first or lo, earliest), min(last or hi, latest)
        while day <= end:
            result.append((user, day))
            day += dt.timedelta(days=1)
    return result


@op(
    name=REQUEST_OP,
    config_schema=REQUEST_CONFIG,
    description="Checks a recompute request (users, first_day, last_day) against the warehouse; the sensor "
    "recompute_requests then launches runs of whole user x day rectangles for it.",
)
def recompute_request(context: OpExecutionContext, warehouse: WarehouseResource) -> None:
    try:
        pairs = RecomputeRequest.from_config(context.op_config).user_days(warehouse.engine())
        if not pairs:
            earliest, latest = partition_days()
            raise RequestError(f"nothing to recompute: no user-day with raw samples in {earliest}..{latest}")
    except RequestError as exc:  # the reason is the failure's message (no chained stack trace); retrying is futile
        raise Failure(description=f"request refused: {exc}", allow_retries=False) from None
    users = sorted({u for u, _ in pairs})
    days = sorted({d for _, d in pairs})
    context.log.info(
        f"recompute of {len(pairs):,} user-days requested: {len(users)} user(s) ({', '.join(users[:10])}"
        f"{'...' if len(users) > 10 else ''}), {days[0]}..{days[-1]}. The sensor recompute_requests launches "
        f"the runs, tagged healthpipe/request={context.run_id}."
    )


@job(
    name=REQUEST_JOB,
    description="Recompute user-days in few runs: launch with config ops.recompute_request.config.{users, "
    "first_day, last_day} (users: all, or users: [u0001, u0002]); the sensor recompute_requests launches the runs "
    "(one per user x day rectangle).",
)
def request_recompute() -> None:
    recompute_request()
