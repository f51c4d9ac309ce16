"""One settings class for every process (CLI, Dagster code location, API, tests), read from the environment.

Every variable is prefixed ``HEALTHPIPE_`` and may also be put in a ``.env`` file in the working directory.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CELERY_BROKER_SCHEMES = ("amqp", "amqps", "pyamqp", "redis", "rediss")


class Settings(BaseSettings):
    """Runtime configuration. See the README's "Configuration" table for each variable."""

    # hide_input_in_errors: a refused value is not echoed in the error (a URL may hold a password)
    model_config = SettingsConfigDict(
        env_prefix="HEALTHPIPE_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    database_url: SecretStr | None = Field(
        default=None,
        description="Warehouse PostgreSQL URL. Unset: an embedded PostgreSQL is started under `home`.",
    )
    dagster_database_url: SecretStr | None = Field(
        default=None,
        description="Dagster instance storage URL. Unset: the warehouse database, schema `dagster`.",
    )
    home: Path = Field(
        default_factory=lambda: Path.cwd() / ".healthpipe",
        description="Local state folder: embedded PostgreSQL data, Dagster home, logs.",
    )
    dagster_home: Path | None = Field(default=None, description="Dagster home. Unset: `<home>/dagster_home`.")
    embedded_port: int | None = Field(
        default=None,
        description="TCP port of the embedded server. Unset: the port it used last time, else a free one.",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    dagster_host: str = "127.0.0.1"
    dagster_port: int = 3000
    max_concurrent_runs: int | None = Field(
        default=None,
        ge=1,
        description="Dagster run queue limit. Unset: 2 (in-process runs, 2 cores here), or `celery_workers` with the "
        "Celery executor (one run per worker process keeps each busy).",
    )
    executor: Literal["in_process", "celery"] = Field(
        default="in_process",
        description="Where a run's steps execute: `in_process` (the run's own process) or `celery` (on `healthpipe "
        "worker` processes, on this or other machines, through the Celery broker).",
    )
    celery_broker: SecretStr = Field(
        default=SecretStr("amqp://guest@127.0.0.1:5672//"),
        description="Celery broker URL (RabbitMQ: amqp://user:password@host:5672//). Runs and workers must name the "
        "same broker and queue.",
    )
    celery_queue: str = Field(
        default="healthpipe",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$",
        description="Celery queue the steps are sent to and the workers listen on (letters, digits, `_.-`).",
    )
    celery_workers: int = Field(
        default=2,
        ge=1,
        description="Worker processes listening on the queue, over all machines (the sum of their `--concurrency`): "
        "range runs are sized and queued so that each has a run's steps to execute.",
    )
    partitions_start: dt.date = Field(
        default=dt.date(2024, 1, 1),
        description="First day of the day partition dimension: days before it are not computed. Set before the first "
        "run: Dagster keys partitions by it.",
    )
    user_shards: int = Field(
        default=0,
        ge=0,
        description="0: a partition per user (dynamic). N: N static hash shards of users, past Dagster's ~100,000 "
        "partitions per asset. Chosen once per deployment.",
    )
    raw_freshness_hours: float = Field(
        default=24.0,
        gt=0,
        description="The freshness check on raw_samples warns when no ingest batch has landed new rows for this long.",
    )

    api_max_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        gt=0,
        description="Largest request body the API reads (bytes); a larger one is refused with 413 before it is read.",
    )
    api_max_header_bytes: int = Field(
        default=64 * 1024,
        gt=0,
        description="Largest request head (request line and headers, bytes); a larger one is refused with 431.",
    )
    api_cors_origins: str = Field(
        default="",
        description="Origins (scheme://host[:port]) whose browser pages may call the API, comma-separated; empty: "
        "none (same-origin pages only).",
    )
    sync_max_text_chars: int = Field(
        default=1024,
        gt=0,
        description="Longest text field of a synced sample (type, unit, source, app, zone, ids); a longer one "
        "rejects that sample.",
    )
    sync_max_metadata_bytes: int = Field(
        default=16 * 1024,
        gt=0,
        description="Largest serialized metadata object of a synced sample; a larger one rejects that sample.",
    )

    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis URL (redis://host:port/db) for the read API's response cache and rate-limit counters, "
        "shared by every API worker. Unset: both live in each API process.",
    )
    api_rate_limit_per_minute: int = Field(
        default=1200,
        ge=0,
        description="Requests per minute one API key may make (counted per key hash, in one-minute windows); "
        "beyond it 429 with Retry-After. 0: no limit.",
    )
    api_public_rate_limit_per_minute: int = Field(
        default=60,
        ge=0,
        description="Requests per minute one client address may make to the public (keyless) routes; 0: no limit.",
    )
    api_workers: int = Field(
        default=1,
        ge=1,
        description="API worker processes `healthpipe up` runs; without `redis_url` each has its own cache and "
        "rate-limit counts.",
    )
    api_db_connections: int = Field(
        default=16,
        ge=1,
        description="Database connections each API process keeps open (its pool; a request holds one from its key "
        "lookup to its answer, more at once wait for one). Workers times this must stay under the server's "
        "max_connections.",
    )
    sync_status_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often the sync-status event stream reads a device's batches (a connection per read).",
    )
    sync_status_max_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long one sync-status event stream lasts before it ends (the client reconnects).",
    )
    api_cache_max_entries: int = Field(
        default=10_000,
        ge=0,
        description="In-process response cache (no Redis): most answers kept per API process; 0: no cache.",
    )
    api_cache_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="In-process response cache: most bytes of answers kept per API process.",
    )
    api_cache_ttl_seconds: int = Field(
        default=3600,
        gt=0,
        description="Redis response cache: how long an answer is kept (a write makes it unreachable at once anyway).",
    )

    master_key: SecretStr | None = Field(
        default=None,
        description="Master key wrapping every user's data key: 32 random bytes in base64 (`healthpipe keys "
        "new-master` prints one). Wins over `master_key_file`. Never logged.",
    )
    master_key_file: Path | None = Field(
        default=None,
        description="File holding the master key. Unset: `<home>/master.key`, created (mode 0600) on first use "
        "while the key store is empty; `healthpipe keys rotate-master` replaces it.",
    )
    keystore_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL database of the wrapped data keys, kept out of the warehouse's backups (crypto-"
        "shredding, docs/privacy.md). Unset: database `<warehouse database>_keys` on the warehouse's server, "
        "created on first use.",
    )
    audit_log: bool = Field(
        default=True,
        description="Write the read API's audit trail (app.audit_log). Off only to measure what it costs.",
    )
    audit_flush_seconds: float = Field(
        default=1.0,
        gt=0,
        description="The API keeps audit rows in memory at most this long before writing them with one COPY.",
    )
    audit_max_pending: int = Field(
        default=100_000,
        gt=0,
        description="Most audit rows an API process holds while the database cannot take them; beyond it the "
        "oldest are dropped (and counted in the log).",
    )

    @field_validator("celery_broker")
    @classmethod
    def _broker_is_amqp_or_redis(cls, value: SecretStr) -> SecretStr:
        # the URL itself is not echoed: it may hold a password
        scheme = urlsplit(value.get_secret_value()).scheme
        if scheme not in CELERY_BROKER_SCHEMES:
            found = repr(scheme) if scheme else "a URL without a scheme"
            raise ValueError(f"HEALTHPIPE_CELERY_BROKER must be an amqp:// (RabbitMQ) or redis:// URL, not {found}")
        return value

    @property
    def run_queue_limit(self) -> int:
        """Runs the Dagster run queue starts at once (``max_concurrent_runs`` if set)."""
        if self.max_concurrent_runs is not None:
            return self.max_concurrent_runs
        return self.celery_workers if self.executor == "celery" else 2

    @property
    def resolved_dagster_home(self) -> Path:
        return (self.dagster_home or self.home / "dagster_home").resolve()

    @property
    def resolved_master_key_file(self) -> Path:
        return (self.master_key_file or self.home / "master.key").resolve()

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None
