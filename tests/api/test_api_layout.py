"""The API's shape: published operations keep their contract, resources sit under one version prefix added where
routers are included, every route that touches data gets its connection from the one database dependency, and
routers hold no SQL (queries are named functions they call)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api import routers
from api.deps import get_connections, get_db, get_engine, get_request_connection
from api.main import API_VERSION_PREFIX, create_app
from api.subject import named_pending, own_pending

# (method, path) -> (operation id, summary): what clients and generated SDKs rely on.
PUBLISHED = {
    ("GET", "/health"): ("health_health_get", "Service and database health"),
    ("GET", "/v1/me"): ("get_me_v1_me_get", "Who the API key belongs to"),
    ("GET", "/v1/me/devices"): ("list_devices_v1_me_devices_get", "The caller's devices"),
    ("PUT", "/v1/me/devices/{device_id}"): ("put_device_v1_me_devices__device_id__put", "Register or rename a device"),
    ("POST", "/v1/me/devices/{device_id}/sync"): (
        "sync_device_v1_me_devices__device_id__sync_post",
        "Land a batch of samples from one of the caller's devices, idempotently",
    ),
    ("GET", "/v1/me/source-priority"): ("get_priority_v1_me_source_priority_get", "The caller's source priority"),
    ("PUT", "/v1/me/source-priority"): ("put_priority_v1_me_source_priority_put", "Set the caller's source priority"),
    ("DELETE", "/v1/me/source-priority"): (
        "reset_priority_v1_me_source_priority_delete",
        "Back to the default priority",
    ),
    ("GET", "/v1/me/summary"): ("summary_v1_me_summary_get", "A day of the caller's data at a glance"),
    ("GET", "/v1/me/aggregates"): (
        "aggregates_v1_me_aggregates_get",
        "The caller's aggregates by type, period and range",
    ),
    ("GET", "/v1/me/insights"): ("insights_v1_me_insights_get", "The caller's insights"),
    ("POST", "/v1/me/insights/{insight_id}/acknowledge"): (
        "acknowledge_insight_v1_me_insights__insight_id__acknowledge_post",
        "Acknowledge one of the caller's insights",
    ),
    ("GET", "/v1/me/health-scores"): ("health_scores_v1_me_health_scores_get", "The caller's health scores"),
    ("GET", "/v1/me/sources"): ("sources_v1_me_sources_get", "Per source, raw vs kept: a day of the caller's data"),
    ("GET", "/v1/users/{user_id}/summary"): (
        "summary_v1_users__user_id__summary_get",
        "A day of the user's data at a glance",
    ),
    ("GET", "/v1/admin/stats"): ("stats_v1_admin_stats_get", "Freshness, user-days, rejection rates and ingest lag"),
}
UNVERSIONED = {"/health"}
# streams: a connection per use (get_connections), none held while they wait (event stream) or send (export)
STREAMS = {"/me/sync-status", "/me/export"}
# the erasure: its steps commit on their own connections, and dbt and the score take the engine's URL
ENGINE_ROUTES = {("DELETE", "/me")}
ROUTERS = Path(routers.__file__).parent
PENDING_READINGS = {own_pending, named_pending}


def resource_routers() -> dict[str, APIRouter]:
    """Each router module's router, by module name."""
    modules = (
        importlib.import_module(f"{routers.__name__}.{info.name}") for info in pkgutil.iter_modules(routers.__path__)
    )
    return {module.__name__: module.router for module in modules}


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, methods in create_app().openapi()["paths"].items()
        for method, operation in methods.items()
    }


def dependencies(dependant: Dependant) -> Iterator[tuple[object, object]]:
    """Every (dependent, dependency) pair in a route's dependency tree."""
    for sub in dependant.dependencies:
        yield dependant.call, sub.call
        yield from dependencies(sub)


def test_published_operations_keep_their_path_operation_id_and_summary() -> None:
    published = {key: (op["operationId"], op["summary"]) for key, op in operations().items() if key in PUBLISHED}
    assert published == PUBLISHED


def test_resources_sit_under_the_version_prefix_added_once() -> None:
    paths = {path for _, path in operations()}
    assert paths - UNVERSIONED and all(path.startswith(API_VERSION_PREFIX + "/") for path in paths - UNVERSIONED)
    for name, router in resource_routers().items():
        assert not router.prefix.startswith(API_VERSION_PREFIX), name


def test_every_route_with_data_gets_its_connection_from_the_database_dependency() -> None:
    routes = [route for router in resource_routers().values() for route in router.routes]
    assert routes
    for route in routes:
        assert isinstance(route, APIRoute)
        if route.path in UNVERSIONED:
            continue
        pairs = list(dependencies(route.dependant))
        if route.path in STREAMS:
            assert get_connections in {child for _, child in pairs} and get_db not in {c for _, c in pairs}
            assert {parent for parent, child in pairs if child is get_engine} == {get_connections}, route.path
            continue
        children = {child for _, child in pairs}
        if children & PENDING_READINGS:
            # a cached read: its one connection is borrowed and given back inside the hop that answers it
            # (api.cached_reads.cached_answer); nothing else in the request holds one
            assert not children & {get_db, get_request_connection, get_connections}, route.path
            assert {parent for parent, child in pairs if child is get_engine} <= PENDING_READINGS, route.path
            continue
        assert {get_db, get_request_connection} & children, route.path
        if any((method, route.path) in ENGINE_ROUTES for method in route.methods):
            assert {parent for parent, child in pairs if child is get_engine} == {
                get_request_connection,
                route.endpoint,
            }
            continue
        # the engine only through the request's connection (borrowed once, by get_db or by the key lookup): neither
        # the route nor its other dependencies open a connection of their own
        assert {parent for parent, child in pairs if child is get_engine} == {get_request_connection}, route.path


def test_routers_hold_no_sql_and_open_no_connection() -> None:
    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE FROM|text\(|\.execute\(|psycopg_connection|\.connect\()")
    for module in ROUTERS.glob("*.py"):
        found = sql.findall(module.read_text())
        assert not found, f"{module.name}: {found}"


def test_a_request_without_a_key_is_refused_before_a_connection_is_borrowed(unreachable_engine: Engine) -> None:
    with TestClient(create_app(unreachable_engine)) as client:
        response = client.get("/v1/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "missing bearer API key"}
