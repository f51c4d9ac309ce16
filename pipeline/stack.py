"""``healthpipe up``: the whole local stack in one command.

Starts the warehouse (embedded unless a URL is configured), applies migrations, writes the Dagster home, then runs
``dagster dev`` (webserver + daemon) and the API as child processes, waits until both answer, prints their URLs and
keeps them running until Ctrl-C, which stops them (the embedded database keeps running: `healthpipe db stop`).
Children's output goes to ``<home>/logs``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from pipeline.infra.dagster_home import dagster_environment, write_dagster_yaml
from pipeline.infra.database import dagster_storage_url, redacted, warehouse_url
from pipeline.infra.embedded_server import EmbeddedPostgres
from pipeline.infra.migrations import migrate
from pipeline.infra.settings import Settings

READY_TIMEOUT_SECONDS = 180
_LOCATION_QUERY = (
    '{"query": "{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus '
    'locationOrLoadError { __typename ... on PythonError { message } } } } } }"}'
)


def project_root() -> Path:
    """The folder holding ``workspace.yaml``: the working directory if it has one, else this checkout."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (candidate / "workspace.yaml").exists():
            return candidate
    raise FileNotFoundError("workspace.yaml not found; run healthpipe up from the project folder")


def _spawn(command: list[str], log: IO[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    # A session of its own, so that stopping it reaches dagster dev's webserver, daemon and code servers.
    return subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def http_request(url: str, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    # Only our own http://127.0.0.1 URLs reach here.
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def dagster_location_status(dagster_url: str) -> tuple[bool, str]:
    """(loaded, detail) of the code location as the webserver reports it."""
    code, body = http_request(f"{dagster_url}/graphql", _LOCATION_QUERY.encode())
    if code != 200:
        return False, "webserver not answering yet"
    entries = json.loads(body)["data"]["workspaceOrError"].get("locationEntries", [])
    for entry in entries:
        located = entry.get("locationOrLoadError") or {}
        if located.get("__typename") == "PythonError":
            raise RuntimeError(f"code location {entry['name']} failed to load: {located.get('message')}")
        if entry.get("loadStatus") == "LOADED" and located.get("__typename") == "RepositoryLocation":
            return True, f"code location {entry['name']} loaded"
    return False, "code location loading"


def _wait_until_ready(checks: dict[str, object], processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    pending = dict(checks)
    while pending:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited early; see the logs in {logs}")
        for name, check in list(pending.items()):
            ready, detail = check()  # type: ignore[operator]
            if ready:
                print(f"  ready: {name} ({detail})", flush=True)
                del pending[name]
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready after {READY_TIMEOUT_SECONDS}s: {', '.join(pending)}; see {logs}")
        time.sleep(1)


DEMO_USERS, DEMO_DAYS = 5, 14


def load_demo_data(url: object, users: int = DEMO_USERS, days: int = DEMO_DAYS) -> str | None:
    """Synthetic demo data for an empty warehouse (the last ``days`` finished days); None when it has users."""
    import datetime as dt

    from pipeline.accounts import has_users
    from pipeline.infra.database import create_warehouse_engine, psycopg_connection
    from pipeline.synthetic.generator import SyntheticConfig, ending_with_day, generate
    from pipeline.synthetic.load import load_dataset

    engine = create_warehouse_engine(url)  # type: ignore[arg-type]
    try:
        with psycopg_connection(engine) as conn:
            if has_users(conn):
                return None
        start = dt.date.today() - dt.timedelta(days=days + 1)
        last_day = start + dt.timedelta(days=days - 1)  # two days ago: over in every zone
        dataset = ending_with_day(generate(SyntheticConfig(users=users, days=days, start=start, seed=7)), last_day)
        counts = load_dataset(engine, dataset)
        return (
            f"demo data: {users} users x {days} days from {start}, {counts.landed:,} samples landed in "
            f"{len(dataset.batches)} batches; the sensor starts the pipeline within a minute"
        )
    finally:
        engine.dispose()


def _require_free_port(host: str, port: int, what: str, variable: str) -> None:
    """Refuses a port that a server could not listen on. The probe binds and listens as uvicorn and the Dagster
    webserver do, with SO_REUSEADDR: connections of a stopped server lingering in TIME-WAIT (for a minute after
    Ctrl-C) do not keep them from starting, so they do not count as taken; a live listener does."""
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen()
        except OSError:
            raise RuntimeError(
                f"{host}:{port} is already in use, so the {what} cannot start there (another `healthpipe up`?). "
                f"Stop that program or set {variable} to a free port."
            ) from None


def _interrupt_on_sigterm() -> None:
    """SIGTERM (a service manager, `kill`) shuts down like Ctrl-C, so the children are stopped, not orphaned; and
    SIGINT is restored to Python's default, which a shell may have set to "ignore" for a background job."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


# uvicorn's h11 protocol bounds a request's head (its default, httptools, buffers any size); api.server's subclass
# answers an oversized head with 431 naming the limit.
API_HTTP_PROTOCOL = "api.server:BoundedHeadH11Protocol"


def api_server_command(settings: Settings) -> list[str]:
    """The command line serving the API under ``healthpipe up``, its head bounded by the settings; with
    ``api_workers`` > 1, that many worker processes (uvicorn's supervisor imports ``api.main:app`` in each)."""
    workers = ["--workers", str(settings.api_workers)] if settings.api_workers > 1 else []
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:app",
        "--host",
        settings.api_host,
        "--port",
        str(settings.api_port),
        "--http",
        API_HTTP_PROTOCOL,
        "--h11-max-incomplete-event-size",
        str(settings.api_max_header_bytes),
        *workers,
    ]


def api_workers_note(settings: Settings) -> str | None:
    """What a user of several API workers must know: without Redis each worker caches and counts on its own."""
    if settings.api_workers <= 1:
        return None
    if settings.redis_url is None:
        return (
            f"API workers: {settings.api_workers}, each with its own response cache and rate-limit counts "
            "(a key may make the limit's requests per worker); set HEALTHPIPE_REDIS_URL to share them"
        )
    return f"API workers: {settings.api_workers}, sharing their response cache and rate-limit counts in Redis"


def run_stack(settings: Settings, *, exit_when_ready: bool = False, with_api: bool = True, demo: bool = True) -> int:
    _interrupt_on_sigterm()
    root = project_root()
    _require_free_port(settings.dagster_host, settings.dagster_port, "Dagster UI", "HEALTHPIPE_DAGSTER_PORT")
    if with_api:
        _require_free_port(settings.api_host, settings.api_port, "API", "HEALTHPIPE_API_PORT")
    if settings.executor == "celery":
        from pipeline.infra.worker import check_broker, shown_broker

        broker = settings.celery_broker.get_secret_value()
        check_broker(broker)  # before anything starts: runs could not hand out a single step
        print(
            f"Celery executor: steps go to queue {settings.celery_queue!r} on {shown_broker(broker)}; up to "
            f"{settings.run_queue_limit} runs at once; start `healthpipe worker` processes "
            f"({settings.celery_workers} expected)",
            flush=True,
        )
    logs = settings.home.resolve() / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    if settings.uses_embedded_database:
        print(EmbeddedPostgres(settings.home, settings.embedded_port).start().describe(), flush=True)
    url = warehouse_url(settings)
    report = migrate(url)
    print(
        f"warehouse {redacted(url)}: schema version {report.version} ({len(report.applied)} migration(s) applied)",
        flush=True,
    )
    if demo:
        note = load_demo_data(url)
        if note:
            print(note, flush=True)

    dagster_home = settings.resolved_dagster_home
    write_dagster_yaml(dagster_home, settings.run_queue_limit)
    env = {
        **os.environ,
        **dagster_environment(dagster_home, dagster_storage_url(settings, url)),
        "HEALTHPIPE_DATABASE_URL": url.render_as_string(hide_password=False),
        "HEALTHPIPE_HOME": str(settings.home.resolve()),
        "HEALTHPIPE_MASTER_KEY_FILE": str(settings.resolved_master_key_file),  # the same file whatever their cwd
    }
    dagster_url = f"http://{settings.dagster_host}:{settings.dagster_port}"
    api_url = f"http://{settings.api_host}:{settings.api_port}"

    processes: list[subprocess.Popen[bytes]] = []
    checks: dict[str, object] = {
        "Dagster UI": lambda: dagster_location_status(dagster_url),
    }
    with open(logs / "dagster.log", "a") as dagster_log, open(logs / "api.log", "a") as api_log:
        try:
            processes.append(
                _spawn(
                    [
                        sys.executable,
                        "-m",
                        "dagster",
                        "dev",
                        "-w",
                        str(root / "workspace.yaml"),
                        "-h",
                        settings.dagster_host,
                        "-p",
                        str(settings.dagster_port),
                    ],
                    dagster_log,
                    env,
                    root,
                )
            )
            if with_api:
                processes.append(
                    _spawn(
                        api_server_command(settings),
                        api_log,
                        env,
                        root,
                    )
                )
                checks["API"] = lambda: (http_request(f"{api_url}/health")[0] == 200, f"{api_url}/health")
            print(f"starting Dagster and the API (logs in {logs}) ...", flush=True)
            _wait_until_ready(checks, processes, logs)
            print(f"\nDagster UI: {dagster_url}  (runs and backfills under Overview; assets under Assets)", flush=True)
            if with_api:
                print(f"API:        {api_url}  (OpenAPI docs at {api_url}/docs)", flush=True)
                print(f"Dashboard:  {api_url}/  (sign in with a key: healthpipe keys create --user NAME)", flush=True)
                users = "the demo's are u0001 to u0005" if demo else "add one with healthpipe users add"
                print(f"            (healthpipe users list names the users; {users})", flush=True)
                note = api_workers_note(settings)
                if note:
                    print(note, flush=True)
            if exit_when_ready:
                return 0
            print("Press Ctrl-C to stop.", flush=True)
            while all(p.poll() is None for p in processes):
                time.sleep(1)
            print(f"a service exited; see {logs}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            print("stopping ...", flush=True)
            for process in processes:
                _stop(process)
            if settings.uses_embedded_database:
                # Not stopped: other processes (the CLI, another terminal, tests) may be using it.
                print("the embedded PostgreSQL keeps running; `healthpipe db stop` stops it", flush=True)
