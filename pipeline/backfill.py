"""``healthpipe backfill``: recompute user-days in few Dagster runs, launched through the webserver.

It plans runs over whole users x days rectangles (``pipeline/samples/run_plan.py``) and launches each with the
webserver's GraphQL ``launchRun`` (the implicit asset job, the range runs' assets and checks, partition-range tags),
so the runs are queued, shown, cancellable and re-executable in the UI like any other. All runs of one invocation
carry the tag ``healthpipe/backfill=<id>``; ``--wait`` follows them until they end.

(Dagster's own backfill, ``launchPartitionBackfill``, would hand the partitions to the asset-backfill daemon, which
splits a user x day backfill into one run per user.)
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.definitions import ASSET_KEYS, CHECK_KEYS
from pipeline.samples.partitions import USER_SHARDS, USERS_PARTITION
from pipeline.samples.run_plan import MAX_USER_DAYS_PER_RUN, Rectangle, dimension_pairs, plan_runs, shard_weights

BACKFILL_TAG = "healthpipe/backfill"
ASSET_JOB = "__ASSET_JOB"  # Dagster's implicit job over all assets of the code location
REPOSITORY = {"repositoryLocationName": "healthpipe", "repositoryName": "__repository__"}
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

# The GraphQL documents are written here rather than sent through dagster-graphql's DagsterGraphQLClient: its
# submit_job_execution takes tags and an asset selection but no asset check selection, so a run launched through it
# records no check selection and runs whatever checks target the selected assets instead of the checks named here
# (as the sensors name them); and the client has no call to add a dynamic partition or to read a partition dimension's
# keys. One (query, variables) callable for every document also lets tests/cli/test_backfill.py run them in-process
# through dagster-graphql's schema.
_ADD_USER = """mutation($name: String!, $key: String!, $repository: RepositorySelector!) {
  addDynamicPartition(partitionsDefName: $name, partitionKey: $key, repositorySelector: $repository) {
    __typename ... on Error { message } } }"""
_DIMENSIONS = """query($asset: AssetKeyInput!) { assetNodeOrError(assetKey: $asset) { __typename
  ... on AssetNode { partitionKeysByDimension { name partitionKeys } } } }"""
_LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on RunConfigValidationInvalid { errors { message } }
  ... on Error { message } } }"""
_RUNS = """query($filter: RunsFilter) { runsOrError(filter: $filter) { __typename
  ... on Runs { results { runId status } } ... on Error { message } } }"""

# (query, variables) -> the response's "data"
GraphQL = Callable[[str, dict[str, Any]], dict[str, Any]]


class BackfillError(RuntimeError):
    pass


def http_graphql(base_url: str) -> GraphQL:
    """GraphQL over HTTP to the running Dagster webserver."""
    from pipeline.stack import http_request

    def post(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        payload_bytes = json.dumps({"query": query, "variables": variables}).encode()
        status, body = http_request(f"{base_url}/graphql", payload_bytes, timeout=300)
        if status == 0:
            raise BackfillError(f"the Dagster webserver at {base_url} does not answer; start it with `healthpipe up`")
        payload: dict[str, Any] = json.loads(body)
        if payload.get("errors") or status != 200:
            raise BackfillError(f"Dagster refused the request: {(payload.get('errors') or [{}])[0].get('message')}")
        return payload["data"]  # type: ignore[no-any-return]

    return post


@dataclass(frozen=True)
class Launched:
    backfill_id: str
    run_ids: list[str]
    rectangles: list[Rectangle]


def user_dimension(graphql: GraphQL) -> list[str]:
    """The keys of the assets' user dimension, in the order Dagster expands partition ranges over them."""
    node = graphql(_DIMENSIONS, {"asset": {"path": ASSET_KEYS[0].path}})["assetNodeOrError"]
    if node["__typename"] != "AssetNode":
        raise BackfillError(f"Dagster does not know the asset {ASSET_KEYS[0].to_user_string()}: {node}")
    for dimension in node["partitionKeysByDimension"]:
        if dimension["name"] == "user":
            return list(dimension["partitionKeys"])
    raise BackfillError("the assets have no user partition dimension")


def launch(
    graphql: GraphQL,
    user_days: Sequence[tuple[str, dt.date]],
    all_users: Sequence[str] = (),
    max_user_days: int = MAX_USER_DAYS_PER_RUN,
) -> Launched:
    """Register the users as partitions, plan the rectangles, launch one run per rectangle. ``all_users`` (every
    user in the warehouse) weighs the shards when the user dimension holds shards."""
    order = user_dimension(graphql)
    if not USER_SHARDS:
        missing = sorted({u for u, _ in user_days} - set(order))
        for user in missing:  # in sorted order: appended to the dimension in that order
            outcome = graphql(_ADD_USER, {"name": USERS_PARTITION, "key": user, "repository": REPOSITORY})
            kind = outcome["addDynamicPartition"]["__typename"]
            if kind not in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"):
                raise BackfillError(f"could not add user {user} as a partition: {outcome['addDynamicPartition']}")
        if missing:
            order = user_dimension(graphql)
    weights = shard_weights(all_users) if USER_SHARDS else None
    rectangles = plan_runs(dimension_pairs(user_days), order, max_user_days=max_user_days, weights=weights)
    backfill_id = uuid.uuid4().hex[:8]
    run_ids: list[str] = []
    for rectangle in rectangles:
        tags = {BACKFILL_TAG: backfill_id, **rectangle.tags()}
        params = {
            "selector": {
                **REPOSITORY,
                "jobName": ASSET_JOB,
                "assetSelection": [{"path": key.path} for key in ASSET_KEYS],
                "assetCheckSelection": [{"assetKey": {"path": k.asset_key.path}, "name": k.name} for k in CHECK_KEYS],
            },
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        outcome = graphql(_LAUNCH, {"params": params})["launchRun"]
        if outcome["__typename"] != "LaunchRunSuccess":
            launched = f" ({len(run_ids)} run(s) of backfill {backfill_id} were launched before)" if run_ids else ""
            raise BackfillError(f"Dagster did not launch the run for {rectangle.describe()}: {outcome}{launched}")
        run_ids.append(str(outcome["run"]["runId"]))
    return Launched(backfill_id, run_ids, rectangles)


def statuses(graphql: GraphQL, run_ids: Sequence[str]) -> dict[str, str]:
    outcome = graphql(_RUNS, {"filter": {"runIds": list(run_ids)}})["runsOrError"]
    if outcome["__typename"] != "Runs":
        raise BackfillError(f"Dagster could not list the runs: {outcome}")
    return {run["runId"]: run["status"] for run in outcome["results"]}


def wait(
    graphql: GraphQL,
    run_ids: Sequence[str],
    report: Callable[[str], None],
    poll_seconds: float = 5.0,
    timeout_seconds: float | None = None,
) -> dict[str, str]:
    """Poll until every run has ended; returns each run's final status."""
    started = time.monotonic()
    last = ""
    while True:
        state = statuses(graphql, run_ids)
        counts = Counter(state.get(run_id, "UNKNOWN") for run_id in run_ids)
        line = ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
        if line != last:
            report(f"{time.monotonic() - started:6.0f}s  {len(run_ids)} run(s): {line}")
            last = line
        if all(state.get(run_id) in FINISHED for run_id in run_ids):
            return state
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            raise BackfillError(f"runs still going after {timeout_seconds:.0f} s: {line}")
        time.sleep(poll_seconds)
