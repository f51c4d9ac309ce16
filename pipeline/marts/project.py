"""The dbt project of the analyst marts (``dbt_like_sql/``): where it is, how dbt is invoked, and its manifest.

dbt connects with the warehouse settings everything else uses (``pipeline/infra/settings.py``): ``profiles.yml`` in
the project reads ``HEALTHPIPE_DBT_*`` variables that ``dbt_environment`` sets for each invocation, the password as
``DBT_ENV_SECRET_HEALTHPIPE_PASSWORD`` (dbt keeps such variables out of its logs and artifacts), so nothing secret is
written to disk. Every invocation gets the metric catalogue as the var ``metrics`` (``catalogue.py``).

The project ships inside the package (possibly read-only in site-packages), so dbt's target and log folders go to
the Dagster home. The manifest Dagster builds the assets from is parsed once per project version (a fingerprint of
the project files, the vars and dbt's version), when the definitions are first loaded, not per run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from sqlalchemy.engine import URL

from pipeline.marts.catalogue import catalogue_rows

PASSWORD_ENV = "DBT_ENV_SECRET_HEALTHPIPE_PASSWORD"  # noqa: S105  (a variable name)
RUN_ID_ENV = "HEALTHPIPE_DBT_RUN_ID"  # the run whose user-days (app.run_user_days) an incremental build recomputes
_PROJECT_SUFFIXES = (".sql", ".yml")


class DbtError(RuntimeError):
    """A dbt command failed; the message has dbt's last lines (dbt never prints the password)."""


def project_dir() -> Path:
    return Path(str(resources.files("dbt_like_sql")))


def dbt_executable() -> str:
    """dbt from this interpreter's environment (the venv need not be on PATH), else whatever PATH finds."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def dbt_vars() -> dict[str, object]:
    """The same for every invocation of a code version: dbt parses the project again whenever its vars change."""
    return {"metrics": catalogue_rows()}


def dbt_environment(url: URL | None) -> dict[str, str]:
    """The variables ``profiles.yml`` reads, for the warehouse at ``url`` (None: the profile's placeholders, enough
    for ``dbt parse``, which does not connect)."""
    if url is None:
        return {}
    return {
        "HEALTHPIPE_DBT_HOST": url.host or "127.0.0.1",
        "HEALTHPIPE_DBT_PORT": str(url.port or 5432),
        "HEALTHPIPE_DBT_USER": url.username or "postgres",
        "HEALTHPIPE_DBT_DATABASE": url.database or "",
        PASSWORD_ENV: url.password or "",
    }


def _project_files() -> list[Path]:
    root = project_dir()
    files = [p for p in root.rglob("*") if p.suffix in _PROJECT_SUFFIXES and "migrations" not in p.parts]
    return sorted(p for p in files if "target" not in p.relative_to(root).parts)


def fingerprint() -> str:
    """Changes when the project, the vars it is parsed with or dbt's version change."""
    from dbt.version import __version__ as dbt_version

    digest = hashlib.sha256(dbt_version.encode())
    digest.update(json.dumps(dbt_vars(), sort_keys=True).encode())
    root = project_dir()
    for path in _project_files():
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def run_dbt(
    args: Sequence[str], target: Path, url: URL | None, run_id: str = "", extra_env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``dbt <args>`` on the project, artifacts and logs in ``target``; raises ``DbtError`` when it fails."""
    target.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **dbt_environment(url),
        **(extra_env or {}),
        RUN_ID_ENV: run_id,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PROFILES_DIR": str(project_dir()),
        "DBT_PROJECT_DIR": str(project_dir()),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target / "logs"),
    }
    command = [dbt_executable(), *args, "--vars", json.dumps(dbt_vars())]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=project_dir())
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise DbtError(f"dbt {args[0]} failed (exit {result.returncode}):\n{tail}")
    return result


def prepare_manifest(target: Path) -> Path:
    """``target/manifest.json`` parsed from the current project; parsed (``dbt parse``, a few seconds) only when the
    project's fingerprint differs from the one recorded beside it. Parsed in a folder of its own and moved into
    place, so processes loading the definitions at the same time never read a half-written manifest."""
    manifest, recorded = target / "manifest.json", target / "manifest.fingerprint"
    current = fingerprint()
    if manifest.exists() and recorded.exists() and recorded.read_text() == current:
        return manifest
    target.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="parse-", dir=target))
    try:
        run_dbt(["parse"], scratch, None)
        os.replace(scratch / "manifest.json", manifest)
        partial = scratch / "partial_parse.msgpack"
        if partial.exists():
            os.replace(partial, target / "partial_parse.msgpack")
        recorded.write_text(current)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return manifest


PARTIAL_PARSE = "partial_parse.msgpack"


def reuse_parse(saved: Path, target: Path) -> None:
    """Start a build in ``target`` from the parse saved in ``saved``: dbt then re-parses only what changed (the
    files reading the run id), not the whole project. dbt ignores a parse made with another project, vars or
    connection."""
    if (saved / PARTIAL_PARSE).exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved / PARTIAL_PARSE, target / PARTIAL_PARSE)


def keep_parse(target: Path, saved: Path) -> None:
    """Save a finished build's parse (made with the real connection) for the next builds, atomically."""
    if (target / PARTIAL_PARSE).exists():
        scratch = saved / f"{PARTIAL_PARSE}.{os.getpid()}"
        shutil.copyfile(target / PARTIAL_PARSE, scratch)
        os.replace(scratch, saved / PARTIAL_PARSE)
