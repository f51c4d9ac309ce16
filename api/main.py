"""The FastAPI application. ``uvicorn api.main:app`` serves it; tests build their own with `create_app`."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy import URL, Engine

from api.access_log import install_access_log_filter
from api.audit import install_audit
from api.cached_reads import install_response_cache
from api.cors import install_cors
from api.dashboard.routes import install_dashboard
from api.errors import install_error_handlers
from api.limits import install_request_limits
from api.outage import install_outage_handlers
from api.rate_limits import install_rate_limits
from api.routers import (
    admin,
    audit,
    devices,
    export,
    fhir,
    health,
    me,
    metrics,
    profile,
    reads,
    shared,
    shares,
    source_priority,
    sync_status,
)
from pipeline.infra.database import create_warehouse_engine, warehouse_url
from pipeline.infra.settings import Settings

API_VERSION_PREFIX = "/v1"


def versioned_router() -> APIRouter:
    """Every resource router under the version prefix; a new resource is included here, its paths relative."""
    router = APIRouter(prefix=API_VERSION_PREFIX)
    for resource in (
        me,
        profile,
        metrics,
        devices,
        source_priority,
        reads,
        shares,
        shared,
        fhir,
        admin,
        sync_status,
        audit,
        export,
    ):
        router.include_router(resource.router)
    return router


def create_api_engine(url: URL, connections: int) -> Engine:
    """The API's pool: ``connections`` kept open, none beyond (an overflow connection would be opened for a burst
    and closed after it: a backend started and stopped per request at full load), no ping before each borrow
    (broken connections are dropped as they come back)."""
    return create_warehouse_engine(url, pre_ping=False, pool_size=connections, max_overflow=0)


def freeze_startup_heap() -> None:
    """Leave the objects made at start-up out of every later garbage collection (`gc.freeze`). The API process
    starts with ~175,000 of them (FastAPI, pydantic, pandas, SQLAlchemy); a full collection walks them all, ~80 ms
    on a 2-core machine during which no request is answered. Objects made later are still collected."""
    gc.collect()
    gc.freeze()


def create_app(engine: Engine | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the app. Without an ``engine``, one is made at start-up from the settings (env)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = engine is None
        app.state.engine = engine or create_api_engine(warehouse_url(configured), configured.api_db_connections)
        if audit_buffer is not None:
            audit_buffer.start(app.state.engine)
        if owned:  # a served app; tests that pass an engine build many apps in one process, nothing to freeze there
            freeze_startup_heap()
        try:
            yield
        finally:
            if audit_buffer is not None:
                audit_buffer.close()  # what the last interval read is written before the engine goes
            if owned:
                app.state.engine.dispose()

    # /docs and /redoc load Swagger UI and ReDoc from the fastapi-offline wheel (under /static-offline-docs), not a CDN
    app = FastAPIOffline(
        title="healthpipe read API",
        version="0.1.0",
        description="Precomputed health aggregates, insights and scores. Every route reads precomputed tables.",
        lifespan=lifespan,
    )
    configured = settings or Settings()
    app.state.settings = configured
    install_outage_handlers(app)
    install_request_limits(app, configured)
    install_rate_limits(app, configured)
    app.state.sync_status_timing = sync_status.StreamTiming(
        configured.sync_status_poll_seconds, configured.sync_status_max_seconds
    )
    install_error_handlers(app)
    audit_buffer = install_audit(app, configured)  # outside the catch-all: a 500 is audited with its status
    install_cors(app, configured)
    install_response_cache(app, configured)
    install_access_log_filter()
    app.include_router(health.router)  # unversioned: probes and load balancers expect a fixed path
    app.include_router(versioned_router())
    install_dashboard(app)  # the page at /, its files, plotly.js from the wheel
    return app


app = create_app()
