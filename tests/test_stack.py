"""The README's main command, end to end: `healthpipe up` brings up the Dagster UI and the API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.conftest import EXTERNAL_URL_ENV

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_up_serves_the_dagster_ui_and_the_api(tmp_path: Path, make_database: Callable[[], URL]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALTHPIPE_", "DAGSTER_"))}
    env |= {
        "HEALTHPIPE_HOME": str(tmp_path / "home"),
        "HEALTHPIPE_API_PORT": str(free_port()),
        "HEALTHPIPE_DAGSTER_PORT": str(free_port()),
    }
    if os.environ.get(EXTERNAL_URL_ENV):  # on an external server: a fresh database there; else its own embedded one
        env["HEALTHPIPE_DATABASE_URL"] = make_database().render_as_string(hide_password=False)
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "up", "--exit-when-ready"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ready: Dagster UI (code location healthpipe loaded)" in result.stdout
    assert f"ready: API (http://127.0.0.1:{env['HEALTHPIPE_API_PORT']}/health)" in result.stdout
    assert "demo data: 5 users x 14 days" in result.stdout
    if "HEALTHPIPE_DATABASE_URL" not in env:
        # the embedded server outlives `up` (other processes may share it) until `healthpipe db stop`
        from pipeline.infra.embedded_server import EmbeddedPostgres

        server = EmbeddedPostgres(tmp_path / "home")
        assert server.status().running
        assert "the embedded PostgreSQL keeps running" in result.stdout
        server.stop()
