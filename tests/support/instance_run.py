"""One range run through the Dagster instance of ``DAGSTER_HOME``, with the executor the code location is built with
(``HEALTHPIPE_EXECUTOR``): what the process of a run launched from the webserver does, without the webserver.

    python -m tests.support.instance_run USERS FIRST_DAY LAST_DAY

USERS is comma-separated; they are registered as partitions in that order, and the run covers USERS x [FIRST_DAY,
LAST_DAY] with every asset and check of a range run (``pipeline.definitions.ASSET_KEYS``, ``CHECK_KEYS``). The job
is reconstructable (module ``pipeline.definitions``), so an out-of-process executor's steps can load it wherever they
run. Prints ``run <id> <status>``; exit status 0 when the run succeeded.
"""

from __future__ import annotations

import datetime as dt
import sys

from dagster import DagsterInstance, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository

from pipeline.definitions import ASSET_KEYS, CHECK_KEYS
from pipeline.samples.partitions import USERS_PARTITION
from pipeline.samples.run_plan import plan_runs

ASSET_JOB = "__ASSET_JOB"


def run_range(users: list[str], first: dt.date, last: dt.date) -> tuple[str, bool]:
    """(run id, success) of one run over users x [first, last]."""
    pairs = {(u, first + dt.timedelta(days=i)) for u in users for i in range((last - first).days + 1)}
    (rectangle,) = plan_runs(pairs, users, max_user_days=len(pairs))
    repository = ReconstructableRepository.for_module("pipeline.definitions", "defs")
    job = repository.get_reconstructable_job(ASSET_JOB).get_subset(
        asset_selection=set(ASSET_KEYS), asset_check_selection=set(CHECK_KEYS)
    )
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(USERS_PARTITION, users)
        result = execute_job(job, instance, tags=rectangle.tags())
        return result.run_id, result.success


if __name__ == "__main__":
    run_id, success = run_range(
        sys.argv[1].split(","), dt.date.fromisoformat(sys.argv[2]), dt.date.fromisoformat(sys.argv[3])
    )
    print(f"run {run_id} {'SUCCESS' if success else 'FAILURE'}", flush=True)
    sys.exit(0 if success else 1)
