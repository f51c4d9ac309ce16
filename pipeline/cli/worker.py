"""``healthpipe worker``: execute the steps of Celery runs (``pipeline/infra/worker.py``), on each extra machine."""

from __future__ import annotations

import argparse
import os

from pipeline.infra.settings import Settings


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.infra.worker import run_worker

    return run_worker(settings, args.concurrency, args.name)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker",
        help="execute the steps of runs on the Celery queue (HEALTHPIPE_EXECUTOR=celery), until Ctrl-C",
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=os.cpu_count() or 1,
        help="steps executed at once, each in its own process (default: the CPU count, %(default)s here)",
    )
    worker.add_argument("--name", help="worker name, shown in the run's events (default: healthpipe-<random>)")
    worker.set_defaults(handler=cmd_worker)
