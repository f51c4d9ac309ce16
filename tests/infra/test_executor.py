"""The executor settings: in-process by default, Celery on request; range runs and the run queue sized for the
workers; bad settings refused with messages that name the variable and hold no password."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
from dagster import in_process_executor
from pydantic import SecretStr, ValidationError

from pipeline import cli
from pipeline.infra.executor import celery_app_args, max_user_days_per_run, step_executor
from pipeline.infra.settings import Settings
from pipeline.infra.worker import worker_argv
from pipeline.samples.run_plan import plan_runs


def celery(**fields: object) -> Settings:
    return Settings(executor="celery", **fields)  # type: ignore[arg-type]


def test_the_default_is_in_process_with_two_runs_at_once() -> None:
    settings = Settings()
    assert settings.executor == "in_process"
    assert step_executor(settings) is in_process_executor
    assert settings.run_queue_limit == 2
    assert max_user_days_per_run(settings, 100_000) == 1500


def test_the_celery_executor_reads_broker_queue_and_backend_from_the_settings() -> None:
    settings = celery(celery_queue="nightly", celery_broker=SecretStr("amqp://hp:s3cret@mq.example:5672/hp"))
    executor = step_executor(settings)
    assert executor.name == "celery"
    assert celery_app_args(settings) == {
        "broker": "amqp://hp:s3cret@mq.example:5672/hp",
        "backend": "rpc://",  # RabbitMQ's reply queues carry each step's events back to the run
        "config_source": {"task_default_queue": "nightly"},
    }
    # a Redis broker is its own result backend
    redis = celery(celery_broker=SecretStr("redis://10.0.0.5:6379/3"))
    assert celery_app_args(redis)["backend"] == "redis://10.0.0.5:6379/3"
    # the workers listen on the same queue
    argv = worker_argv(settings, 3, "box1")
    assert argv[argv.index("--queues") + 1] == "nightly"
    assert argv[argv.index("--concurrency") + 1] == "3"
    assert argv[argv.index("--hostname") + 1] == "box1@%h"


@pytest.mark.parametrize(
    ("workers", "requested", "cap", "runs"),
    [
        (2, 3000, 1500, 2),  # one run per worker
        (4, 3000, 750, 4),
        (3, 1500, 500, 3),
        (3, 1000, 334, 4),  # a run holds whole users (here 6 x 50 days): one more run than workers
        (4, 300, 200, 2),  # not below 200 user-days: fewer runs than workers
        (2, 100, 200, 1),
        (2, 10_000, 1500, 7),  # never above the in-process cap: more runs than workers, queued
    ],
)
def test_celery_runs_are_sized_to_give_every_worker_one(workers: int, requested: int, cap: int, runs: int) -> None:
    settings = celery(celery_workers=workers)
    assert settings.run_queue_limit == workers
    assert max_user_days_per_run(settings, requested) == cap
    # users x 50 days, as many users as make the requested user-days
    users = [f"u{i:04d}" for i in range(requested // 50)]
    pairs = {(u, dt.date(2024, 1, 1) + dt.timedelta(days=d)) for u in users for d in range(50)}
    rectangles = plan_runs(pairs, users, max_user_days=cap)
    assert len(rectangles) == runs
    assert all(r.partitions <= cap for r in rectangles)
    assert set().union(*(r.pairs() for r in rectangles)) == pairs


def test_an_explicit_queue_limit_wins_over_the_worker_count() -> None:
    assert celery(celery_workers=8, max_concurrent_runs=3).run_queue_limit == 3
    assert Settings(max_concurrent_runs=5).run_queue_limit == 5


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("HEALTHPIPE_EXECUTOR", "threads", "'in_process' or 'celery'"),
        ("HEALTHPIPE_CELERY_BROKER", "http://hp:s3cret@mq.example/", "HEALTHPIPE_CELERY_BROKER must be an amqp://"),
        ("HEALTHPIPE_CELERY_BROKER", "mq.example:5672", "HEALTHPIPE_CELERY_BROKER must be an amqp://"),
        ("HEALTHPIPE_CELERY_QUEUE", "two words", "celery_queue"),
        ("HEALTHPIPE_CELERY_WORKERS", "0", "celery_workers"),
    ],
)
def test_bad_executor_settings_are_refused_by_name_without_echoing_the_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=named):
        Settings()
    assert cli.main(["worker"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("healthpipe: error:") and named in err
    assert "s3cret" not in err and "Traceback" not in err


def test_a_worker_without_a_broker_says_so_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # nothing listens on port 9 (discard) here: the connection is refused at once
    monkeypatch.setenv("HEALTHPIPE_CELERY_BROKER", "amqp://hp:s3cret@127.0.0.1:9//")
    assert cli.main(["worker", "--concurrency", "1"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Celery broker at amqp://hp:**@127.0.0.1:9//" in err
    assert "HEALTHPIPE_CELERY_BROKER" in err
    assert "s3cret" not in err and "Traceback" not in err


def test_a_worker_needs_at_least_one_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["worker", "--concurrency", "0"]) == 2
    assert "--concurrency must be at least 1" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_up_with_the_celery_executor_checks_the_broker_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable, value in {
        "HEALTHPIPE_EXECUTOR": "celery",
        "HEALTHPIPE_CELERY_BROKER": "amqp://127.0.0.1:9//",
        "HEALTHPIPE_HOME": str(tmp_path / "home"),
        "HEALTHPIPE_DAGSTER_PORT": str(free_port()),
        "HEALTHPIPE_API_PORT": str(free_port()),
    }.items():
        monkeypatch.setenv(variable, value)
    assert cli.main(["up", "--exit-when-ready"]) == 2
    assert "cannot reach the Celery broker at amqp://127.0.0.1:9//" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()  # no embedded server, no Dagster home
