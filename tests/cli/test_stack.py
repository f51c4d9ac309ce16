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

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]


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
    assert f"Dashboard:  http://127.0.0.1:{env['HEALTHPIPE_API_PORT']}/  (sign in" in result.stdout
    assert "(healthpipe users list names the users; the demo's are u0001 to u0005)" in result.stdout
    if "HEALTHPIPE_DATABASE_URL" not in env:
        # the embedded server outlives `up` (other processes may share it) until `healthpipe db stop`
        from pipeline.infra.embedded_server import EmbeddedPostgres

        server = EmbeddedPostgres(tmp_path / "home")
        assert server.status().running
        assert "the embedded PostgreSQL keeps running" in result.stdout
        server.stop()


def time_wait_local_ports() -> set[int]:
    """Local ports of the IPv4 TCP sockets in TIME-WAIT (state 06 in /proc/net/tcp)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return {int(f[1].split(":")[1], 16) for f in (line.split() for line in lines) if f[3] == "06"}


def time_wait_port() -> int:
    """A port whose only socket is in TIME-WAIT: a connection to it was closed by the server side first (the side
    that closes first keeps the TIME-WAIT, as a stopped `healthpipe up` does for its open connections). The listener
    binds as uvicorn does, with SO_REUSEADDR, which its connections inherit."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = int(listener.getsockname()[1])
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    listener.close()
    accepted.close()  # server side first: FIN_WAIT -> TIME_WAIT once the client closes too
    assert client.recv(1) == b""
    client.close()
    return port


def test_a_port_left_in_time_wait_by_a_stopped_server_counts_as_free() -> None:
    from pipeline.stack import _require_free_port

    port = time_wait_port()
    assert port in time_wait_local_ports()
    with socket.socket() as plain, pytest.raises(OSError):  # what made `up` refuse for a minute after Ctrl-C
        plain.bind(("127.0.0.1", port))
    _require_free_port("127.0.0.1", port, "API", "HEALTHPIPE_API_PORT")  # no error


def test_a_port_with_a_live_listener_is_refused() -> None:
    from pipeline.stack import _require_free_port

    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        with pytest.raises(RuntimeError, match=f"127.0.0.1:{port} is already in use.*HEALTHPIPE_API_PORT"):
            _require_free_port("127.0.0.1", port, "API", "HEALTHPIPE_API_PORT")
    with socket.socket() as listener:  # a listener on every address holds 127.0.0.1 too
        listener.bind(("0.0.0.0", 0))  # noqa: S104
        listener.listen()
        port = int(listener.getsockname()[1])
        with pytest.raises(RuntimeError, match="already in use"):
            _require_free_port("127.0.0.1", port, "API", "HEALTHPIPE_API_PORT")
