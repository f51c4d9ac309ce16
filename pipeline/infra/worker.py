"""``healthpipe worker``: a Celery worker that executes the steps of runs launched with ``HEALTHPIPE_EXECUTOR=celery``.

What the worker needs to execute any step of any run, on this machine or another:

- the broker and queue of the runs (``HEALTHPIPE_CELERY_BROKER``, ``HEALTHPIPE_CELERY_QUEUE``), checked before it
  starts so that a wrong address is one clear error, not Celery's retry loop;
- the same code: a task names the job by module (``pipeline.definitions``), which the worker imports from this
  installed package, with the same partition settings (``HEALTHPIPE_PARTITIONS_START``, ``HEALTHPIPE_USER_SHARDS``);
- the same Dagster instance: a task carries the run's instance reference, whose storage reads its PostgreSQL URL from
  ``HEALTHPIPE_DAGSTER_STORAGE_URL`` (``pipeline/infra/dagster_home.py``), set here from the settings;
- the same warehouse (the steps read and write it directly), passed on through the environment.

The worker process is Celery's main process; the steps run in its pool of ``concurrency`` forked processes.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

from pipeline.infra.dagster_home import dagster_environment
from pipeline.infra.database import dagster_storage_url, redacted, warehouse_url
from pipeline.infra.executor import celery_app_args
from pipeline.infra.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

BROKER_TIMEOUT_SECONDS = 5.0


class WorkerError(RuntimeError):
    """The worker cannot start (the CLI prints the message)."""


def shown_broker(url: str) -> str:
    """The broker URL with its password masked."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url))


def check_broker(url: str, timeout: float = BROKER_TIMEOUT_SECONDS) -> None:
    """Connects to the broker once; a ``WorkerError`` naming it (password masked) when it does not answer or
    refuses the login."""
    from kombu.connection import Connection

    try:
        with Connection(url, connect_timeout=timeout) as connection:  # type: ignore[no-untyped-call]
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # kombu, amqp and socket errors alike; their text holds no password
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkerError(
            f"cannot reach the Celery broker at {shown_broker(url)} ({reason}); start RabbitMQ there or set "
            "HEALTHPIPE_CELERY_BROKER to the broker the runs use"
        ) from None


def celery_app(settings: Settings) -> Celery:
    """The Celery app of the workers: dagster-celery's, built from the executor's own config, with its step task."""
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    executor = CeleryExecutor.for_cli(**celery_app_args(settings))  # type: ignore[no-untyped-call]
    app: Celery = make_app(executor.app_args())  # type: ignore[no-untyped-call]
    create_task(app)  # type: ignore[no-untyped-call]
    return app


def worker_environment(settings: Settings) -> dict[str, str]:
    """The variables the steps need (the warehouse, the Dagster instance's storage), as ``healthpipe up`` gives
    them to the processes it starts (the master key file's path too). Starts the embedded server when no URL is
    set."""
    url = warehouse_url(settings)
    return {
        **dagster_environment(settings.resolved_dagster_home, dagster_storage_url(settings, url)),
        "HEALTHPIPE_DATABASE_URL": url.render_as_string(hide_password=False),
        "HEALTHPIPE_HOME": str(settings.home.resolve()),
        "HEALTHPIPE_MASTER_KEY_FILE": str(settings.resolved_master_key_file),
    }


def worker_argv(settings: Settings, concurrency: int, name: str | None) -> list[str]:
    """Celery's ``worker`` command line: the queue, the pool size, one task per process at a time (a step is long;
    prefetching would hold a second one back from an idle worker)."""
    return [
        "worker",
        "--queues",
        settings.celery_queue,
        "--concurrency",
        str(concurrency),
        "--prefetch-multiplier",
        "1",
        "--hostname",
        f"{name or 'healthpipe-' + uuid.uuid4().hex[:6]}@%h",
        "--loglevel",
        "INFO",
    ]


def run_worker(settings: Settings, concurrency: int, name: str | None = None) -> int:
    """Runs a worker until it is stopped (Ctrl-C or SIGTERM: it finishes the steps it holds, then exits)."""
    if concurrency < 1:
        raise WorkerError(f"--concurrency must be at least 1, not {concurrency}")
    broker = settings.celery_broker.get_secret_value()
    check_broker(broker)
    environment = worker_environment(settings)
    os.environ.update(environment)  # inherited by the pool's processes, which execute the steps
    argv = worker_argv(settings, concurrency, name)
    print(
        f"healthpipe worker: queue {settings.celery_queue!r} on {shown_broker(broker)}, {concurrency} process(es); "
        f"warehouse {redacted(environment['HEALTHPIPE_DATABASE_URL'])}",
        flush=True,
    )
    if settings.executor != "celery":
        print(
            "note: HEALTHPIPE_EXECUTOR is not 'celery' here; runs launched from this environment execute in-process",
            flush=True,
        )
    celery_app(settings).worker_main(argv)
    return 0
