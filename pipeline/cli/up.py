"""``healthpipe up``: the whole local stack (``pipeline/stack.py``) until Ctrl-C."""

from __future__ import annotations

import argparse

from pipeline.infra.settings import Settings


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.stack import run_stack

    return run_stack(settings, exit_when_ready=args.exit_when_ready, with_api=not args.no_api, demo=not args.no_demo)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser("up", help="start the database, migrate, run the Dagster UI and the API")
    up.add_argument(
        "--exit-when-ready",
        action="store_true",
        help="stop everything once the UI's code location and the API answer (a smoke test)",
    )
    up.add_argument("--no-api", action="store_true", help="do not start the API")
    up.add_argument(
        "--no-demo",
        action="store_true",
        help="do not generate demo data into an empty warehouse (by default 5 users x 14 days)",
    )
    up.set_defaults(handler=cmd_up)
