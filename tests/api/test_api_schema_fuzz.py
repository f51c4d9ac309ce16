"""Every operation of the API, fuzzed from its own OpenAPI document (Schemathesis) against a real database: no 5xx,
every answer's status code documented, every answer's body and headers as documented.

Bounded: a few generated examples per operation beside Schemathesis' deterministic examples and coverage cases (about
20 s in all). The caller is a real user with a key, a registered device and a share link; half of the generated device
ids and share codes are replaced by that device's and that link's, so sync bodies reach the landing code and the
public share route its data instead of stopping at 404. The same operations run without a key (401; the public share
route: 200 or 404) and with an admin key, which belongs to no user (403): those must be documented as well.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from api.deps import get_engine
from api.main import create_app
from api.queries.shares import create_share
from pipeline.accounts import create_api_key, register_device
from pipeline.infra.database import create_warehouse_engine, psycopg_connection, with_driver
from pipeline.infra.settings import Settings
from tests.support.helpers import new_user

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
DEVICE = "phone-1"
PUBLIC = ("/health", "/v1/shared/")  # routes that take no key
ANY_KEY = ("/v1/metrics",)  # routes any key reads, user or admin
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@dataclass(frozen=True)
class Caller:
    user_id: str
    key: str
    admin_key: str
    share_code: str


@pytest.fixture(scope="module")
def caller(engine: Engine) -> Caller:
    user = new_user(engine, timezone="Europe/Amsterdam")
    with psycopg_connection(engine) as conn:
        register_device(conn, user, DEVICE, "phone", "Fuzzed phone")
        created = create_share(conn, user, "fuzz", ["STEPS"], dt.date(2024, 5, 1), dt.date(2024, 5, 31), 1)
        assert created is not None
        return Caller(user, create_api_key(conn, user, False), create_api_key(conn, None, True), created[1])


# Loaded at import (Schemathesis parametrizes at collection; its lazy `from_fixture` schema does not run under this
# pytest, writing a node attribute pytest 9 no longer has). Fetching the schema runs the app's lifespan, so the app is
# built with an engine that points nowhere (an app without one would start the embedded server); the fixture below
# hands every request the test database's engine instead.
# Its rate limits are off: a fuzzed request refused with 429 would reach no route (the 429 has tests of its own);
# an event stream ends after its first poll.
APP = create_app(
    create_warehouse_engine(with_driver("postgresql://nobody@127.0.0.1:1/nothing", "psycopg")),
    Settings(
        api_rate_limit_per_minute=0,
        api_public_rate_limit_per_minute=0,
        sync_status_poll_seconds=0.01,
        sync_status_max_seconds=0.01,
    ),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _app_on_the_test_database(engine: Engine) -> Iterator[None]:
    APP.dependency_overrides[get_engine] = lambda: engine
    yield
    del APP.dependency_overrides[get_engine]


def _towards_the_callers_things(case: Case, caller: Caller) -> None:
    """Half the generated device ids and share codes (those of even length: a function of the case, so Hypothesis
    replays it) become the caller's registered device and live share link."""
    for name, real in (("device_id", DEVICE), ("code", caller.share_code)):
        generated = (case.path_parameters or {}).get(name)
        if isinstance(generated, str) and len(generated) % 2 == 0:
            case.path_parameters = {**(case.path_parameters or {}), name: real}


def _own(path: str) -> bool:
    """A route of the caller's own data (`/v1/me...`, not `/v1/metrics`)."""
    return path == "/v1/me" or path.startswith("/v1/me/")


@schema.parametrize()
@FUZZ
def test_with_a_key_every_answer_is_documented_and_no_5xx(case: Case, caller: Caller) -> None:
    _towards_the_callers_things(case, caller)
    response = case.call_and_validate(headers={"Authorization": f"Bearer {caller.key}"}, checks=CHECKS)
    if (
        not (_own(case.path) or case.path.startswith((*PUBLIC, *ANY_KEY)))
        and case.method.upper() == case.operation.method.upper()
    ):
        assert response.status_code in (401, 403, 422)  # admin routes: a user key is refused (422: a bad path)


@schema.parametrize()
@settings(FUZZ, max_examples=3)
def test_without_a_key_every_answer_is_documented_and_no_5xx(case: Case, caller: Caller) -> None:
    _towards_the_callers_things(case, caller)
    response = case.call_and_validate(checks=CHECKS)
    if not case.path.startswith(PUBLIC) and case.method.upper() == case.operation.method.upper():  # not a 405 probe
        assert response.status_code in (400, 401, 422)  # 400, 422: a body or path refused before the key is seen


@schema.parametrize()
@settings(FUZZ, max_examples=3)
def test_with_an_admin_key_every_answer_is_documented_and_no_5xx(case: Case, caller: Caller) -> None:
    response = case.call_and_validate(headers={"Authorization": f"Bearer {caller.admin_key}"}, checks=CHECKS)
    if _own(case.path) and case.method.upper() == case.operation.method.upper():
        assert response.status_code in (400, 401, 403, 422)  # an admin key has no /v1/me data
