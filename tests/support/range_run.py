"""One Dagster run of the samples assets (and their checks) over a users x days rectangle, in this process.

The kill-and-rerun test starts it as a child process and SIGKILLs it midway:

    python -m tests.support.range_run USERS FIRST_DAY LAST_DAY [USER_DAYS_PER_CHUNK]

USERS is comma-separated, in the order they are registered as partitions; the warehouse comes from
``HEALTHPIPE_DATABASE_URL``, shard mode from ``HEALTHPIPE_USER_SHARDS``. Exit status 0 when the runs succeeded.
"""

from __future__ import annotations

import datetime as dt
import sys

from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult, define_asset_job

from pipeline.samples.partitions import USER_SHARDS, USERS_PARTITION
from pipeline.samples.run_plan import dimension_pairs, plan_runs, shard_weights


def materialize_range(
    users: list[str], first: dt.date, last: dt.date, chunk: int | None = None, marts: bool = False
) -> bool:
    """Whether every run of ``execute_range`` succeeded."""
    return all(result.success for result in execute_range(users, first, last, chunk, marts))


def execute_range(
    users: list[str], first: dt.date, last: dt.date, chunk: int | None = None, marts: bool = False
) -> list[ExecuteInProcessResult]:
    """Run the three sample assets (``marts``: every asset and check of a real range run, the dbt marts included)
    over users x [first, last] as range-tagged runs (an ephemeral Dagster instance): one run
    per user, or, with ``HEALTHPIPE_USER_SHARDS``, per rectangle of the users' shards (shards are a static
    dimension; a rectangle may span shards none of these users is in)."""
    from pipeline import definitions
    from pipeline.samples import assets

    if chunk:
        assets.PARTITIONS_PER_CHUNK = chunk  # several chunks (each committed on its own) in a small test run
    pairs = {(u, first + dt.timedelta(days=i)) for u in users for i in range((last - first).days + 1)}
    if USER_SHARDS:
        order = [f"shard-{i:03d}" for i in range(USER_SHARDS)]
        rectangles = plan_runs(dimension_pairs(pairs), order, max_user_days=len(pairs), weights=shard_weights(users))
    else:
        (rectangle,) = plan_runs(pairs, users, max_user_days=len(pairs))
        rectangles = [rectangle]
    for rectangle in rectangles:
        print(f"range run over {rectangle.describe()}", flush=True)
    selection = AssetSelection.assets(*definitions.ASSET_KEYS) if marts else AssetSelection.groups("samples")
    job = define_asset_job("samples", selection=selection).resolve(asset_graph=definitions.defs.resolve_asset_graph())
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(USERS_PARTITION, users)
        results = [
            job.execute_in_process(
                instance=instance,
                resources=dict(definitions.defs.resources),  # type: ignore[arg-type]
                tags=rectangle.tags(),
                raise_on_error=False,
            )
            for rectangle in rectangles
        ]
    return results


if __name__ == "__main__":
    users, first, last = sys.argv[1].split(","), dt.date.fromisoformat(sys.argv[2]), dt.date.fromisoformat(sys.argv[3])
    chunk = int(sys.argv[4]) if len(sys.argv) > 4 else None
    sys.exit(0 if materialize_range(users, first, last, chunk) else 1)
