"""``healthpipe users export USER [--output FILE]``: everything held about a user as one zip archive
(pipeline/export/archive.py), written as it is read; the export is an entry of the audit trail."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.audit.entries import AuditEntry, record
from pipeline.cli.warehouse import migrated_engine
from pipeline.export.archive import ExportCounts, UnknownUserError, archive_chunks
from pipeline.infra.database import psycopg_connection
from pipeline.infra.settings import Settings

ROUTE = "healthpipe users export"


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    output = Path(args.output or f"healthpipe-export-{args.user_id}.zip")
    partial = output.with_name(output.name + ".partial")  # the archive appears whole or not at all
    counts = ExportCounts()
    with psycopg_connection(migrated_engine(settings)) as conn:
        try:
            # only its owner may read it: the archive holds the user's decrypted names, devices and metadata
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                for chunk in archive_chunks(conn, args.user_id, counts):
                    out.write(chunk)
        except UnknownUserError as exc:
            partial.unlink(missing_ok=True)
            raise ValueError(str(exc)) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, output)
        record(conn, AuditEntry.now("cli", ROUTE, args.user_id, records=counts.total))
    print(f"{output}: {counts.total:,} records", file=sys.stderr)
    for name, records in counts.files.items():
        print(f"  {name}: {records:,}", file=sys.stderr)
    return 0


def add_export_command(users: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = users.add_parser("export", help="everything held about a user, as one zip archive (audited)")
    export.add_argument("user_id")
    export.add_argument("--output", help="the archive's path (default healthpipe-export-USER.zip)")
    export.set_defaults(handler=cmd_export)
