"""Where a run's steps execute, and how big range runs are for it.

``HEALTHPIPE_EXECUTOR=in_process`` (the default): every step in the run's own process. ``celery``: each step becomes
a task on the Celery queue ``HEALTHPIPE_CELERY_QUEUE`` of the broker ``HEALTHPIPE_CELERY_BROKER`` (dagster-celery's
executor); any ``healthpipe worker`` listening there executes it, writing the step's events to the Dagster instance
(PostgreSQL) itself, while the run's process only submits steps and waits for their results. The steps share nothing
but PostgreSQL: the assets read and write the warehouse and hand no values to each other (they return
``MaterializeResult``, nothing goes through an IO manager), so a step may land on any worker of any machine.

The run's process and the workers build their Celery app from the same ``celery_app_args``: the same broker, result
backend and default queue.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from dagster import ExecutorDefinition, in_process_executor

from pipeline.infra.settings import Settings
from pipeline.samples.run_plan import MAX_USER_DAYS_PER_RUN, RUN_COST

# Celery work is split to give every worker a run, but not below this: a run's fixed cost (its process, Dagster's
# bookkeeping, a task per step) is worth ~200 user-days of work (``RUN_COST``), so smaller runs would spend more on
# starting than the extra worker saves.
MIN_USER_DAYS_PER_CELERY_RUN = int(RUN_COST)


def result_backend(broker_url: str) -> str:
    """Where a step's result (its events) goes back to the run: RabbitMQ's reply queues (``rpc://``) with an AMQP
    broker, the same Redis with a Redis broker. dagster-celery needs one: the run waits on each task's result."""
    return broker_url if urlsplit(broker_url).scheme in ("redis", "rediss") else "rpc://"


def celery_app_args(settings: Settings) -> dict[str, Any]:
    """The ``celery_executor`` config, which the workers' app is built from too."""
    broker = settings.celery_broker.get_secret_value()
    return {
        "broker": broker,
        "backend": result_backend(broker),
        "config_source": {"task_default_queue": settings.celery_queue},
    }


def step_executor(settings: Settings) -> ExecutorDefinition:
    if settings.executor == "in_process":
        # Steps run in the run's own process: each step already handles a whole set of partitions, and a process
        # per step would re-import pandas, Dagster and Great Expectations (seconds) nine times per run.
        return in_process_executor
    from dagster_celery import celery_executor

    # configured here, not in the run config: the broker URL (it may hold a password) stays out of the UI
    return celery_executor.configured(celery_app_args(settings), name="celery")


def max_user_days_per_run(settings: Settings, requested_user_days: int) -> int:
    """The cap on a range run's size: with Celery, small enough that ``requested_user_days`` make a run per worker
    process (the run queue starts as many at once, ``Settings.run_queue_limit``), so none is idle while the others
    work; in-process, the fixed ``MAX_USER_DAYS_PER_RUN``."""
    if settings.executor != "celery":
        return MAX_USER_DAYS_PER_RUN
    per_worker = math.ceil(requested_user_days / settings.celery_workers)
    return min(MAX_USER_DAYS_PER_RUN, max(MIN_USER_DAYS_PER_CELERY_RUN, per_worker))
