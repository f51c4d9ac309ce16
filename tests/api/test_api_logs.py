"""No health data or keys in the server's logs: an unexpected exception whose message quotes a sample and a key
answers a JSON 500 with an error id, and every log line (the app's, uvicorn's error and access logs, stderr) holds
that id, the exception's type and the route's template, never the message, the raw path or the key."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg.errors
import pytest
from sqlalchemy import Engine

import api.routers.devices
from api.main import create_app
from pipeline.accounts import create_api_key, register_device
from pipeline.infra.database import psycopg_connection
from tests.support.helpers import new_user
from tests.support.served import served as served_app

SECRET_KEY = "hp_LEAKED0.s3cr3t-key-material"
SAMPLE_FRAGMENT = '{"metric": "STEPS", "value": Infinity'
DEVICE = "dev-4711-private"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def _poisoned_sync(*args: Any, **kwargs: Any) -> Any:
    """What a database error looks like: psycopg quotes the data that failed in its message."""
    raise psycopg.errors.DataException(
        f'invalid input for sample {SAMPLE_FRAGMENT}, "unit": "count"}} of key {SECRET_KEY} on device {DEVICE}'
    )


@pytest.fixture
def served(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real app under a real uvicorn with its default log configuration (access log on)."""
    monkeypatch.setattr(api.routers.devices, "sync_samples", _poisoned_sync)
    with served_app(create_app(engine), log_level="info") as port:
        yield f"http://127.0.0.1:{port}"


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return "\n".join(self.format(r) for r in self.records)


@pytest.fixture
def every_log_line() -> Iterator[Collected]:
    """Every record of the root logger and of uvicorn's loggers (which need not propagate to the root)."""
    collected = Collected()
    collected.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(exc_text)s"))
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in UVICORN_LOGGERS)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(collected)
    logging.getLogger().setLevel(logging.DEBUG)
    for quiet in ("httpx", "httpcore"):  # the test's own client, which logs the URL it requested
        logging.getLogger(quiet).setLevel(logging.WARNING)
    yield collected
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(collected)
        logger.setLevel(level)
    for quiet in ("httpx", "httpcore"):
        logging.getLogger(quiet).setLevel(logging.NOTSET)


def _line_calling_sync_in_the_router() -> int:
    """The line of api/routers/devices.py that calls sync_samples: the frame the error line names."""
    source = Path(api.routers.devices.__file__).read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(source, 1) if "= sync_samples(" in line)


def test_a_500_logs_its_error_id_type_and_route_never_the_sample_or_the_key(
    engine: Engine, served: str, every_log_line: Collected, capfd: pytest.CaptureFixture[str]
) -> None:
    user = new_user(engine)
    with psycopg_connection(engine) as conn:
        register_device(conn, user, DEVICE, "phone", "Phone")
        key = create_api_key(conn, user, False)
    sample = {"type": "STEPS", "value": 812, "unit": "count", "startDate": "2024-05-01T08:00:00Z"}
    response = httpx.post(
        f"{served}/v1/me/devices/{DEVICE}/sync?api_key={SECRET_KEY}",
        headers={"Authorization": f"Bearer {key}"},
        json={"samples": [sample]},
    )

    assert response.status_code == 500
    body = response.json()
    assert body["detail"] == "internal error" and re.fullmatch(r"[0-9a-f]{16}", body["errorId"])
    deadline = time.monotonic() + 10  # the access line is written after the answer is sent
    while not any(r.name == "uvicorn.access" for r in every_log_line.records) and time.monotonic() < deadline:
        time.sleep(0.05)
    logged = every_log_line.text + "\n".join(capfd.readouterr())
    error_lines = [r.getMessage() for r in every_log_line.records if r.levelno >= logging.ERROR]
    assert error_lines == [
        f"internal error {body['errorId']}: psycopg.errors.DataException in POST /v1/me/devices/{{device_id}}/sync, "
        f"raised at tests.api.test_api_logs:{_poisoned_sync.__code__.co_firstlineno + 2} "
        f"(via api.routers.devices:{_line_calling_sync_in_the_router()})"
    ]
    access = [r.getMessage() for r in every_log_line.records if r.name == "uvicorn.access"]
    assert len(access) == 1 and '"POST /v1/me/devices/' in access[0] and access[0].endswith(" 500")
    for secret in (SECRET_KEY, key, "Infinity", "STEPS", "812", "api_key", "Exception in ASGI", "Traceback"):
        assert secret not in logged
    assert DEVICE not in "\n".join(error_lines)  # the route's template, not the path: the id is only in the access line
