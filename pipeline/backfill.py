"""``healthpipe backfill``: launch a Dagster backfill of user-day partitions from the command line.

It talks to the running Dagster webserver's GraphQL API, the same call the UI's "Materialize" dialog makes, so the
backfill is visible, cancellable and retried there like any other; the daemon executes it under the assets'
backfill policy (up to 1,000 user-days per run).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from pipeline.samples.assets import daily_aggregates, deduplicated_samples, hourly_aggregates
from pipeline.samples.partitions import USER_SHARDS, USERS_PARTITION, partition_key, shard_of

ASSETS = [deduplicated_samples, hourly_aggregates, daily_aggregates]
_ADD_USER = """mutation($name: String!, $key: String!, $repository: RepositorySelector!) {
  addDynamicPartition(partitionsDefName: $name, partitionKey: $key, repositorySelector: $repository) {
    __typename ... on PythonError { message } ... on UnauthorizedError { message } } }"""
_LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on InvalidStepError { invalidStepKey } ... on UnauthorizedError { message } } }"""
_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill {
  status numPartitions runs(limit: 1000) { status } } } }"""


class BackfillError(RuntimeError):
    pass


def graphql(base_url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    from pipeline.stack import http_request

    payload_bytes = json.dumps({"query": query, "variables": variables}).encode()
    status, body = http_request(f"{base_url}/graphql", payload_bytes, timeout=300)
    if status == 0:
        raise BackfillError(f"the Dagster webserver at {base_url} does not answer; start it with `healthpipe up`")
    payload: dict[str, Any] = json.loads(body)
    if payload.get("errors") or status != 200:
        raise BackfillError(f"Dagster refused the request: {(payload.get('errors') or [{}])[0].get('message')}")
    return payload["data"]  # type: ignore[no-any-return]


def user_days(
    engine: Engine, users: list[str] | None, first: dt.date | None, last: dt.date | None
) -> list[tuple[str, dt.date]]:
    """The requested user-days: the users (default: all with data) x the days from ``first`` to ``last`` (default:
    the first and last local day with data of any of them)."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            """SELECT s.user_id, min(s.start_utc AT TIME ZONE u.home_timezone)::date,
                      max(s.start_utc AT TIME ZONE u.home_timezone)::date
               FROM raw.samples s JOIN app.users u USING (user_id) GROUP BY s.user_id ORDER BY s.user_id"""
        ).all()
    spans = {user: (lo, hi) for user, lo, hi in rows if users is None or user in users}
    missing = set(users or []) - set(spans)
    if missing:
        raise BackfillError(f"no raw samples for user(s) {', '.join(sorted(missing))}")
    if not spans:
        return []
    # one rectangle (every user x the whole span): a backfill packs rectangles into runs, 1,000 user-days each
    day = first or min(lo for lo, _ in spans.values())
    end = last or max(hi for _, hi in spans.values())
    result: list[tuple[str, dt.date]] = []
    while day <= end:
        result.extend((user, day) for user in spans)
        day += dt.timedelta(days=1)
    return result


def launch(base_url: str, pairs: list[tuple[str, dt.date]], repository: dict[str, str]) -> str:
    """Register the users as partitions and launch one backfill of the three assets; returns its id."""
    users = sorted({user for user, _ in pairs})
    if not USER_SHARDS:
        for user in users:
            outcome = graphql(base_url, _ADD_USER, {"name": USERS_PARTITION, "key": user, "repository": repository})
            kind = outcome["addDynamicPartition"]["__typename"]
            if kind not in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"):
                raise BackfillError(f"could not add user {user} as a partition: {outcome['addDynamicPartition']}")
    keys = sorted({str(partition_key(shard_of(u) if USER_SHARDS else u, d)) for u, d in pairs})
    params = {"assetSelection": [{"path": a.key.path} for a in ASSETS], "partitionNames": keys, "fromFailure": False}
    outcome = graphql(base_url, _LAUNCH, {"params": params})["launchPartitionBackfill"]
    if outcome["__typename"] != "LaunchBackfillSuccess":
        raise BackfillError(f"Dagster did not launch the backfill: {outcome}")
    return str(outcome["backfillId"])


def wait(base_url: str, backfill_id: str, report: Callable[[str], None], poll_seconds: float = 5.0) -> str:
    """Poll until the backfill ends; returns its final status."""
    started = time.monotonic()
    while True:
        state = graphql(base_url, _STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        runs = [r["status"] for r in state.get("runs", [])]
        done = sum(s == "SUCCESS" for s in runs)
        failed = sum(s in ("FAILURE", "CANCELED") for s in runs)
        report(
            f"{time.monotonic() - started:6.0f}s  backfill {backfill_id}: {state.get('status')}, "
            f"{state.get('numPartitions')} user-days, runs: {done} succeeded, {failed} failed, {len(runs)} launched"
        )
        if state.get("status") not in ("REQUESTED", "CANCELING"):
            return str(state.get("status"))
        time.sleep(poll_seconds)
