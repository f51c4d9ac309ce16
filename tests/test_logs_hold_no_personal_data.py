"""The logs of a run hold none of the fixtures' names, keys or share codes: a user with a name, a profile, a named
device and a share made out to a named recipient syncs, imports, reads through the API (user key, admin key, share
link), exports, and the pipeline computes their days; then every log line (the app's loggers, uvicorn's access and
error logs, Dagster's, the process's stderr and stdout) is searched for each of them."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from api.main import create_app
from pipeline import accounts, profiles
from pipeline.cli import main as cli
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.ingest.importer import import_file
from tests.support.range_run import materialize_range
from tests.support.served import served

DAY = dt.date(2024, 5, 1)
DISPLAY, GIVEN, FAMILY = "Wilhelmina Fixturely", "Wilhelmina", "Fixturely"
DEVICE_NAME, SOURCE_NAME = "Wilhelmina's Garnet Watch", "Wilhelmina's Opal Phone"
RECIPIENT, NOTE = "Dr. Quentin Fixturedoc", "meds at noon, Quentin says"
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "dagster")
CLIENT_LOGGERS = ("httpx", "httpcore")  # the test's own client, which logs the URLs it requests: not the server's


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")

    def attach(self) -> None:
        """On every logger that matters, at DEBUG; again once uvicorn has configured its own (it replaces their
        handlers)."""
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.handlers:
                logger.addHandler(self)
            logger.setLevel(logging.DEBUG)


@pytest.fixture
def every_log_line() -> Iterator[Collected]:
    collected = Collected()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    collected.attach()
    for quiet in CLIENT_LOGGERS:
        logging.getLogger(quiet).setLevel(logging.WARNING)
    yield collected
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(collected)
        logger.setLevel(level)
    for quiet in CLIENT_LOGGERS:
        logging.getLogger(quiet).setLevel(logging.NOTSET)


def _sample(hour: int, value: float) -> dict[str, object]:
    start = dt.datetime(2024, 5, 1, hour, tzinfo=dt.UTC)
    return {
        "type": "STEPS",
        "value": value,
        "unit": "count",
        "startDate": start.isoformat(),
        "endDate": (start + dt.timedelta(minutes=30)).isoformat(),
        "metadata": {"note": NOTE},
    }


@pytest.mark.slow
def test_no_name_key_or_share_code_reaches_any_log(
    warehouse_url: URL, tmp_path: Path, every_log_line: Collected, capfd: pytest.CaptureFixture[str]
) -> None:
    engine = create_warehouse_engine(warehouse_url)
    user = "wf_7"
    with psycopg_connection(engine) as conn:
        accounts.create_user(conn, user, "Europe/Amsterdam", DISPLAY)
        profiles.update_profile(conn, user, {"given_name": GIVEN, "family_name": FAMILY})
        key, admin = accounts.create_api_key(conn, user), accounts.create_api_key(conn, None, True)
    auth, admin_auth = {"Authorization": f"Bearer {key}"}, {"Authorization": f"Bearer {admin}"}
    ndjson = tmp_path / "phone.ndjson"
    lines = [{**_sample(hour, 300), "sourceDevice": SOURCE_NAME} for hour in (7, 9, 11)]
    ndjson.write_text("\n".join(json.dumps(line) for line in lines) + "\n{not json: " + NOTE + "}\n")
    assert import_file(engine, ndjson, user).counts.landed == 3

    with served(create_app(engine), log_level="debug") as port:
        every_log_line.attach()
        base = f"http://127.0.0.1:{port}"
        assert httpx.put(
            f"{base}/v1/me/devices/garnet", json={"deviceClass": "watch", "name": DEVICE_NAME}, headers=auth
        ).is_success
        synced = httpx.post(
            f"{base}/v1/me/devices/garnet/sync",
            json={"samples": [_sample(8, 500), {**_sample(10, -5), "value": "lots, " + NOTE}]},
            headers=auth,
        )
        assert synced.status_code == 200 and (synced.json()["synced"], synced.json()["errors"]) == (1, 1)
        share = httpx.post(
            f"{base}/v1/me/shares",
            json={"recipient": RECIPIENT, "types": ["STEPS"], "start": "2024-05-01", "end": "2024-05-01"},
            headers=auth,
        ).json()
        code = share["code"]
        assert httpx.get(f"{base}/v1/shared/{code}").status_code == 200
        assert httpx.get(f"{base}/v1/shared/{code}x").status_code == 404
        for path in ("/v1/me", "/v1/me/profile", "/v1/me/devices", "/v1/me/shares", "/v1/me/fhir/Patient"):
            assert httpx.get(base + path, headers=auth).status_code == 200
        assert httpx.get(f"{base}/v1/users/{user}/summary?date=2024-05-01", headers=admin_auth).status_code == 200
        # a key in the query string too (an admin key has no /v1/me data: 403)
        assert httpx.get(f"{base}/v1/me/summary?api_key={key}", headers=admin_auth).status_code == 403
        assert httpx.get(f"{base}/v1/me/export", headers=auth).status_code == 200
        deadline = time.monotonic() + 10  # access lines are written after the answers
        while sum("uvicorn.access" in line for line in every_log_line.lines) < 13 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert materialize_range([user], DAY, DAY, marts=True)
    assert cli(["users", "export", user, "--output", str(tmp_path / "export.zip")]) == 0
    assert cli(["audit", user]) == 0
    engine.dispose()

    captured = capfd.readouterr()
    logged = "\n".join(every_log_line.lines) + "\n" + captured.err
    assert sum("uvicorn.access" in line for line in every_log_line.lines) >= 13  # the access log was seen
    assert "deduplicating 1 user-days" in logged  # so was the pipeline's
    secrets = {
        "display name": DISPLAY,
        "given name": GIVEN,
        "family name": FAMILY,
        "device name": DEVICE_NAME,
        "source name": SOURCE_NAME,
        "metadata": NOTE,
        "recipient": RECIPIENT,
        "user key": key,
        "user key's secret part": key.split("_", 1)[1],
        "admin key": admin,
        "share code": code,
    }
    found = {what: value for what, value in secrets.items() if value in logged}
    assert found == {}, [line for line in logged.splitlines() if any(v in line for v in found.values())][:10]
    assert code not in captured.out and key not in captured.out  # nor in what the commands printed
    access = [line for line in every_log_line.lines if line.startswith("uvicorn.access")]
    assert any("/v1/users/<redacted>/summary" in line for line in access)  # whose data: the audit trail says
    assert not any(user in line for line in access)
