"""``healthpipe docs``: the data dictionary and lineage of the marts as dbt's static docs site, served offline."""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server

from pipeline.cli.warehouse import migrated_engine
from pipeline.infra.settings import Settings

SITE = "static_index.html"  # dbt docs generate --static: one self-contained page (manifest and catalog inside)


def cmd_docs(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.marts.project import run_dbt

    engine = migrated_engine(settings)  # the catalog part reads the tables' columns and comments from the database
    target = settings.resolved_dagster_home / "dbt" / "docs"
    run_dbt(["docs", "generate", "--static"], target, engine.url)
    engine.dispose()
    page = target / SITE
    print(f"docs: {page}")
    if args.no_serve:
        return 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(target))
    with http.server.ThreadingHTTPServer((settings.api_host, args.port), handler) as server:
        print(f"serving on http://{settings.api_host}:{server.server_address[1]}/{SITE} (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    docs = commands.add_parser("docs", help="build the marts' docs site (dbt docs: tables, columns, lineage), serve it")
    docs.add_argument("--port", type=int, default=8080, help="where to serve it on the API host (default 8080)")
    docs.add_argument("--no-serve", action="store_true", help="only build it and print its path")
    docs.set_defaults(handler=cmd_docs)
