"""The app the read API benchmark serves: the production app (``api.main.create_app``) with one more route,
``GET /bench/bare``, a constant JSON answer through the same middleware, the same threadpool hop as the read routes
(a plain ``def``) and the same JSON response class, with no authentication and no database: the floor the read
routes are compared with in the same run. ``/health`` is not that floor: it reads the migration files and queries
the database on every call.

    uvicorn benchmarks.api_read_app:app
"""

from __future__ import annotations

from fastapi import FastAPI

from api.main import create_app

BARE_PATH = "/bench/bare"


def bare() -> dict[str, str]:
    return {"status": "ok"}


def create_bench_app() -> FastAPI:
    bench = create_app()
    bench.get(BARE_PATH, include_in_schema=False)(bare)
    return bench


app = create_bench_app()
