"""`healthpipe up` with ``HEALTHPIPE_API_WORKERS``: the API served by that many uvicorn worker processes, each of
which answers, started with the very command `healthpipe up` runs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from pipeline.infra.settings import Settings
from pipeline.stack import api_server_command, api_workers_note, http_request
from tests.support.served import free_port

ROOT = Path(__file__).resolve().parents[2]


def worker_pids(supervisor: int) -> list[int]:
    """The supervisor's worker processes (multiprocessing's spawned children; not its resource tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    workers = []
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in command:
            workers.append(child)
    return sorted(workers)


def test_the_command_runs_workers_only_when_asked() -> None:
    assert "--workers" not in api_server_command(Settings(api_workers=1))
    command = api_server_command(Settings(api_workers=3))
    assert command[command.index("--workers") + 1] == "3"
    assert command[command.index("uvicorn") + 1] == "api.main:app"  # an import string: each worker imports it
    assert api_workers_note(Settings(api_workers=1)) is None
    assert api_workers_note(Settings(api_workers=3, redis_url=None)) == (
        "API workers: 3, each with its own response cache and rate-limit counts (a key may make the limit's "
        "requests per worker); set HEALTHPIPE_REDIS_URL to share them"
    )
    assert api_workers_note(Settings(api_workers=3, redis_url="redis://127.0.0.1:6379/0")) == (
        "API workers: 3, sharing their response cache and rate-limit counts in Redis"
    )


@pytest.mark.slow
def test_two_workers_each_answer(migrated_url: URL, tmp_path: Path) -> None:
    """Each worker in turn is paused (SIGSTOP): the other one alone must then answer a new connection."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHPIPE_")}
    env |= {"HEALTHPIPE_DATABASE_URL": migrated_url.render_as_string(hide_password=False)}
    command = api_server_command(Settings(api_port=port, api_workers=2))
    url = f"http://127.0.0.1:{port}/health"
    with open(tmp_path / "api.log", "w") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while len(workers) < 2 or http_request(url, timeout=2)[0] != 200:
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "api.log").read_text()
            time.sleep(0.2)
            workers = worker_pids(server.pid)
        assert len(workers) == 2
        for paused in workers:
            os.kill(paused, signal.SIGSTOP)
            try:
                status, body = http_request(url, timeout=30)  # waits in the backlog until the other takes it
            finally:
                os.kill(paused, signal.SIGCONT)
            assert status == 200, body
            assert b'"status":"ok"' in body
            assert worker_pids(server.pid) == workers  # no worker was replaced meanwhile
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
